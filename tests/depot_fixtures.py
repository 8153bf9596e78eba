"""Small depots for pure rule and decoder tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from daemon.config.schema import Config

VIENNA = ZoneInfo("Europe/Vienna")
NS = 1_000_000_000

DEPOT = {
    "site": {"id": "test-depot"},
    "state_dir": "/tmp/unused",
    "storehouses": [
        {"id": "SH1", "name": "Store 1", "timezone": "Europe/Vienna",
         "armed": {"mode": "schedule",
                   "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                "from": "18:00", "to": "07:00"}],
                   "holidays": ["2026-12-25"]}},
        {"id": "SH2", "name": "Magazine 2", "climate_class": "propellant"},
    ],
    "doors": [
        {"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"},
        {"id": "SH2-D1", "storehouse": "SH2", "contact_sensor": "door2", "supervision": "wired"},
    ],
    "climate_sensors": [
        {"id": "clim1", "storehouse": "SH1"},
        {"id": "clim2", "storehouse": "SH2"},
    ],
}


def config() -> Config:
    """The test depot's config."""
    return Config.model_validate(DEPOT)


def local_ns(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """Vienna local time as ns since the epoch."""
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=VIENNA).timestamp() * NS)
