"""The GSM modems' side of the SMS notifiers: officers' replies and the modems' own health.

Each SMS notifier's modem is read every `poll_s`: texts received go to the reply desk (and
its answer is texted back to a known phone), the signal, network and SIM become a `gateway`
point, and a modem that cannot send (no network, SIM locked, unplugged) is a gateway fault
until it can again - the officers learn that their second path is gone before they need it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

from daemon.alerts.desk import AlarmDesk, Audit
from daemon.alerts.roles import Role
from daemon.alerts.sms_replies import ReplyDesk, pin_matches
from daemon.notifiers.base import Notifier
from daemon.notifiers.dual import DualPathNotifier
from daemon.notifiers.modem import ModemState
from daemon.notifiers.sms import SmsNotifier, alert_reference
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import NotifierError

__all__ = ["ModemWatch", "modem_watches", "sms_notifiers"]

log = logging.getLogger(__name__)

# component, values, now_ns: the pipeline's gateway_reading.
GatewayReading = Callable[[str, Mapping[str, float | bool], int], None]
# fault, subject, active, summary, now_ns: the pipeline's fault.
GatewayFault = Callable[[str, str, bool, str, int], None]


def sms_notifiers(notifiers: Iterable[Notifier]) -> list[SmsNotifier]:
    """The SMS notifiers, also those that are a dual path's primary or fallback."""
    found: list[SmsNotifier] = []
    for notifier in notifiers:
        paths = ((notifier.primary, notifier.fallback) if isinstance(notifier, DualPathNotifier)
                 else (notifier,))
        found += [p for p in paths if isinstance(p, SmsNotifier)]
    return found


class ModemWatch:
    """Reads one SMS notifier's modem: replies, signal, registration; never raises."""

    def __init__(self, notifier: SmsNotifier, replies: ReplyDesk, clock: Clock,
                 reading: GatewayReading, fault: GatewayFault) -> None:
        self.notifier = notifier
        self.name = notifier.name
        self._replies = replies
        self._clock = clock
        self._reading = reading
        self._fault = fault
        self._trouble: str | None = None

    async def run(self) -> NoReturn:
        """Poll forever, every `poll_s`."""
        while True:
            await self.poll()
            await asyncio.sleep(self.notifier.config.poll_s)

    async def poll(self) -> None:
        """One look at the modem: its state, then the texts it received."""
        modem = self.notifier.modem
        try:
            state = await modem.state()
            received = await modem.take_received()
        except NotifierError as exc:
            self._report(None, str(exc))
            return
        self._report(state, state.trouble())
        for text in received:
            await self._answer(text.number, text.text)

    async def _answer(self, sender: str, text: str) -> None:
        config = self.notifier.config
        roster = [o.on_roster() for o in config.officers]
        claimed = self._replies.claimed_pin(sender, text, roster) if config.pin_required else None
        # PBKDF2 on a worker thread: the event loop keeps taking readings meanwhile.
        pin_ok = await asyncio.to_thread(pin_matches, *claimed) if claimed else None
        outcome = self._replies.take(sender, text, roster, config.pin_required, self.name,
                                     self._clock.now_ns(), pin_ok)
        if outcome.answer is None:
            return
        try:
            await self.notifier.modem.send(sender, [outcome.answer])
        except NotifierError as exc:
            log.warning("SMS answer to %s not sent: %s", sender[:20], exc)

    def _report(self, state: ModemState | None, trouble: str | None) -> None:
        now = self._clock.now_ns()
        if state is not None:
            self._reading(f"modem.{self.name}", {
                "signal_percent": float(state.signal_percent), "registered": state.registered,
                "sim_ready": state.sim == "ready"}, now)
        if trouble == self._trouble:
            return
        if trouble is not None:
            log.warning("modem of notifier %s cannot send: %s", self.name, trouble)
            self._fault("sms_modem", self.name, True,
                        f"SMS notifier {self.name}: modem cannot send: {trouble}", now)
        else:
            log.info("modem of notifier %s can send again", self.name)
            self._fault("sms_modem", self.name, False,
                        f"SMS notifier {self.name}: modem can send again", now)
        self._trouble = trouble


def modem_watches(notifiers: Iterable[Notifier], desk: AlarmDesk, role: Callable[[str], Role],
                  audit: Audit, clock: Clock, reading: GatewayReading,
                  fault: GatewayFault) -> list[ModemWatch]:
    """A watch over each SMS notifier's modem (dual paths' included), one reply desk for all."""
    replies = ReplyDesk(desk, role, audit, alert_reference)
    return [ModemWatch(n, replies, clock, reading, fault) for n in sms_notifiers(notifiers)]
