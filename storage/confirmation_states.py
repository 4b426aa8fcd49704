"""The life of a confirmation: its states, the moves between them, and the audit trail's names.

::

    pending ───► approved ───► executed | failed
       │  ◄─────────┘  (the action limit refused the approval; nothing ran)
       └───► rejected | expired | cancelled

A confirmation leaves ``pending`` when the user decides, its time runs out, or its turn is
cancelled. An approved one moves once more: to executed or failed when the action has run, or
back to pending when the action limit refused the approval before anything ran. ``TRANSITIONS``
is the one place these edges are written down; ``ConfirmationStore.transition`` refuses any
other before it touches SQL, so an illegal edge cannot be written.

The values are what the ``confirmation.status`` column holds; renaming one needs a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ConfirmationState(StrEnum):
    """Where a confirmation stands: pending; then approved, rejected, expired or cancelled;
    an approved one then executed or failed (or pending again, if the action limit refused the
    approval)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    EXECUTED = "executed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """Nothing can happen to a confirmation in this state any more."""
        return not TRANSITIONS[self]


TRANSITIONS: Final[Mapping[ConfirmationState, frozenset[ConfirmationState]]] = MappingProxyType(
    {
        ConfirmationState.PENDING: frozenset(
            {
                ConfirmationState.APPROVED,
                ConfirmationState.REJECTED,
                ConfirmationState.EXPIRED,
                ConfirmationState.CANCELLED,
            }
        ),
        ConfirmationState.APPROVED: frozenset(
            {ConfirmationState.EXECUTED, ConfirmationState.FAILED, ConfirmationState.PENDING}
        ),
        ConfirmationState.REJECTED: frozenset(),
        ConfirmationState.EXPIRED: frozenset(),
        ConfirmationState.CANCELLED: frozenset(),
        ConfirmationState.EXECUTED: frozenset(),
        ConfirmationState.FAILED: frozenset(),
    }
)
"""The states each state may move to; a state that maps to nothing is final."""


def check_transition(old: ConfirmationState, new: ConfirmationState) -> None:
    """Make sure a confirmation may move from ``old`` to ``new``.

    Raises:
        RuntimeError: the move is not in ``TRANSITIONS`` (or a state is not a state at all):
            a bug in the caller, never a state of the world.
    """
    allowed = TRANSITIONS.get(old)
    if allowed is None:
        raise RuntimeError(f"unknown confirmation state {old!r}")
    if new not in allowed:
        raise RuntimeError(f"illegal confirmation transition {str(old)!r} -> {str(new)!r}")


class AuditEventKind(StrEnum):
    """One step in the life of an action: requested; the state its confirmation entered; or
    refused, when the user's roles do not allow the tool."""

    # Every step but these two is named after a confirmation state; ``entered`` maps them.
    REQUESTED = "requested"
    APPROVED = ConfirmationState.APPROVED.value
    REJECTED = ConfirmationState.REJECTED.value
    EXPIRED = ConfirmationState.EXPIRED.value
    CANCELLED = ConfirmationState.CANCELLED.value
    EXECUTED = ConfirmationState.EXECUTED.value
    FAILED = ConfirmationState.FAILED.value
    REFUSED = "refused"

    @classmethod
    def entered(cls, state: ConfirmationState) -> AuditEventKind:
        """The audit step recorded when a confirmation enters ``state``.

        Raises:
            RuntimeError: ``state`` is ``pending``, which has no step of its own: a new
                confirmation is ``requested``, and an approval taken back before its action
                ran (over the action limit) was never audited as approved.
        """
        if state is ConfirmationState.PENDING:
            raise RuntimeError("entering 'pending' is no audit step; a new one is 'requested'")
        return cls(state.value)


class DecisionVia(StrEnum):
    """How the user decided a confirmation, as its audit rows record it."""

    BUTTON = "button"  # a ``confirm`` frame: the card's buttons (or any client sending one)
    TYPED = "typed"  # a message that was only a yes or a no (server/turns/approvals.py)
