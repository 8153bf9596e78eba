"""Line protocol: a reference parser round-trips what we write; real InfluxDB 1.x reads it back."""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from servers import InfluxDB1, http_request

from daemon.tsdb.lineprotocol import escape_key, escape_measurement, format_field_value, line
from daemon.vocabulary.readings import FieldValue

Point = tuple[str, dict[str, str], dict[str, FieldValue], int]

# --- reference parser, written from the spec's grammar, independent of the encoder ----------

_FLOAT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_BOOLS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True,
          "f": False, "F": False, "false": False, "False": False, "FALSE": False}


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        assert self.peek() == ch, f"expected {ch!r} at {self.i} in {self.s!r}"
        self.i += 1

    def name(self, stops: str, escapable: str) -> str:
        """A measurement/key/tag value: `\\c` for c in escapable is c, other backslashes literal."""
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            nxt = self.s[self.i + 1] if self.i + 1 < len(self.s) else ""
            if c == "\\":
                # `\\` in a name means one backslash to VictoriaMetrics and two to InfluxDB 1.x:
                # a portable line never contains it.
                assert nxt != "\\", f"ambiguous '\\\\' in a name in {self.s!r}"
                if nxt and nxt in escapable:
                    out.append(nxt)
                    self.i += 2
                    continue
            elif c in stops:
                break
            out.append(c)
            self.i += 1
        result = "".join(out)
        assert result, f"empty name at {self.i} in {self.s!r}"
        return result

    def string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while True:
            c = self.s[self.i]
            if c == "\\" and self.s[self.i + 1] in '\\"':
                out.append(self.s[self.i + 1])
                self.i += 2
            elif c == '"':
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1

    def token(self) -> str:
        start = self.i
        while self.peek() not in ("", ",", " "):
            self.i += 1
        return self.s[start:self.i]


def parse_line(text: str) -> Point:
    """Parse one line of line protocol (spec grammar) into (measurement, tags, fields, ts)."""
    assert "\n" not in text
    # InfluxDB 1.x skips leading space/tab/NUL and ignores '#' comment lines.
    assert text[:1] not in ("", " ", "\t", "\0", "#"), text
    r = _Reader(text)
    measurement = r.name(stops=", ", escapable=", ")
    tags: dict[str, str] = {}
    while r.peek() == ",":
        r.expect(",")
        key = r.name(stops="=, ", escapable=",= ")
        r.expect("=")
        assert key not in tags
        tags[key] = r.name(stops=", ", escapable=",= ")
    r.expect(" ")
    fields: dict[str, FieldValue] = {}
    while True:
        # InfluxDB 1.x's field scanner skips leading tab/NUL before the first key.
        assert r.peek() not in ("\t", "\0")
        key = r.name(stops="=, ", escapable=",= ")
        r.expect("=")
        assert key not in fields
        if r.peek() == '"':
            fields[key] = r.string()
        else:
            tok = r.token()
            if tok in _BOOLS:
                fields[key] = _BOOLS[tok]
            else:
                assert _FLOAT.fullmatch(tok), f"bad number {tok!r}"
                # A float we write must never look like an integer to any reader.
                assert "." in tok or "e" in tok, tok
                fields[key] = float(tok)
        if r.peek() != ",":
            break
        r.expect(",")
    r.expect(" ")
    ts = r.token()
    assert re.fullmatch(r"-?\d+", ts), ts
    assert r.i == len(text)
    return measurement, tags, fields, int(ts)


# --- what line() promises ---------------------------------------------------------------------


def _ambiguous_backslash(s: str) -> bool:
    return any(c == "\\" and s[i + 1 : i + 2] in ("", "\\", ",", "=", " ", '"')
               for i, c in enumerate(s))


def _name_ok(s: str) -> bool:
    return bool(s) and "\n" not in s and not _ambiguous_backslash(s)


def _encodable(*texts: str) -> bool:
    try:
        for t in texts:
            t.encode()
    except UnicodeEncodeError:
        return False
    return True


def _representable(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue]
) -> bool:
    texts = [measurement, *fields, *(v for v in fields.values() if isinstance(v, str))]
    texts += [t for k, v in tags.items() if v for t in (k, v)]
    return (
        _encodable(*texts)
        and _name_ok(measurement)
        and measurement[0] not in "#\t\0"
        and all(_name_ok(k) and not _ambiguous_backslash(v.replace("\n", " "))
                for k, v in tags.items() if v)
        and bool(fields)
        and all(_name_ok(k) and k[0] not in "\t\0" for k in fields)
    )


def _expected(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts: int
) -> Point:
    """What a reader sees: empty tags gone, newlines in values turned into spaces."""
    return (
        measurement,
        {k: v.replace("\n", " ") for k, v in tags.items() if v},
        {k: v.replace("\n", " ") if isinstance(v, str) else v for k, v in fields.items()},
        ts,
    )


# Plain text, plus a heavy dose of every character and backslash pair line protocol cares about.
_special = st.sampled_from([
    *',= "\\\n\t#\0\'\r', "é", "☃", "\U0001f600",
    "\\,", "\\=", "\\ ", '\\"', "\\\\", "\\\n", "\\x",
])
_text = st.lists(st.one_of(st.characters(), _special), max_size=8).map("".join)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_values: st.SearchStrategy[FieldValue] = st.one_of(st.booleans(), _floats, _text)
_timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _check_round_trip(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ts: int
) -> None:
    """line() refuses exactly the unwritable points, and the parser reads back the others."""
    ok = _representable(measurement, tags, fields)
    try:
        text = line(measurement, tags, fields, ts)
    except ValueError:
        event("refused")
        assert not ok
        return
    event("written")
    assert ok
    assert parse_line(text) == _expected(measurement, tags, fields, ts)


@given(
    measurement=_text,
    tags=st.dictionaries(_text, _text, max_size=4),
    fields=st.dictionaries(_text, _values, max_size=4),
    ts=_timestamps,
)
@settings(max_examples=300)
def test_round_trip_through_reference_parser(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ts: int
) -> None:
    _check_round_trip(measurement, tags, fields, ts)


# Mostly writable text: lone backslashes only before ordinary characters, and newlines only in
# values (most arbitrary points above are refused; these mostly get written).
_server_special = st.sampled_from([*',= "\t#\0\'\r', "é", "\U0001f600", "\\x", "\\é"])
_utf8 = st.characters(codec="utf-8")
_server_name = st.lists(st.one_of(_utf8, _server_special), min_size=1, max_size=8).map("".join)
_server_value = st.lists(st.one_of(_utf8, _server_special, st.just("\n")), max_size=8).map(
    "".join
)
_server_fields = st.dictionaries(
    _server_name, st.one_of(st.booleans(), _floats, _server_value), min_size=1, max_size=3
)


@given(
    measurement=_server_name,
    tags=st.dictionaries(_server_name, _server_value, max_size=4),
    fields=_server_fields,
    ts=_timestamps,
)
@settings(max_examples=300)
def test_round_trip_of_mostly_writable_points(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ts: int
) -> None:
    _check_round_trip(measurement, tags, fields, ts)


# Valid Unicode without backslash, newline, tab, NUL or '#': what depot names look like.
_safe_char = st.characters(codec="utf-8", exclude_characters="\\\n\t\0#")
_safe_text = st.text(_safe_char, min_size=1, max_size=12)
_safe_values = st.one_of(st.booleans(), _floats, st.text(st.characters(codec="utf-8")))


@given(
    measurement=_safe_text,
    tags=st.dictionaries(_safe_text, st.text(_safe_char), max_size=4),
    fields=st.dictionaries(_safe_text, _safe_values, min_size=1, max_size=4),
)
def test_names_without_backslash_newline_or_tab_never_refused(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    text = line(measurement, tags, fields, 1)
    assert parse_line(text) == _expected(measurement, tags, fields, 1)


def test_tags_sorted_and_empty_values_omitted() -> None:
    text = line("door", {"site": "x", "door": "d1", "storehouse": ""}, {"open": True}, 5)
    assert text == "door,door=d1,site=x open=true 5"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (1.0, "1.0"),
        (3, "3.0"),  # an int stays a float field: a field never changes type
        (-0.0, "-0.0"),
        (1e16, "1e+16"),
        (0.1, "0.1"),
        (5e-324, "5e-324"),
        ("", '""'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\depot\\", r'"C:\\depot\\"'),
        ("two\nlines", '"two lines"'),
    ],
)
def test_format_field_value(value: FieldValue, text: str) -> None:
    assert format_field_value(value) == text


@given(_floats)
def test_floats_exact_and_never_integer_looking(v: float) -> None:
    text = format_field_value(v)
    assert float(text) == v
    assert "." in text or "e" in text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_non_finite_numbers_refused(value: float) -> None:
    with pytest.raises(ValueError):
        format_field_value(value)


@pytest.mark.parametrize(
    ("func", "text", "escaped"),
    [
        (escape_measurement, "door state,x=1", r"door\ state\,x=1"),
        (escape_measurement, " lead", r"\ lead"),
        (escape_measurement, "C:\\depot", "C:\\depot"),
        (escape_key, "a b,c=d", r"a\ b\,c\=d"),
        (escape_key, 'q"uote', 'q"uote'),
    ],
)
def test_escapes(func: Any, text: str, escaped: str) -> None:
    assert func(text) == escaped


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "reason"),
    [
        ("m", {}, {}, "no fields"),
        ("", {}, {"f": 1.0}, "empty"),
        ("#m", {}, {"f": 1.0}, "starts with"),
        ("\tm", {}, {"f": 1.0}, "starts with"),
        ("m", {"": "v"}, {"f": 1.0}, "empty"),
        ("m", {"k\n": "v"}, {"f": 1.0}, "newline"),
        ("m", {"k": "a\\"}, {"f": 1.0}, "backslash"),
        ("m", {"k": "a\\,b"}, {"f": 1.0}, "backslash"),
        ("m", {"k": "a\\\\b"}, {"f": 1.0}, "backslash"),
        ("m", {}, {"f\\": 1.0}, "backslash"),
        ('m\\"q', {}, {"f": 1.0}, "backslash"),
        ("m", {"k": 'a\\"b'}, {"f": 1.0}, "backslash"),
        ("m", {}, {'f\\"': 1.0}, "backslash"),
        ("m", {"k": "a\\\n"}, {"f": 1.0}, "backslash"),
        ("m", {}, {"\tf": 1.0}, "starts with"),
        ("m", {}, {"f": math.nan}, "not finite"),
        ("m", {}, {"f": "lone \ud800"}, "not valid Unicode"),
    ],
)
def test_unwritable_points_refused(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        line(measurement, tags, fields, 1)


# --- the real InfluxDB 1.x reads back exactly what we meant ---------------------------------


def _json_field(v: FieldValue) -> FieldValue:
    # Go's JSON writes 5.909743029829451e+16 as 59097430298294510: read numbers as floats.
    return float(v) if type(v) is int else v


def _read_back(server: InfluxDB1, db: str, source: str = "/.*/") -> list[Point]:
    """Every point as (measurement, tags, fields, ts); GROUP BY * tells tags from fields."""
    result = server.query(db, f"SELECT * FROM {source} GROUP BY *")["results"][0]
    assert "error" not in result, result
    points: list[Point] = []
    for series in result.get("series", []):
        tags = {k: v for k, v in series.get("tags", {}).items() if v}
        for row in series["values"]:
            fields = {c: _json_field(v) for c, v in zip(series["columns"][1:], row[1:], strict=True)
                      if v is not None}
            points.append((series["name"], tags, fields, row[0]))
    return sorted(points, key=lambda p: p[3])


def _post(server: InfluxDB1, db: str, body: str) -> None:
    status, resp = http_request("POST", f"{server.url}/write?db={db}&precision=ns", body.encode())
    assert status == 204, resp


TRICKY: list[tuple[str, dict[str, str], dict[str, FieldValue]]] = [
    ("door state, main=1", {"site": "Depot 7, North", "door": "a=b"}, {"open": True}),
    (" leading space", {"k": " lead and trail "}, {"f x": 1.5}),
    ('quote"d', {'t"k': 'v"al', "back": "C:\\depot\\x"}, {'f"q': 'say "hi" \\o/'}),
    ("C:\\meas", {"uni": "é☃\U0001f600", "tab": "a\tb", "cr": "a\rb"}, {"s": "ends\\"}),
    ("newlines", {"nl": "two\nlines"}, {"s": "line1\nline2", "b": False}),
    ("floats", {}, {"max": 1.7976931348623157e308, "tiny": 5e-324, "neg0": -0.0, "e": 1e16}),
    ("hash#mid", {"#k": "#v", "=t": ",", ",t": "="}, {"=f": 2.0, ",f": "x,y=z"}),
]


def test_tricky_names_read_back_exactly_from_influxdb1(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("lp_tricky")
    base = time.time_ns()
    written = [(m, t, f, base + i) for i, (m, t, f) in enumerate(TRICKY)]
    _post(influxdb1, "lp_tricky", "\n".join(line(*p) for p in written))
    assert _read_back(influxdb1, "lp_tricky") == [_expected(*p) for p in written]


_counter = itertools.count()


@given(
    measurement=_server_name,
    tags=st.dictionaries(_server_name, _server_value, max_size=3),
    fields=_server_fields,
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_through_influxdb1(
    influxdb1: InfluxDB1,
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, FieldValue],
) -> None:
    # InfluxDB 1.x refuses a field or tag called "time" (its own column).
    assume("time" not in fields and "time" not in tags)
    # A fresh measurement per example: a field may not change type within a measurement.
    # (InfluxQL cannot name every measurement, e.g. one with a NUL: select it by a regex.)
    prefix = f"h{next(_counter)}_"
    measurement = prefix + measurement
    assume(_representable(measurement, tags, fields))
    influxdb1.create_database("lp_prop")
    ts = time.time_ns()
    _post(influxdb1, "lp_prop", line(measurement, tags, fields, ts))
    got = _read_back(influxdb1, "lp_prop", f"/^{prefix}/")
    assert got == [_expected(measurement, tags, fields, ts)]
