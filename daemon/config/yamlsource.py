"""YAML loading that remembers where every value came from, so errors can name the line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["YamlSource", "expand_references", "format_loc"]

# As in Docker Compose and POSIX shells: `${VAR:-default}` when VAR is unset or empty, and
# `$${` for a literal `${`; `${credential:NAME}` is a systemd credential (LoadCredential=).
_REFERENCE = re.compile(
    r"(?P<escaped>\$\$\{)"
    r"|\$\{credential:(?P<credential>[A-Za-z0-9_.@-]+)\}"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a path such as ('doors', 0, 'storehouse') as `doors[0].storehouse`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# LibYAML's parser where PyYAML was built with it: 97 % of `check-config` on 100,000 items was
# the pure-Python parser, run twice (issue 29).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DataLoader(_Loader):  # type: ignore[valid-type,misc]
    """The loader for the data, noting whether some mapping names a key twice."""

    duplicates = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [str(key.value) for key, _ in node.value]
        if len(set(keys)) < len(keys):
            self.duplicates = True
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


def _data(text: str) -> tuple[Any, bool]:
    """The document's data, and whether some mapping in it names a key twice."""
    loader = _DataLoader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def _nodes(text: str) -> yaml.Node | None:
    """The document's node tree, for line numbers."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _explain(problem: object) -> str:
    # LibYAML names no reason where the pure-Python parser said "surrogate"; it refuses the
    # same escapes (`\ud800`), and these only.
    text = str(problem)
    if text == "found invalid Unicode character escape code":
        text += " (a surrogate, U+D800..U+DFFF, or beyond U+10FFFF)"
    return text


class YamlSource:
    """A parsed YAML document, and its node tree when a value path needs its line number.

    The node tree (every node with its marks) is 4 times the data: read again only for a
    problem's line or a duplicate key, it no longer sits in memory beside the validated config
    (2,000 sensors: 3.7 MiB of nodes, issue 29).
    """

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.problems: list[str] = []
        self.data: Any = None
        self._text = text
        self._root: yaml.Node | None = None
        try:
            self.data, duplicates = _data(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            self.problems.append(f"{filename}:{line}: YAML syntax: {_explain(exc.problem or exc)}")
            return
        except yaml.YAMLError as exc:
            self.problems.append(f"{filename}:0: YAML syntax: {exc}")
            return
        if duplicates:
            self._check_duplicate_keys(self._tree(), ())
        self.data = self._expand_env(self.data, ())

    def _tree(self) -> yaml.Node | None:
        if self._root is None and self.data is not None:
            self._root = _nodes(self._text)
        return self._root

    def line_of(self, loc: Sequence[str | int]) -> int:
        """Line (1-based) of the deepest node along `loc`; parts that do not match are skipped.

        Pydantic puts union tags into its error paths; skipping what does not match lets those
        errors still land on the right line.
        """
        node = self._tree()
        if node is None:
            return 0
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        node = value_node
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                node = node.value[part]
        return int(node.start_mark.line) + 1

    def problem(self, loc: Sequence[str | int], message: str) -> str:
        """One error line: `file:line: path: message`."""
        return f"{self.filename}:{self.line_of(loc)}: {format_loc(self._clean(loc))}: {message}"

    def _clean(self, loc: Sequence[str | int]) -> list[str | int]:
        # Drop union tags (`rules[0].climate.x` -> `rules[0].x`): parts the document lacks
        # where the next part is present.
        out: list[str | int] = []
        node: Any = self.data
        for index, part in enumerate(loc):
            if isinstance(node, dict) and part not in node and index + 1 < len(loc) \
                    and loc[index + 1] in node:
                continue
            out.append(part)
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                node = None
        return out

    def _check_duplicate_keys(self, node: yaml.Node | None, loc: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.problems.append(
                        f"{self.filename}:{key_node.start_mark.line + 1}: "
                        f"{format_loc((*loc, key))}: duplicate key"
                    )
                seen.add(key)
                self._check_duplicate_keys(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_duplicate_keys(item, (*loc, index))

    def _expand_env(self, value: Any, loc: tuple[str | int, ...]) -> Any:
        # Secrets stay out of the file: `password: ${MQTT_PASSWORD}` is read from the environment.
        if isinstance(value, dict):
            return {k: self._expand_env(v, (*loc, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand_env(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            expanded, problems = expand_references(value, os.environ)
            self.problems.extend(self.problem(loc, problem) for problem in problems)
            return expanded
        return value


def _credential(name: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    # systemd.exec(5) LoadCredential=: the service reads $CREDENTIALS_DIRECTORY/NAME.
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None, (f"credential {name}: CREDENTIALS_DIRECTORY is not set "
                      "(LoadCredential= in the unit)")
    try:
        text = (Path(directory) / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"credential {name}: cannot read: {exc.__class__.__name__}"
    # A file written with echo ends in a newline that is no part of the secret.
    return text.removesuffix("\n"), ""


def expand_references(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`${VAR}`, `${VAR:-default}`, `${credential:NAME}` replaced, `$${` kept as a literal `${`;
    with the problems (an unset variable, an unreadable credential), never a secret's value."""
    problems: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "${"
        if match.group("credential"):
            found, problem = _credential(match.group("credential"), environ)
        else:
            name, default = match.group("name"), match.group("default")
            found = environ.get(name) if default is None else environ.get(name) or default
            problem = f"environment variable {name} is not set"
        if found is None:
            problems.append(problem)
            return ""
        return found

    return _REFERENCE.sub(substitute, text), problems
