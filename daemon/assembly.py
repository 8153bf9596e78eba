"""Parts of the daemon built from the config, for the runner to start and stop."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from daemon.config.schema import Config
from daemon.notifiers.base import Notifier
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.notifiers.kinds import notifier_names

__all__ = ["build_notifiers", "site_of"]


def site_of(config: Config) -> Site:
    """The site as notifiers present it."""
    return Site(
        id=config.site.id, name=config.site.name or config.site.id, base_url=config.base_url,
        storehouses={s.id: StorehouseInfo(s.name or s.id, ZoneInfo(s.timezone))
                     for s in config.storehouses},
    )


def build_notifiers(config: Config) -> list[Notifier]:
    """The configured notifiers, in config order (MQTT and log are built by the runner)."""
    site = site_of(config)
    names = notifier_names(config.notifiers)
    return [c.build(site, name) for c, name in zip(config.notifiers, names, strict=True)]
