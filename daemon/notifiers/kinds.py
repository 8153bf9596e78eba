"""The registry of configurable notifiers: the discriminated union of their configs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, NoReturn, Protocol, runtime_checkable

from pydantic import AfterValidator, Field

from daemon.notifiers.alertmanager import AlertmanagerConfig
from daemon.notifiers.apprise import AppriseConfig
from daemon.notifiers.email import EmailConfig
from daemon.notifiers.webhook import WebhookConfig
from daemon.vocabulary.alert import Alert

__all__ = [
    "NOTIFIER_KINDS",
    "NotifierConfig",
    "NotifierList",
    "Resender",
    "notifier_names",
]

# One line per notifier: adding one is its module, this line and its test.
NOTIFIER_KINDS = (WebhookConfig, AlertmanagerConfig, EmailConfig, AppriseConfig)

NotifierConfig = Annotated[
    WebhookConfig | AlertmanagerConfig | EmailConfig | AppriseConfig,
    Field(discriminator="type"),
]


def notifier_names(configs: list[NotifierConfig]) -> list[str]:
    """Each notifier's name: its own, else its type, numbered from the second of a type on."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for config in configs:
        seen[config.type] = count = seen.get(config.type, 0) + 1
        names.append(config.name or (config.type if count == 1 else f"{config.type}-{count}"))
    return names


# Outboxes the runner always has; their names key the state file too.
_BUILT_IN = ("mqtt", "log")


def _distinct_names(configs: list[NotifierConfig]) -> list[NotifierConfig]:
    names = [*_BUILT_IN, *notifier_names(configs)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"notifier name(s) used twice: {', '.join(duplicates)}")
    return configs


# The config's `notifiers:` list: names are checked while loading, so outboxes never share one.
NotifierList = Annotated[list[NotifierConfig], AfterValidator(_distinct_names)]


@runtime_checkable
class Resender(Protocol):
    """A notifier whose receiver forgets alerts unless they are re-sent (Alertmanager)."""

    name: str

    async def keep_alive(self, firing: Callable[[], Sequence[Alert]]) -> NoReturn:
        """Re-send the alerts `firing()` returns, forever."""
        ...
