"""What the model hears about a tool call: a result as text, and a decided action's outcome."""

from __future__ import annotations

from typing import Any

import orjson

from server.tools.registry import ToolOutcome
from storage.confirmation_states import ConfirmationState
from storage.models import Confirmation


def outcome_for_model(confirmation: Confirmation) -> ToolOutcome:
    """What the model hears about a decided action."""
    status = confirmation.status
    if status in (ConfirmationState.EXECUTED, ConfirmationState.FAILED):
        execution = confirmation.execution_result or {}
        return ToolOutcome(
            bool(execution.get("ok")),
            execution.get("result"),
            str(execution.get("summary", status)),
        )
    messages = {
        ConfirmationState.REJECTED: "The user rejected this action; it was not carried out.",
        ConfirmationState.EXPIRED: (
            "The user did not confirm this action in time; it was not carried out."
        ),
        ConfirmationState.CANCELLED: (
            "The turn was cancelled before the user decided; nothing was carried out."
        ),
    }
    message = messages.get(status, f"The action was not carried out ({status}).")
    return ToolOutcome(False, {"error": message, "status": status}, message)


def outcome_note(confirmation: Confirmation, max_chars: int) -> str:
    """The note a continuation turn answers: what became of an action the user was asked to
    approve in an earlier turn (decided, failed, expired, withdrawn)."""
    outcome = outcome_for_model(confirmation)
    params = (
        confirmation.approved_params
        if confirmation.approved_params is not None
        else confirmation.params
    )
    edited = (
        " (the user edited the parameters before approving)"
        if (confirmation.approved_params is not None)
        else ""
    )
    return (
        f"Update on the action {confirmation.action} (card {confirmation.token}), requested "
        f"earlier in this conversation, with parameters {result_text(params, max_chars)}{edited}: "
        f"{confirmation.status}. Result: {result_text(outcome.result, max_chars)}. "
        "Tell the user the outcome in one sentence."
    )


def result_text(value: Any, max_chars: int) -> str:
    """A tool result as the text the model reads, cut at ``max_chars``
    (``PARLEY_TOOL_RESULT_MAX_CHARS``)."""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    if len(text) > max_chars:
        return text[:max_chars] + "…(truncated)"
    return text
