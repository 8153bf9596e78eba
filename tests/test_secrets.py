"""Tokens and passwords are taken out of dead letters and command replies (issue 25)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from daemon.vocabulary.secrets import REDACTED, is_secret_key, redact_payload, redact_text

TOKEN = "officer-token-7f3a9c2e41d05b86"


def known(word: str) -> bool:
    return word == TOKEN


SECRET_KEYS = ["token", "password", "secret", "api_key", "Authorization", "smtp_password",
               "webhook_secret", "refresh_token"]


def test_secret_key_names() -> None:
    assert all(is_secret_key(k) for k in SECRET_KEYS)
    assert not any(is_secret_key(k) for k in ("note", "key", "contact", "epc", "nots", "id"))


def test_a_misspelled_command_keeps_everything_but_the_token() -> None:
    payload = json.dumps({"id": "c1", "token": TOKEN, "action": "ack", "nots": "seen"}).encode()
    assert json.loads(redact_payload(payload)) == {
        "id": "c1", "token": REDACTED, "action": "ack", "nots": "seen"}


def test_the_token_under_any_key_and_in_any_text_is_found_when_known() -> None:
    payload = json.dumps({"tokn": TOKEN, "note": f"Bearer {TOKEN}", TOKEN: 1}).encode()
    out = redact_payload(payload, known)
    assert TOKEN.encode() not in out
    assert json.loads(out)["note"] == f"Bearer {REDACTED}"
    assert redact_text(f"{TOKEN}: Extra inputs are not permitted", known) == (
        f"{REDACTED}: Extra inputs are not permitted")


def test_a_payload_that_is_not_json_is_redacted_as_text() -> None:
    cut = b'{"id": "c1", "token": "' + TOKEN.encode() + b'", "action": "ack", '
    assert TOKEN.encode() not in redact_payload(cut)
    assert redact_payload(cut).startswith(b'{"id": "c1", "token": "<redacted>"')
    garbage = b"\xff" + TOKEN.encode() + b"\x00"
    assert redact_payload(garbage, known) == b"\xff<redacted>\x00"


def test_nothing_to_redact_leaves_the_bytes_as_they_were() -> None:
    payload = b'{"contact":true,  "battery": 97}'
    assert redact_payload(payload, known) is payload


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)


@given(doc=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       key=st.sampled_from(SECRET_KEYS), tail=st.text(max_size=30),
       where=st.sampled_from(["under its key", "under any key, known"]))
def test_no_secret_survives(doc: dict[str, object], key: str, tail: str, where: str) -> None:
    marker = "S3CR3T"  # no generated key or value is long enough to hold it by chance
    if where == "under its key":
        doc = {**doc, key: marker + tail}
    else:
        doc = {**doc, "x-" + key[:2]: TOKEN, "list": [doc, f"Bearer {TOKEN}"]}
        marker = TOKEN
    out = redact_payload(json.dumps(doc).encode(), known)
    assert marker.encode() not in out
    assert marker.encode() not in redact_payload(json.dumps(doc).encode()[:-1], known)
