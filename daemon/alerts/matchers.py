"""Label matchers as Alertmanager and Prometheus write them: `=`, `!=`, `=~`, `!~`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OPERATORS", "Matcher", "parse_matcher"]

OPERATORS = ("=", "!=", "=~", "!~")
# `name op value`, the value bare or double-quoted (amtool sends `alertname="door_forced"`).
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; a label the alarm lacks counts as "" (Alertmanager's rule)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def operator(self) -> str:
        """`=`, `!=`, `=~` or `!~`."""
        return ("=" if self.is_equal else "!=") + ("~" if self.is_regex else "")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy the matcher; a regex must match the whole value."""
        value = labels.get(self.name, "")
        if self.is_regex:
            found = re.fullmatch(self.value, value) is not None
        else:
            found = value == self.value
        return found == self.is_equal


def parse_matcher(text: str) -> Matcher:
    """`name="value"`, `name!=value`, `name=~"re"` or `name!~re`; ValueError when it is none."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"not a label matcher: {text!r} (want name=value, !=, =~ or !~)")
    name, operator, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = re.sub(r'\\(.)', r'\1', value[1:-1])
    matcher = Matcher(name, value, is_regex=operator.endswith("~"),
                      is_equal=operator.startswith("="))
    if matcher.is_regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{name}{operator}: not a regular expression: {exc}") from None
    return matcher
