"""The device's own timestamp in a payload, read as Unix seconds (kept as `device_time_s`).

Readings stay timed by the gateway's receipt: a device clock an hour ahead or a day behind
must neither blind a sensor nor satisfy a sustain timer (issue "Never blind"). The device's
time is kept beside the values, and the pipeline raises `clock_skew` when it is far off.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

__all__ = ["DEVICE_TIME", "TimeFormat", "device_time_s"]

# The field the device's timestamp is kept in.
DEVICE_TIME = "device_time_s"

TimeFormat = Literal["iso8601", "epoch_s", "epoch_ms"]


def device_time_s(value: Any, time_format: TimeFormat) -> float | None:
    """Unix seconds, or None when the value is not a time in that format.

    A timestamp the gateway cannot read is dropped, never the reading: a door contact with a
    garbled `last_seen` still opens its door. ISO-8601 without a zone is not read (its zone
    is a guess).
    """
    if time_format == "iso8601":
        if not isinstance(value, str) or len(value) > 40:
            return None
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return None if moment.tzinfo is None else moment.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value) / 1000.0 if time_format == "epoch_ms" else float(value)
    return seconds if math.isfinite(seconds) else None
