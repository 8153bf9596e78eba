r"""InfluxDB line protocol, written by hand (bench/lineprotocol.py measures it against Point).

Series keys and field keys repeat from point to point, so their escaped forms are cached.

Spec: https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
Every line we emit must mean the same to InfluxDB 1.x (models/points.go), InfluxDB 2.x/3.x and
VictoriaMetrics. Where those parsers disagree we refuse (ValueError) rather than guess:

- Backslashes in names. InfluxDB 1.x keeps `\\` as two backslashes and cannot express a
  backslash right before an escaped `,`/`=`/space or at the end of a name (checked against
  influxd 1.6.7: tag `t=a\\\,b` is stored as `a\\,b`); VictoriaMetrics and the 2.x/3.x docs
  read `\\` as one backslash. A lone backslash before any other character is literal
  everywhere, so only a backslash followed by `\`, `,`, `=`, space, `"` or the end of the name
  is refused.
- Newlines. A line ends at a newline; InfluxDB 1.x tolerates one inside a quoted string, but
  VictoriaMetrics splits the request there and garbles neighbouring points (still answering
  204). Newlines in tag values and string field values become spaces; in names they are an error.
- Text must be valid Unicode: a lone surrogate has no UTF-8 form.
- Line starts. InfluxDB 1.x skips leading space/tab/NUL and treats `#` as a comment line (the
  point is silently dropped with 204), so a measurement may not start with `#`, tab or NUL; a
  leading space is escaped. Its field scanner also skips leading tab/NUL, so field keys may not
  start with them either.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

from daemon.vocabulary.readings import FieldValue

__all__ = ["check_unicode", "escape_key", "escape_measurement", "format_field_value", "line",
           "line_in_series", "series_key"]

_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
# Tag values may carry a newline from a payload; it becomes an (escaped) space.
_TAG_VALUE_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ "})
# Inside a quoted string only `\` and `"` are escapes (spec, "Special characters").
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": " "})

# A backslash the parsers above read differently (see the module docstring).
_AMBIGUOUS_BACKSLASH = re.compile(r'\\(?:[\\,= "\n]|\Z)')


def _check_name(s: str, what: str) -> None:
    if not s:
        raise ValueError(f"empty {what}")
    if "\n" in s:
        raise ValueError(f"newline in {what} {s!r}")
    if "\\" in s and _AMBIGUOUS_BACKSLASH.search(s):
        raise ValueError(f"{what} {s!r} has a backslash before \\ , = space \" or at its end")


def escape_measurement(s: str) -> str:
    """Escape a measurement name (`,` and space); ValueError if no parser-safe form exists."""
    _check_name(s, "measurement")
    if s[0] in "#\t\0":
        raise ValueError(f"measurement {s!r} starts with '#', tab or NUL")
    return s.translate(_MEASUREMENT_ESCAPES)


def escape_key(s: str) -> str:
    """Escape a tag key, tag value or field key (`,`, `=`, space); ValueError if impossible."""
    _check_name(s, "key")
    return s.translate(_KEY_ESCAPES)


def _escape_tag_value(s: str) -> str:
    if "\\" in s and _AMBIGUOUS_BACKSLASH.search(s.replace("\n", " ")):
        raise ValueError(f"tag value {s!r} has a backslash before \\ , = space \" or at its end")
    return s.translate(_TAG_VALUE_ESCAPES)


@functools.lru_cache(maxsize=1024)
def _escape_field_key(s: str) -> str:
    _check_name(s, "field key")
    if s[0] in "\t\0":
        raise ValueError(f"field key {s!r} starts with tab or NUL")
    return s.translate(_KEY_ESCAPES)


def format_field_value(v: FieldValue) -> str:
    """A field value as line protocol: `true`/`false`, a float that never reads as int, a string."""
    if type(v) is float and math.isfinite(v):  # most values: no conversion, same text
        return repr(v)
    # bool first: it is a subclass of int.
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return f'"{v.translate(_STRING_ESCAPES)}"'
    try:
        f = float(v)
    except OverflowError as exc:
        raise ValueError(f"field value {v!r} out of float range") from exc
    if not math.isfinite(f):
        raise ValueError(f"field value {v!r} is not finite; line protocol has no nan/inf")
    # float repr always has a '.' or an exponent ("1.0", "1e+16"), so an int given by a caller
    # stays a float field: a field must never change type (an `i` suffix would make it int).
    return repr(f)


@functools.lru_cache(maxsize=4096)
def _series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    head = escape_measurement(measurement)
    # Sorted as InfluxDB stores them (it would re-sort every point otherwise). Line protocol has
    # no empty tag value; a tag left out is the same series as an empty one in InfluxQL.
    for k, v in tags:
        if v:
            head += f",{escape_key(k)}={_escape_tag_value(v)}"
    return head


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """The escaped `measurement,tag=value,...` part of a line, for `line_in_series`."""
    return _series_key(measurement, tuple(sorted(tags.items())))


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ns: int,
) -> str:
    """One point as a line (no trailing newline): tags sorted, empty tag values left out."""
    if not fields:
        raise ValueError(f"point in {measurement!r} has no fields")
    return line_in_series(_series_key(measurement, tuple(sorted(tags.items()))), measurement,
                          fields, ts_ns)


def line_in_series(head: str, measurement: str, fields: Mapping[str, FieldValue],
                   ts_ns: int) -> str:
    """`line()` with the series key already made (`series_key`): a sensor's repeats it."""
    if not fields:
        raise ValueError(f"point in {measurement!r} has no fields")
    body = ",".join([f"{_escape_field_key(k)}={format_field_value(v)}"
                     for k, v in fields.items()])
    text = f"{head} {body} {ts_ns:d}"
    if not text.isascii():
        check_unicode(text, measurement)
    return text


def check_unicode(text: str, measurement: str) -> None:
    """ValueError if a point's text cannot be sent as UTF-8 (a lone surrogate: json.loads
    makes one from "\\ud800")."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        msg = f"point in {measurement!r} has text that is not valid Unicode"
        raise ValueError(msg) from exc
