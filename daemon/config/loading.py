"""Reading the config file: YAML with line numbers, the schema, the cross-section checks, and
every problem reported at once in file order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from daemon.config.references import reference_problems
from daemon.config.schema import Config
from daemon.config.yamlsource import YamlSource
from daemon.vocabulary.errors import ConfigError

__all__ = ["load_config", "load_settings"]

M = TypeVar("M", bound=BaseModel)


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key missing"
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    return re.sub(r"^Value error, ", "", message)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem found."""
    return load_settings(path, Config, references=True)


def load_settings(path: str | Path, model: type[M], *, references: bool = False) -> M:
    """Read a YAML file into `model` (a gateway's `Config`, HQ's `HqConfig`); raises
    ConfigError listing every problem found, each with its line."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(filename, [f"{filename}:0: cannot read: {exc}"]) from exc
    source = YamlSource(filename, text)
    if source.problems and source.data is None:
        raise ConfigError(filename, source.problems)
    if not isinstance(source.data, dict):
        raise ConfigError(filename, [*source.problems,
                                     f"{filename}:1: (top level): expected a mapping of keys"])
    problems = list(source.problems)
    config: M | None = None
    try:
        config = model.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(source.problem(e["loc"], _message(e)) for e in exc.errors())
    if references:
        problems.extend(reference_problems(source.data, source))
    if problems or config is None:
        # Report in file order, so the list reads top to bottom like the file.
        problems.sort(key=_line_number)
        raise ConfigError(filename, problems)
    return config


def _line_number(problem: str) -> int:
    match = re.match(r"^.*?:(\d+): ", problem)
    return int(match.group(1)) if match else 0
