"""The registry of configurable notifiers: the discriminated union of their configs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, NoReturn, Protocol, runtime_checkable

from pydantic import AfterValidator, Field

from daemon.notifiers.alertmanager import AlertmanagerConfig
from daemon.notifiers.apprise import AppriseConfig
from daemon.notifiers.base import Notifier
from daemon.notifiers.common import Site
from daemon.notifiers.dual import DualPathConfig
from daemon.notifiers.email import EmailConfig
from daemon.notifiers.sms import SmsConfig
from daemon.notifiers.webhook import WebhookConfig
from daemon.vocabulary.alert import Alert

__all__ = [
    "NOTIFIER_KINDS",
    "NotifierConfig",
    "NotifierList",
    "Resender",
    "build_notifiers",
    "notifier_names",
]

# One line per notifier: adding one is its module, this line and its test.
NOTIFIER_KINDS = (WebhookConfig, AlertmanagerConfig, EmailConfig, AppriseConfig, SmsConfig,
                  DualPathConfig)

NotifierConfig = Annotated[
    WebhookConfig | AlertmanagerConfig | EmailConfig | AppriseConfig | SmsConfig
    | DualPathConfig,
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
    plain = {n for c, n in zip(configs, names[len(_BUILT_IN):], strict=True)
             if not isinstance(c, DualPathConfig)}
    for config in configs:
        if isinstance(config, DualPathConfig):
            wrong = [p for p in config.paths if p not in plain]
            if wrong:
                raise ValueError(f"{config.name or config.type}: no notifier named "
                                 f"{', '.join(wrong)} (paths are other notifiers, not mqtt, "
                                 "log or another dual_path)")
    return configs


def build_notifiers(configs: list[NotifierConfig], site: Site) -> list[Notifier]:
    """The notifiers, in config order; a notifier that is a dual path's primary or fallback is
    told only through that dual path, never on its own."""
    names = notifier_names(configs)
    built = {n: c.build(site, n) for c, n in zip(configs, names, strict=True)
             if not isinstance(c, DualPathConfig)}
    paths = {p for c in configs if isinstance(c, DualPathConfig) for p in c.paths}
    return [c.build(site, n, built) if isinstance(c, DualPathConfig) else built[n]
            for c, n in zip(configs, names, strict=True) if n not in paths]


# The config's `notifiers:` list: names are checked while loading, so outboxes never share one.
NotifierList = Annotated[list[NotifierConfig], AfterValidator(_distinct_names)]


@runtime_checkable
class Resender(Protocol):
    """A notifier whose receiver forgets alerts unless they are re-sent (Alertmanager)."""

    name: str

    async def keep_alive(self, firing: Callable[[], Sequence[Alert]]) -> NoReturn:
        """Re-send the alerts `firing()` returns, forever."""
        ...
