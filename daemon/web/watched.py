"""What the metrics and readiness read of the daemon, and nothing more (issue 8).

The runner hands itself in, and neither daemon/web/metrics.py nor daemon/web/exposition.py
imports it (the runner imports them). Read-only properties, so the daemon's own richer types
fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence, Sized
from enum import Enum
from typing import Protocol

from daemon.web.backlog import Link, Spool, Writer

__all__ = ["Watched"]


class _Spool(Spool, Protocol):
    @property
    def full(self) -> bool: ...
    @property
    def fill_pct(self) -> float: ...
    @property
    def shed_points(self) -> int: ...


class _PortSettings(Protocol):
    @property
    def id(self) -> str: ...


class _SerialPort(Protocol):
    @property
    def config(self) -> _PortSettings: ...
    @property
    def source(self) -> str: ...
    @property
    def is_open(self) -> asyncio.Event: ...


class _ModbusBus(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def is_open(self) -> asyncio.Event: ...


class _Reader(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def up(self) -> asyncio.Event: ...


class _Writer(Writer, Protocol):
    @property
    def last_write_ns(self) -> int: ...


class _Pipeline(Protocol):
    @property
    def readings(self) -> Mapping[str, int]: ...
    @property
    def points_out(self) -> int: ...
    @property
    def rule_errors(self) -> int: ...


class _DeadLetters(Protocol):
    @property
    def counts(self) -> Mapping[str, int]: ...


class _Alarm(Protocol):
    @property
    def state(self) -> Enum: ...
    @property
    def severity(self) -> Enum: ...


class _Desk(Protocol):
    def alarms(self) -> Sequence[_Alarm]: ...


class _Notifier(Protocol):
    @property
    def name(self) -> str: ...


class _Outbox(Protocol):
    @property
    def notifier(self) -> _Notifier: ...
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def refused(self) -> int: ...
    @property
    def given_up(self) -> int: ...
    @property
    def backlog(self) -> int: ...


class _MqttSettings(Protocol):
    @property
    def subscriptions(self) -> Sized: ...


class _Settings(Protocol):
    @property
    def mqtt(self) -> _MqttSettings: ...


class Watched(Protocol):
    """The running daemon as its metrics and readiness see it."""

    @property
    def config(self) -> _Settings: ...
    @property
    def spool(self) -> _Spool: ...
    @property
    def link(self) -> Link: ...
    @property
    def serial_ports(self) -> Sequence[_SerialPort]: ...
    @property
    def modbus_buses(self) -> Sequence[_ModbusBus]: ...
    @property
    def readers(self) -> Sequence[_Reader]: ...
    @property
    def writers(self) -> Sequence[_Writer]: ...
    @property
    def pipeline(self) -> _Pipeline: ...
    @property
    def deadletters(self) -> _DeadLetters: ...
    @property
    def desk(self) -> _Desk: ...
    @property
    def outboxes(self) -> Sequence[_Outbox]: ...
