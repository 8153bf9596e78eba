"""Alert changes as text messages over a GSM modem on the gateway (Gammu), and the officers
who may answer them.

The mobile network is the path left when an intruder has cut the depot's uplink (EN 50136
dual path): a phone needs no internet. One short text per alert change - severity, what,
where, when, a four-digit reference and how to acknowledge - split and numbered when long,
to each officer's phone. An officer answers `ACK <ref>` (daemon/alerts/sms_replies.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from daemon.alerts.sms_replies import PhoneOfficer
from daemon.notifiers.common import NotifierSettings, Site, event_id
from daemon.notifiers.modem import GsmModem, modem_settings
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError
from daemon.vocabulary.readings import TransitionKind
from daemon.vocabulary.settings import Settings

__all__ = ["SmsConfig", "SmsNotifier", "SmsOfficer", "alert_reference", "split_text",
           "text_for"]

log = logging.getLogger(__name__)

# E.164: a plus, a country code and up to 15 digits in all.
PhoneNumber = str
_E164 = r"^\+[1-9][0-9]{6,14}$"
# GSM 03.38's basic set: a text of only these goes in 7-bit parts of 160 characters, any other
# character makes the whole text UCS-2, 70 characters a part.
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_PIN_HASH = re.compile(r"^pbkdf2_sha256\$[0-9]{4,7}\$[0-9a-f]{8,64}\$[0-9a-f]{64}$")
# Alert changes whose texts were sent to some numbers, for retries after a partial failure.
_SENT_KEPT = 500


class SmsOfficer(Settings):
    """An officer's phone: texts go to it, and `ACK` replies from it count as that officer."""

    # An officer of `api.officers`: replies act with that officer's role.
    officer: str = Field(min_length=1, max_length=64)
    phone: PhoneNumber = Field(pattern=_E164)
    # The digest of the officer's reply PIN (`depotwatch officers hash-pin` prints it);
    # needed in every reply when the notifier's `pin_required` is on.
    pin_hash: SecretStr | None = Field(default=None)

    @field_validator("pin_hash")
    @classmethod
    def _pin_digest(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _PIN_HASH.match(value.get_secret_value()):
            raise ValueError("pin_hash must be what `depotwatch officers hash-pin` prints "
                             "(pbkdf2_sha256$rounds$salt$digest)")
        return value

    def on_roster(self) -> PhoneOfficer:
        """The phone as the reply desk knows it."""
        pin = self.pin_hash.get_secret_value() if self.pin_hash is not None else None
        return PhoneOfficer(self.officer, self.phone, pin)


class SmsConfig(NotifierSettings):
    """Text messages through a GSM modem (Gammu); needs the `sms` extra."""

    example: ClassVar[dict[str, Any]] = {
        "type": "sms", "name": "duty-sms", "device": "/dev/ttyUSB2",
        "officers": [{"officer": "duty-officer", "phone": "+491701234567"}],
    }

    type: Literal["sms"] = "sms"
    # The modem: a serial device and Gammu's connection (`at` for nearly every USB modem),
    # or a gammurc file whose first section says it all (`gammurc`, e.g. Gammu's dummy
    # driver in tests).
    device: str = Field(default="", max_length=255)
    connection: str = Field(default="at", max_length=64)
    model: str = Field(default="", max_length=64)
    gammurc: Path | None = None
    officers: list[SmsOfficer] = Field(min_length=1)
    # Replies must carry the officer's PIN (`ACK 4821 <pin>`): a stolen phone alone cannot
    # acknowledge an alarm.
    pin_required: bool = False
    # A long alert is split into at most this many numbered texts; the rest is cut.
    max_parts: int = Field(default=3, ge=1, le=10)
    # How often the modem is read for replies and asked for its signal and network.
    poll_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_modem(self) -> SmsConfig:
        if not self.device and self.gammurc is None:
            raise ValueError("give the modem's `device` (e.g. /dev/ttyUSB2) or a `gammurc`")
        phones = [o.phone for o in self.officers]
        twice = sorted({p for p in phones if phones.count(p) > 1})
        if twice:
            raise ValueError(f"phone number given twice: {', '.join(twice)}")
        if self.pin_required:
            missing = [o.officer for o in self.officers if o.pin_hash is None]
            if missing:
                raise ValueError(f"pin_required, but no pin_hash for {', '.join(missing)}")
        return self

    def build(self, site: Site, name: str) -> SmsNotifier:
        """The notifier, with its modem (opened at the first send or poll)."""
        try:
            import gammu  # noqa: F401  (checked here: a config error, not a 3 a.m. surprise)
        except ImportError as exc:
            raise NotifierError("the sms notifier needs `pip install depotwatch[sms]` "
                                "(python-gammu)", retryable=False) from exc
        modem = GsmModem(modem_settings(self.device, self.connection, self.model,
                                        self.gammurc), name)
        return SmsNotifier(self, site, modem, name)


def alert_reference(key: str, started_ns: int) -> str:
    """The four digits an officer types to acknowledge: the same after a restart (derived
    from the alarm, not a counter), different for the next alarm of the same door."""
    digest = hashlib.sha256(f"{key}\x00{started_ns}".encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 10_000:04d}"


def text_for(alert: Alert, site: Site, pin_required: bool) -> str:
    """The whole message: severity, what, where, when, reference and how to answer."""
    where = site.storehouse_name(alert.storehouse) if alert.storehouse else site.name
    ref = alert_reference(alert.key, alert.started_ns)
    since = site.local_time(alert.started_ns, alert.storehouse)
    if alert.state is TransitionKind.RESOLVED:
        return f"CLEARED {alert.severity.value}: {alert.summary} - {where}. Ref {ref}."
    acked_by = alert.facts.get("acked_by")
    if acked_by:
        return (f"ACKNOWLEDGED by {acked_by}: {alert.summary} - {where}, since {since}. "
                f"Ref {ref}.")
    answer = f"ACK {ref} <PIN>" if pin_required else f"ACK {ref}"
    return (f"{alert.severity.value.upper()} {site.name}: {alert.summary} - {where}, since "
            f"{since}. Ref {ref}. Reply {answer} to acknowledge.")


def split_text(text: str, max_parts: int) -> list[str]:
    """`text` in texts of one SMS each, numbered `(1/2) ` when more than one; cut (marked
    with an ellipsis) beyond `max_parts`."""
    gsm7 = all(c in _GSM7 for c in text)
    single, each = (160, 153) if gsm7 else (70, 67)
    if len(text) <= single:
        return [text]
    # The numbering takes room from each part: "(1/3) " is 6 characters.
    room = each - 6
    chunks = [text[i:i + room] for i in range(0, len(text), room)]
    if len(chunks) > max_parts:
        chunks = chunks[:max_parts]
        chunks[-1] = chunks[-1][:-1] + ("." if gsm7 else "…")
    total = len(chunks)
    return [f"({n}/{total}) {chunk}" for n, chunk in enumerate(chunks, 1)]


class SmsNotifier:
    """Texts every alert change to each officer's phone; a modem failure is retryable."""

    def __init__(self, config: SmsConfig, site: Site, modem: GsmModem,
                 name: str = "sms") -> None:
        self.name = name
        self.config = config
        self.modem = modem
        self._site = site
        self.target = config.device or str(config.gammurc)
        self._phones = [o.phone for o in config.officers]
        # Per alert change, the numbers it already reached: a retry after the modem failed
        # half way texts only the others (officers get each text once).
        self._reached: OrderedDict[str, set[str]] = OrderedDict()

    async def send(self, alert: Alert) -> None:
        """Text the alert change to every officer not yet reached."""
        parts = split_text(text_for(alert, self._site, self.config.pin_required),
                           self.config.max_parts)
        change = event_id(alert)
        reached = self._reached.setdefault(change, set())
        self._reached.move_to_end(change)
        while len(self._reached) > _SENT_KEPT:
            self._reached.popitem(last=False)
        for phone in self._phones:
            if phone in reached:
                continue
            await self.modem.send(phone, parts)
            reached.add(phone)
        log.debug("notifier %s: alert %s texted to %d phone(s) in %d part(s)", self.name,
                  alert.key, len(self._phones), len(parts), extra={"alert_key": alert.key})
