"""What officers send the API: the request bodies, checked by pydantic before any step."""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from daemon.alerts.alarm import Finding

__all__ = ["AckBody", "ArmBody", "CheckBody", "RequestBody", "SilenceBody", "SilenceMatchers",
           "WalkTestBody"]

_NS = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NOTE_CHARS = 2000
_LABEL_CHARS = 200


class RequestBody(BaseModel):
    """A JSON body: unknown fields refused, strings stripped."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AckBody(RequestBody):
    """Acknowledge an alarm: repeats and escalation stop; the alarm stays open."""

    note: str = Field(default="", max_length=_NOTE_CHARS)


class CheckBody(RequestBody):
    """The on-site check; it clears the alarm once its condition has ended (PSSM.md response)."""

    finding: Finding
    note: str = Field(default="", max_length=_NOTE_CHARS)


class ArmBody(RequestBody):
    """Arm or disarm a zone; `force` arms over open doors and active detectors (recorded)."""

    force: bool = False
    note: str = Field(default="", max_length=_NOTE_CHARS)


class WalkTestBody(RequestBody):
    """Start a zone's walk test: its detectors are recorded, not alarmed, for the window."""

    note: str = Field(default="", max_length=_NOTE_CHARS)


class SilenceMatchers(RequestBody):
    """Which alarms a silence mutes: every label given must equal the alarm's."""

    rule: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    storehouse: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    door: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    subject: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)

    @model_validator(mode="after")
    def _some(self) -> SilenceMatchers:
        if not self.labels():
            raise ValueError("give at least one of rule, storehouse, door, subject")
        return self

    def labels(self) -> dict[str, str]:
        """The matchers given, as the desk takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SilenceBody(RequestBody):
    """A silence from now until `ends_at`, or for `for_s` seconds (exactly one of the two)."""

    matchers: SilenceMatchers
    reason: str = Field(min_length=1, max_length=_NOTE_CHARS)
    ends_at: AwareDatetime | None = None
    # The bound only keeps the nanosecond arithmetic finite; it is no policy.
    for_s: float | None = Field(default=None, gt=0, le=10 * 366 * 86400)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.ends_at is None) == (self.for_s is None):
            raise ValueError("give exactly one of ends_at, for_s")
        return self

    def ends_ns(self, now_ns: int) -> int:
        """When the silence ends; `for_s` counts on the daemon's clock, not the caller's."""
        if self.ends_at is not None:
            # Integer arithmetic: a float timestamp times 1e9 is off by up to ~200 ns.
            return (self.ends_at - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        return now_ns + int((self.for_s or 0.0) * _NS)
