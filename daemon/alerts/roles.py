"""What an officer may do: viewer, operator, records and administrator, on tokens and console
alike. Operating (acknowledge, silence) and keeping the records (roster, orders) are separate:
a records officer reads and keeps the book but acknowledges nothing, an operator the reverse;
an administrator may do both."""

from __future__ import annotations

import enum

from daemon.alerts.alarm import LifecycleError

__all__ = ["NEEDS", "Forbidden", "Role", "require"]


class Role(enum.StrEnum):
    """An officer's role; each one may do what the one before it may, and more."""

    VIEWER = "viewer"  # reads alarms, silences, events and metrics
    OPERATOR = "operator"  # acknowledges, checks, silences within limits, approves others'
    ADMINISTRATOR = "administrator"  # officers, tokens and settings, besides an operator's
    RECORDS = "records"  # reads, and keeps the roster, items and orders (issue 19)


# Records sits beside the line viewer < operator < administrator, ranked as a viewer there.
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMINISTRATOR: 2, Role.RECORDS: 0}

# The least role each officers' action takes, whichever door it comes through.
NEEDS: dict[str, Role] = {
    "read": Role.VIEWER,
    "ack": Role.OPERATOR,
    "check": Role.OPERATOR,
    "silence": Role.OPERATOR,
    "approve": Role.OPERATOR,
    "expire": Role.OPERATOR,
    # Setting and unsetting a zone, forced or not (the officer is recorded with what was open).
    "arm": Role.OPERATOR,
    "disarm": Role.OPERATOR,
    "walk_test": Role.OPERATOR,
    # The book: add, change, revoke, issue and close orders, import; approving a second
    # officer's change takes the same role.
    "records": Role.RECORDS,
}


class Forbidden(LifecycleError):
    """The officer's role does not allow the action."""


def require(role: Role, action: str, officer: str) -> None:
    """Raise Forbidden unless `role` may take `action` (an unknown action takes administrator)."""
    needed = NEEDS.get(action, Role.ADMINISTRATOR)
    if needed is Role.RECORDS:
        if role in (Role.RECORDS, Role.ADMINISTRATOR):
            return
        raise Forbidden(f"{officer} is a {role.value}: {action} takes a records officer "
                        "or an administrator")
    if _RANK[role] < _RANK[needed]:
        raise Forbidden(f"{officer} is a {role.value}: {action} takes an {needed.value}")
