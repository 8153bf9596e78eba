"""Tokens and passwords taken out of what the daemon keeps (dead letters, audit) or logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["REDACTED", "is_secret_key", "redact_payload", "redact_text"]

REDACTED = "<redacted>"

# Key names that hold a secret in any payload we have seen or document: an officer `token`, an
# MQTT or SMTP `password`, a webhook `secret`, an `api_key`, an HTTP `authorization` header.
_SECRET_KEY = re.compile(r"token|passw|secret|api.?key|authori[sz]ation|credential|cookie", re.I)
# The same keys as JSON text, for a payload that does not parse (cut short, a stray comma).
_SECRET_PAIR = re.compile(
    rb'("[^"\\]*(?:token|passw|secret|api.?key|authori[sz]ation|credential|cookie)[^"\\]*"'
    rb'\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I)
# Runs of characters between blanks, quotes and JSON punctuation: each is offered to `known`,
# whatever key it stood under (a misspelled "tokn" still holds the officer's token).
# Control characters and undecodable bytes (surrogate escapes) end a word too.
_WORD = re.compile(r"[^\s\"'{}\[\],:;\\\x00-\x1f\x7f\udc80-\udcff]{8,}")

Known = Callable[[str], bool]


def is_secret_key(name: str) -> bool:
    """Whether a field of this name holds a secret (`token`, `password`, `secret`...)."""
    return bool(_SECRET_KEY.search(name))


def redact_text(text: str, known: Known | None = None) -> str:
    """`text` with every word that `known` recognises as a secret replaced."""
    if known is None:
        return text
    return _WORD.sub(lambda m: REDACTED if known(m.group(0)) else m.group(0), text)


def redact_payload(payload: bytes, known: Known | None = None) -> bytes:
    """`payload` with the values of secret-named keys, and every secret `known` recognises,
    replaced by "<redacted>"; a payload with nothing to redact comes back unchanged."""
    try:
        doc = json.loads(payload)
    except ValueError:  # not JSON (or not UTF-8): redact what the text shows
        return _redact_raw(payload, known)
    clean = _redact_value(doc, known)
    if clean == doc:
        return payload
    return json.dumps(clean, ensure_ascii=False).encode()


def _redact_value(value: Any, known: Known | None) -> Any:
    if isinstance(value, dict):
        return {redact_text(str(k), known): REDACTED if is_secret_key(str(k)) and v is not None
                else _redact_value(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, known) for v in value]
    if isinstance(value, str):
        return redact_text(value, known)
    return value


def _redact_raw(payload: bytes, known: Known | None) -> bytes:
    out = _SECRET_PAIR.sub(rb'\1"' + REDACTED.encode() + rb'"', payload)
    if known is None:
        return out
    text = out.decode("utf-8", errors="surrogateescape")
    return redact_text(text, known).encode("utf-8", errors="surrogateescape")
