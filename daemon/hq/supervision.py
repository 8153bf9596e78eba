"""HQ's judgement of each depot's reachability: heartbeats, bridge state and last will in,
"depot unreachable" alerts out. Pure: no clock, no I/O (times are the steady clock's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from daemon.hq.heartbeat import Heartbeat
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

__all__ = ["DepotReach", "Supervision", "dark_for"]

RULE = "depot_unreachable"


def dark_for(seconds: float) -> str:
    """A dark period as people say it: 45 s, 3 min 20 s, 2 h 05 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@dataclass(slots=True)
class DepotReach:
    """What HQ knows of one depot."""

    site: str
    name: str
    last_heard_ns: int
    bridge_up: bool | None = None
    online: bool | None = None
    # Since when the bridge or the gateway daemon has been reported down (None: neither is).
    down_since_ns: int | None = None
    # When the depot was last heard before the alert was raised (None: no alert open).
    dark_since_ns: int | None = None
    raised_ns: int = 0
    heartbeat: Heartbeat | None = None
    # Alarm changes that reached HQ late since the depot last went dark.
    late_alarms: int = 0
    # Since when a dark depot is heard again (None: still dark, or not dark).
    back_since_ns: int | None = None

    def why_down(self, now_ns: int, after_ns: int, grace_ns: int) -> str | None:
        """Why the depot counts as unreachable now, or None while it is reachable."""
        if self.bridge_up is False and self._down_for(now_ns) >= grace_ns:
            return "its bridge to HQ is down"
        if self.online is False and self._down_for(now_ns) >= grace_ns:
            return "its gateway daemon is offline (last will)"
        silent_ns = now_ns - self.last_heard_ns
        if silent_ns > after_ns:
            return f"no heartbeat for {dark_for(silent_ns / 1e9)}"
        return None

    def _down_for(self, now_ns: int) -> int:
        return 0 if self.down_since_ns is None else now_ns - self.down_since_ns


class Supervision:
    """Every supervised depot's reachability; each method returns the alert changes it made."""

    def __init__(self, depots: Iterable[tuple[str, str]], *, unreachable_after_s: float,
                 down_grace_s: float, started_ns: int, wall_offset_ns: int = 0,
                 settle_s: float = 0.0) -> None:
        # Every depot gets the full limit from HQ's start: its first heartbeat may be a
        # whole interval away.
        self.depots = {site: DepotReach(site, name, started_ns) for site, name in depots}
        self._after_ns = int(unreachable_after_s * 1e9)
        self._grace_ns = int(down_grace_s * 1e9)
        # A depot back is cleared this long after it is heard again: the bridge's "1" comes
        # first, then what it queued in the outage, so the clearing can count the late alarms.
        self._settle_ns = int(settle_s * 1e9)
        # Wall clock minus steady clock: alerts carry wall-clock times, as the depots' do.
        self.wall_offset_ns = wall_offset_ns

    def heard(self, site: str, heartbeat: Heartbeat | None, now_ns: int) -> list[Alert]:
        """A heartbeat (or any other sign of life) from `site` arrived."""
        depot = self.depots[site]
        depot.last_heard_ns = now_ns
        if heartbeat is None:
            return self._judge(depot, now_ns)
        depot.heartbeat = heartbeat
        sent_ns = int(heartbeat.sent_s * 1e9) - self.wall_offset_ns
        if depot.down_since_ns is not None and sent_ns > depot.down_since_ns:
            # Sent after the bridge or the daemon was reported down, and here: both work.
            # Mosquitto restarted delivers the "0" it queued at its stop after its new "1".
            depot.bridge_up = depot.online = True
            return self._down_changed(depot, now_ns)
        return self._judge(depot, now_ns)

    def bridge(self, site: str, up: bool, now_ns: int) -> list[Alert]:
        """HQ's broker said the depot's bridge is up (1) or down (0, the bridge's will)."""
        depot = self.depots[site]
        depot.bridge_up = up
        return self._down_changed(depot, now_ns)

    def status(self, site: str, online: bool, now_ns: int) -> list[Alert]:
        """The gateway daemon's retained status: `online`, or `offline` (its last will)."""
        depot = self.depots[site]
        depot.online = online
        return self._down_changed(depot, now_ns)

    def late_alarm(self, site: str) -> None:
        """An alarm change from `site` reached HQ late (it waited out the outage)."""
        self.depots[site].late_alarms += 1

    def tick(self, now_ns: int) -> list[Alert]:
        """Judge every depot against the limits now."""
        return [a for depot in self.depots.values() for a in self._judge(depot, now_ns)]

    def _down_changed(self, depot: DepotReach, now_ns: int) -> list[Alert]:
        down = depot.bridge_up is False or depot.online is False
        if not down:
            depot.down_since_ns = None
            depot.last_heard_ns = max(depot.last_heard_ns, now_ns)
        elif depot.down_since_ns is None:
            depot.down_since_ns = now_ns
        return self._judge(depot, now_ns)

    def _judge(self, depot: DepotReach, now_ns: int) -> list[Alert]:
        why = depot.why_down(now_ns, self._after_ns, self._grace_ns)
        if why is not None and depot.dark_since_ns is None:
            depot.dark_since_ns = min(depot.last_heard_ns, depot.down_since_ns or now_ns)
            depot.raised_ns = now_ns
            depot.late_alarms = 0
            return [self._alert(depot, TransitionKind.FIRING, now_ns,
                                f"{depot.name} unreachable from HQ: {why}", {})]
        if why is not None:
            depot.back_since_ns = None
        elif depot.dark_since_ns is not None:
            depot.back_since_ns = depot.back_since_ns or now_ns
            if now_ns - depot.back_since_ns < self._settle_ns:
                return []
            dark_s = (depot.back_since_ns - depot.dark_since_ns) / 1e9
            late = (f"; {depot.late_alarms} alarm change(s) arrived late"
                    if depot.late_alarms else "")
            change = self._alert(
                depot, TransitionKind.RESOLVED, now_ns,
                f"{depot.name} reachable again after {dark_for(dark_s)} dark{late}",
                {"dark_s": round(dark_s, 1), "late_alarms": depot.late_alarms})
            depot.dark_since_ns = depot.back_since_ns = None
            return [change]
        return []

    def _alert(self, depot: DepotReach, state: TransitionKind, now_ns: int, summary: str,
               facts: dict[str, float | int]) -> Alert:
        return Alert(key=f"{RULE}.{depot.site}", rule=RULE, subject=depot.site,
                     severity=Severity.ALARM, state=state, summary=summary, storehouse="",
                     started_ns=depot.raised_ns + self.wall_offset_ns,
                     changed_ns=now_ns + self.wall_offset_ns,
                     facts={"site": depot.site, **facts})
