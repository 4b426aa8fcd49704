"""Answers to the server's notes about approvals: an outcome to report, a yes that needs a
"which one?".

A continuation turn tells the model what became of an action the user was asked to approve
(server/turns/action_outcomes.py writes the note); a real model reads it and says so in a
sentence. The dev model reads the same note with :data:`OUTCOME_NOTE` and answers "Done: …",
"Cancelled: …" and the like, so the demo and the tests see the outcome reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from server.devllm.answers import LABEL_KEYS, ToolResult, answer_tool_results

OUTCOME_NOTE = re.compile(
    r"^Update on the action (?P<action>\S+) \(card [^)]*\), requested earlier in this "
    r"conversation, with parameters (?P<params>.*?)"
    r"(?P<edited> \(the user edited the parameters before approving\))?: "
    r"(?P<status>executed|failed|rejected|expired|cancelled|approved)\. "
    r"Result: (?P<result>.*)\. Tell the user the outcome in one sentence\.$",
    re.DOTALL,
)
WHICH_ONE_NOTE = re.compile(
    r"would decide an approval, but (?P<count>.+?) are pending: (?P<cards>.*)\. "
    r"Nothing was decided\. Ask the user which one they mean",
    re.DOTALL,
)
_QUOTED = re.compile(r"“([^”]*)”")


def answer_outcome(match: re.Match[str]) -> str:
    """One sentence reporting what became of an approval, from an :data:`OUTCOME_NOTE`."""
    action = match.group("action").rpartition("__")[2]
    what = action.replace("_", " ")
    params = _loads(match.group("params"))
    result = _loads(match.group("result"))
    target = _label(params)
    subject = f"{what} {target}".strip()
    match match.group("status"):
        case "executed":
            return _done(action, subject, result, edited=match.group("edited") is not None)
        case "failed":
            error = result.get("error") if isinstance(result, Mapping) else None
            reason = str(error or "no reason given").strip().rstrip(".")
            return f"Sorry, {subject} didn't go through: {reason}."
        case "rejected":
            return f"Cancelled: {subject} was not carried out, as you decided."
        case "expired":
            return f"The approval to {subject} expired, so nothing was done."
        case "cancelled":
            return f"The request to {subject} was withdrawn; nothing was done."
        case _:
            return f"You approved {subject}; it is being carried out."


def answer_which_one(match: re.Match[str]) -> str:
    """A question naming the open approvals, from a :data:`WHICH_ONE_NOTE`."""
    cards = _QUOTED.findall(match.group("cards"))
    named = " or ".join(f"“{card}”" for card in cards) or "one of your open approvals"
    return (
        f"You have {match.group('count')} approvals waiting: which one do you mean, "
        f"{named}? Please use the buttons on its card."
    )


def _done(action: str, subject: str, result: Any, *, edited: bool) -> str:
    label = _label(result)
    status = result.get("status") if isinstance(result, Mapping) else None
    changed = " with your changes" if edited else ""
    if label and isinstance(status, str):
        return f"Done{changed}: {label} is now {status.replace('_', ' ')}."
    details = answer_tool_results(
        [ToolResult(name=action, content=json.dumps(result, default=str))]
    )
    return f"Done{changed}: {subject}. {details}"


def _label(value: Any) -> str:
    """What an object is called: its first naming field (a PO number, a customer)."""
    if not isinstance(value, Mapping):
        return ""
    for key in LABEL_KEYS:
        item = value.get(key)
        if isinstance(item, str | int) and not isinstance(item, bool):
            return str(item)
    return ""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
