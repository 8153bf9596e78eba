"""When it is dark at the depot, for the console's night theme (issue 30).

Sunset and sunrise by the NOAA solar equations (good to a minute or two between the polar
circles) from the site's latitude and longitude; without them, fixed evening and morning hours
in the depot's time zone. Pure: the caller gives the day and the place.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["DarkHours", "sun_times"]

_NS = 1_000_000_000
# The sun's centre 0.833 degrees below the horizon: refraction and the sun's radius.
_ZENITH = math.radians(90.833)


def sun_times(day: dt.date, latitude: float, longitude: float) -> tuple[dt.datetime,
                                                                        dt.datetime] | None:
    """Sunrise and sunset (UTC) on `day` at the place; None in polar day or night."""
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)
    gamma = 2 * math.pi / 365 * (day.timetuple().tm_yday - 1)
    # Equation of time (minutes) and the sun's declination (radians), NOAA's series.
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                       - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma)
            - 0.006758 * math.cos(2 * gamma) + 0.000907 * math.sin(2 * gamma)
            - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    lat = math.radians(latitude)
    cos_ha = (math.cos(_ZENITH) / (math.cos(lat) * math.cos(decl))
              - math.tan(lat) * math.tan(decl))
    if not -1.0 <= cos_ha <= 1.0:
        return None
    half_day_min = 4 * math.degrees(math.acos(cos_ha))
    solar_noon_min = 720 - 4 * longitude - eqtime
    return (noon + dt.timedelta(minutes=solar_noon_min - 720 - half_day_min),
            noon + dt.timedelta(minutes=solar_noon_min - 720 + half_day_min))


@dataclass(frozen=True, slots=True)
class DarkHours:
    """When the console turns dark by itself: between sunset and sunrise at the site, or
    between `evening` and `morning` local time where the site's place is not configured."""

    zone: ZoneInfo
    latitude: float | None = None
    longitude: float | None = None
    evening: dt.time = dt.time(19, 0)
    morning: dt.time = dt.time(7, 0)

    def nights(self, now_ns: int) -> list[tuple[int, int]]:
        """(start, end) in ns of the dark spells from last night to the night after next:
        enough for a page left open through a shift (the page decides in the browser)."""
        today = dt.datetime.fromtimestamp(now_ns / _NS, tz=self.zone).date()
        spells = []
        for offset in (-1, 0, 1):
            day = today + dt.timedelta(days=offset)
            spell = self._night_after(day)
            if spell is not None:
                spells.append(spell)
        return spells

    def is_dark(self, now_ns: int) -> bool:
        """Whether `now_ns` falls in a dark spell."""
        return any(start <= now_ns < end for start, end in self.nights(now_ns))

    def _night_after(self, day: dt.date) -> tuple[int, int] | None:
        # From the evening of `day` to the morning after.
        after = day + dt.timedelta(days=1)
        if self.latitude is None or self.longitude is None:
            start = dt.datetime.combine(day, self.evening, tzinfo=self.zone)
            end = dt.datetime.combine(after, self.morning, tzinfo=self.zone)
        else:
            dusk, dawn = sun_times(day, self.latitude, self.longitude), sun_times(
                after, self.latitude, self.longitude)
            if dusk is None or dawn is None:
                return None  # polar day or night: the browser's own preference decides
            start, end = dusk[1], dawn[0]
        return int(start.timestamp()) * _NS, int(end.timestamp()) * _NS
