"""The registry of configurable notifiers: the discriminated union of their configs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, NoReturn, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from daemon.notifiers.alertmanager import AlertmanagerConfig
from daemon.notifiers.base import Notifier
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.notifiers.email import EmailConfig
from daemon.notifiers.webhook import WebhookConfig
from daemon.vocabulary.alert import Alert

if TYPE_CHECKING:
    from daemon.config.schema import Config

__all__ = [
    "NOTIFIER_KINDS",
    "NotifierConfig",
    "NotifierList",
    "Resender",
    "build_notifiers",
    "site_of",
]

# One line per notifier: adding one is its module, this line and its test.
NOTIFIER_KINDS = (WebhookConfig, AlertmanagerConfig, EmailConfig)

NotifierConfig = Annotated[
    WebhookConfig | AlertmanagerConfig | EmailConfig,
    Field(discriminator="type"),
]


def _names(configs: list[NotifierConfig]) -> list[str]:
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
    names = [*_BUILT_IN, *_names(configs)]
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


def site_of(config: Config) -> Site:
    """The site as notifiers present it."""
    return Site(
        id=config.site.id, name=config.site.name or config.site.id, base_url=config.base_url,
        storehouses={s.id: StorehouseInfo(s.name or s.id, ZoneInfo(s.timezone))
                     for s in config.storehouses},
    )


def build_notifiers(config: Config) -> list[Notifier]:
    """The configured notifiers, in config order (MQTT and log are built by the runner)."""
    site = site_of(config)
    return [c.build(site, name) for c, name in zip(config.notifiers, _names(config.notifiers),
                                                    strict=True)]
