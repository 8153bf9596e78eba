"""Officers acknowledging alarms by answering a text: `ACK <ref> [PIN] [note]`.

A text's sender number is easy to forge, so a reply acts only when it comes from a phone on
the roster, names an open alarm by its reference, and - where the site asks for it - carries
that officer's PIN; a phone that gets the PIN wrong five times is not heard for an hour.
Every reply, taken or refused, goes to the audit log; a refused one never changes an alarm.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from daemon.alerts.alarm import Alarm, AlarmState, LifecycleError
from daemon.alerts.desk import AlarmDesk, Audit
from daemon.alerts.roles import Role, require
from daemon.vocabulary.errors import DepotwatchError

__all__ = ["PhoneOfficer", "ReplyDesk", "ReplyOutcome", "hash_pin", "pin_matches"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_ACK = re.compile(r"^\s*ACK\s+(?P<ref>\d{4})(?:\s+(?P<rest>.*))?$", re.IGNORECASE | re.DOTALL)
# PBKDF2 iterations for PIN digests: a four-digit PIN has only 10,000 values, so what makes
# a stolen config slow to search is the work per guess.
_PIN_ROUNDS = 200_000
_WRONG_PINS_ALLOWED = 5
_LOCKOUT_NS = 3600 * _NS


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$<rounds>$<salt hex>$<digest hex>`, as the config keeps a reply PIN."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, _PIN_ROUNDS)
    return f"pbkdf2_sha256${_PIN_ROUNDS}${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """Whether `pin` is the one `stored` (from `hash_pin`) was made of; constant time."""
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        tried = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(tried.hex(), digest.lower())


@dataclass(frozen=True, slots=True)
class PhoneOfficer:
    """A phone on the roster: whose it is, and the digest of that officer's PIN if any."""

    officer: str
    phone: str
    pin_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What came of one reply: the alarm acknowledged, or why not; and the answer to text
    back (None: do not answer, e.g. an unknown number)."""

    taken: bool
    reason: str
    answer: str | None
    alarm_key: str | None = None


@dataclass(slots=True)
class _Lockout:
    wrong: list[int] = field(default_factory=list)


class ReplyDesk:
    """Turns texts from officers' phones into acknowledgements at the alarm desk."""

    def __init__(self, desk: AlarmDesk, role: Callable[[str], Role], audit: Audit,
                 reference: Callable[[str, int], str]) -> None:
        self._desk = desk
        self._role = role
        self._audit = audit
        self._reference = reference
        self._wrong_pins: dict[str, _Lockout] = {}

    @staticmethod
    def claimed_pin(sender: str, text: str,
                    roster: Iterable[PhoneOfficer]) -> tuple[str, str] | None:
        """(PIN, stored digest) a reply from a phone on the roster claims, to check off the
        event loop (PBKDF2 takes ~70 ms) and hand to `take` as `pin_ok`; None if there is none."""
        holder = {p.phone: p for p in roster}.get(_normalised(sender))
        match = _ACK.match(text)
        if holder is None or holder.pin_hash is None or match is None or not match["rest"]:
            return None
        words = match["rest"].split(None, 1)
        return (words[0], holder.pin_hash) if words else None

    def take(self, sender: str, text: str, roster: Iterable[PhoneOfficer], pin_required: bool,
             via: str, now_ns: int, pin_ok: bool | None = None) -> ReplyOutcome:
        """Act on one received text; never raises. `pin_ok`: the claimed PIN already checked
        (`claimed_pin`), else it is checked here."""
        phones: Mapping[str, PhoneOfficer] = {p.phone: p for p in roster}
        holder = phones.get(_normalised(sender))
        outcome = self._judge(sender, text, holder, pin_required, now_ns, pin_ok)
        actor = holder.officer if holder is not None else f"phone {sender[:20]}"
        action = "sms_reply_taken" if outcome.taken else "sms_reply_refused"
        # The PIN never reaches the audit log: only the reference and the outcome.
        self._audit(actor, action, outcome.alarm_key or "-",
                    {"from": sender[:20], "via": via, "reason": outcome.reason}, now_ns)
        if not outcome.taken:
            log.warning("SMS reply from %s refused: %s", sender[:20], outcome.reason)
        return outcome

    def _judge(self, sender: str, text: str, holder: PhoneOfficer | None, pin_required: bool,
               now_ns: int, pin_ok: bool | None) -> ReplyOutcome:
        if holder is None:
            return ReplyOutcome(False, "number not on the roster", None)
        match = _ACK.match(text)
        if match is None:
            return ReplyOutcome(False, "not an ACK reply",
                                "Not understood. Reply ACK <ref>" +
                                (" <PIN>" if pin_required else "") + " to acknowledge.")
        ref, rest = match["ref"], (match["rest"] or "").strip()
        if pin_required:
            refusal = self._pin_refusal(holder, rest, now_ns, pin_ok)
            if refusal is not None:
                return ReplyOutcome(False, refusal, f"ACK {ref} refused: {refusal}.")
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        return self._acknowledge(holder, ref, rest, now_ns)

    def _pin_refusal(self, holder: PhoneOfficer, rest: str, now_ns: int,
                     pin_ok: bool | None) -> str | None:
        lockout = self._wrong_pins.setdefault(holder.phone, _Lockout())
        lockout.wrong = [t for t in lockout.wrong if now_ns - t < _LOCKOUT_NS]
        if len(lockout.wrong) >= _WRONG_PINS_ALLOWED:
            return "too many wrong PINs from this phone: try again in an hour or use the console"
        pin = rest.split(None, 1)[0] if rest else ""
        if pin_ok is None:
            pin_ok = holder.pin_hash is not None and bool(pin) and pin_matches(pin, holder.pin_hash)
        if not pin_ok:
            lockout.wrong.append(now_ns)
            return "wrong or missing PIN"
        lockout.wrong.clear()
        return None

    def _acknowledge(self, holder: PhoneOfficer, ref: str, note: str,
                     now_ns: int) -> ReplyOutcome:
        named = [a for a in self._desk.alarms() if a.state is not AlarmState.CLEARED
                 and self._reference(a.key, a.started_ns) == ref]
        if not named:
            return ReplyOutcome(False, f"no open alarm with reference {ref}",
                                f"ACK {ref} refused: no open alarm has that reference.")
        if len(named) > 1:
            return ReplyOutcome(False, f"reference {ref} names {len(named)} alarms",
                                f"ACK {ref} refused: it names {len(named)} alarms; "
                                "acknowledge on the console.")
        alarm: Alarm = named[0]
        try:
            require(self._role(holder.officer), "ack", holder.officer)
            self._desk.acknowledge(alarm.key, holder.officer,
                                   f"by SMS from {holder.phone}" + (f": {note}" if note else ""),
                                   now_ns)
        except (LifecycleError, DepotwatchError) as exc:
            return ReplyOutcome(False, str(exc), f"ACK {ref} refused: {exc}"[:150],
                                alarm.key)
        return ReplyOutcome(True, "acknowledged", f"ACK {ref} taken: {alarm.summary}"[:150],
                            alarm.key)


def _normalised(number: str) -> str:
    # Networks deliver the sender as +49..., 0049... or with spaces; the roster has E.164.
    digits = "".join(c for c in number if c.isdigit() or c == "+")
    return "+" + digits[2:] if digits.startswith("00") else digits
