"""Checks a dashboard against Grafana's schema as grafana-foundation-sdk models it (pinned).

The SDK's `from_json` neither rejects unknown keys nor checks types, so this reads the JSON into
the SDK's classes, writes it back, and reports every key the schema dropped; then it walks the
objects and checks each value against the attribute's declared type.
"""

from __future__ import annotations

import copy
import enum
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import UnknownDataquery, panelcfg_config
from grafana_foundation_sdk.models.dashboard import Dashboard

__all__ = ["schema_problems"]

register_default_plugins()


def _dropped(original: Any, written: Any, path: str, out: list[str]) -> None:
    if isinstance(original, dict):
        if not isinstance(written, dict):
            out.append(f"{path}: an object in the dashboard, {type(written).__name__} in schema")
            return
        for key, value in original.items():
            if key not in written:
                out.append(f"{path}.{key}: not in Grafana's schema")
            else:
                _dropped(value, written[key], f"{path}.{key}", out)
    elif isinstance(original, list):
        if not isinstance(written, list) or len(original) != len(written):
            out.append(f"{path}: list changed by the schema")
            return
        for i, (a, b) in enumerate(zip(original, written, strict=True)):
            _dropped(a, b, f"{path}[{i}]", out)
    elif original != written and not (isinstance(original, int | float)
                                        and isinstance(written, int | float)
                                        and float(original) == float(written)):
        out.append(f"{path}: {original!r} became {written!r}")


def _shallow(value: Any, hint: Any) -> bool:
    """Whether `value` has the declared type at its top level."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_shallow(value, arm) for arm in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {m.value for m in hint}
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _check(value: Any, hint: Any, path: str, out: list[str]) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(value, dict) and isinstance(hint, type) and hasattr(hint, "from_json"):
        # The SDK keeps some lists of objects (panel transformations) as plain JSON.
        _dropped(value, json.loads(json.dumps(hint.from_json(value), cls=JSONEncoder)), path,
                 out)
        value = hint.from_json(value)
    if not _shallow(value, hint):
        out.append(f"{path}: {value!r} is not a {hint}")
        return
    if origin in (typing.Union, types.UnionType):
        arm = next(a for a in args if _shallow(value, a))
        _check(value, arm, path, out)
    elif origin is list and args:
        for i, item in enumerate(value):
            _check(item, args[0], f"{path}[{i}]", out)
    elif origin is dict and len(args) == 2:
        for key, item in value.items():
            _check(item, args[1], f"{path}.{key}", out)
    elif isinstance(hint, type) and not issubclass(hint, enum.Enum) and hasattr(hint, "to_json"):
        _walk(value, path, out)


def _walk(obj: Any, path: str, out: list[str]) -> None:
    if isinstance(obj, UnknownDataquery):
        return  # a datasource's own query model (InfluxDB has none in the SDK)
    try:
        hints = typing.get_type_hints(type(obj))
    except (NameError, TypeError):
        return
    for name, hint in hints.items():
        if not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if value is not None:
            _check(value, hint, f"{path}.{name}", out)


def schema_problems(dashboard: dict[str, Any]) -> list[str]:
    """Every place where the dashboard leaves Grafana's schema; empty when it is valid."""
    data = copy.deepcopy(dashboard)
    problems: list[str] = []
    for panel in data.get("panels", []):
        if panel.get("type") != "row" and panelcfg_config(panel.get("type", "")) is None:
            problems.append(f"panel {panel.get('title')!r}: unknown type {panel.get('type')!r}")
    try:
        model = Dashboard.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [*problems, f"not a dashboard: {exc!r}"]
    written = json.loads(json.dumps(model, cls=JSONEncoder))
    _dropped(dashboard, written, "", problems)
    # The schema's annotation target models only Grafana's own annotation store (its TODO says
    # it should be the datasource's query); another datasource's target is its query model.
    for i, annotation in enumerate(data.get("annotations", {}).get("list", [])):
        if annotation.get("datasource", {}).get("type") != "grafana":
            prefix = f".annotations.list[{i}].target."
            problems = [p for p in problems if not p.startswith(prefix)]
    _walk(model, "", problems)
    return problems
