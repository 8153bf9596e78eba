"""How log lines look: text for a terminal, journald's `<N>` priority prefix, or JSON lines."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Any, TextIO

import orjson

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JournalFormatter", "JsonFormatter", "chosen_format",
           "setup_logging"]

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "text", "journal", "json")
_HANDLER = "depotwatch-stderr"

# sd-daemon(3): the kernel's syslog priorities, which journald reads from a `<N>` line prefix.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}
# What every LogRecord carries; anything else came in through `extra=` and is a structured field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


def _priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _PRIORITY[level]
    return _PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """`<N>logger: message` with no timestamp of its own: journald stamps each line itself."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, every physical line of it (a traceback's too) with the record's priority."""
        prefix = f"<{_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the fields given as `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value if isinstance(value, str | int | float | bool | None) \
                    else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _stderr_is_journal(stream: TextIO) -> bool:
    # systemd.exec(5): JOURNAL_STREAM is "device:inode" of the stream it connected; a child
    # whose stderr was redirected elsewhere inherits the variable but must not use the prefix.
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return bool(value) and f"{stat.st_dev}:{stat.st_ino}" == f"{device}:{inode}"


def chosen_format(requested: str, stream: TextIO) -> str:
    """`auto` is `journal` when stderr is journald's stream, `text` otherwise."""
    if requested != "auto":
        return requested
    return "journal" if _stderr_is_journal(stream) else "text"


def setup_logging(level: str, log_format: str = "auto") -> None:
    """The root logger at `level`, writing to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    chosen = chosen_format(log_format, sys.stderr)
    handler.setFormatter(
        JournalFormatter() if chosen == "journal" else JsonFormatter() if chosen == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    # Replace only our own handler (main() may run twice in one process; pytest's stay).
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # gmqtt logs every reconnect attempt at INFO/WARNING; our link reports connection state.
    logging.getLogger("gmqtt").setLevel(logging.ERROR)
