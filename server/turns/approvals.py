"""What the model and the user's words have to do with approvals that are still open.

A pending approval never holds the conversation (invariant 12): the turn that asked ends,
other messages run meanwhile, and each of them tells the model which approvals are still open
(:func:`pending_note`). A message that is only a yes or a no decides the conversation's one
open approval as its card's buttons would (:class:`DecisionWords`); with several open, the
model is told to ask which one the user means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from protocol import Decision
from storage.models import Confirmation

# Characters a typed answer may end with and still be one word ("yes!", "ok.", "nein…").
_TRAILING = " \t\r\n.!?,;:…"
# Characters of one pending card's parameters the model is shown in a note.
_PARAMS_NOTE_CHARS = 300


class DecisionWords:
    """The configured yes and no words, matched against a whole message."""

    def __init__(self, yes: Iterable[str], no: Iterable[str]) -> None:
        self._yes = frozenset(_normal(word) for word in yes if _normal(word))
        self._no = frozenset(_normal(word) for word in no if _normal(word))

    def decision(self, text: str) -> Decision | None:
        """Approve or reject when ``text`` is, alone, one of the words; None otherwise.

        Case, surrounding blanks and trailing punctuation are ignored; a word in both lists
        decides nothing.
        """
        word = _normal(text)
        if word in self._yes and word not in self._no:
            return Decision.APPROVE
        if word in self._no and word not in self._yes:
            return Decision.REJECT
        return None


def _normal(text: str) -> str:
    return " ".join(text.strip().rstrip(_TRAILING).split()).casefold()


def awaiting_result(token: str) -> dict[str, str]:
    """The tool result an action gets in the transcript while its card waits for the user, so
    every tool call has its result (invariant 6) and the conversation can go on."""
    return {
        "status": "awaiting_approval",
        "card": token,
        "note": (
            f"Waiting for the user's approval, card {token}. Nothing has been carried out yet. "
            "Do not call this action again: the outcome will be reported in a later message."
        ),
    }


def pending_note(pending: Sequence[Confirmation], limit: int, *, ambiguous: str | None) -> str:
    """A system note naming the conversation's open approvals (at most ``limit`` of them).

    ``pending`` may hold one card more than ``limit`` (the caller reads no more): the note then
    says there are more without counting them. ``ambiguous`` is the user's message when it was
    a yes or a no that could decide any of several: the note tells the model to ask which one.
    """
    shown = pending[: max(limit, 0)]
    cards = "; ".join(
        f"“{card.summary}” (action {card.action}, card {card.token}, parameters "
        f"{_short_params(card)})"
        for card in shown
    )
    truncated = len(pending) > len(shown)
    if truncated:
        cards += "; and others not listed here"
    if ambiguous is not None:
        count = f"more than {len(shown)}" if truncated else str(len(pending))
        return (
            f"The user's reply “{ambiguous[:40]}” would decide an approval, but "
            f"{count} are pending: {cards}. Nothing was decided. Ask the user which "
            "one they mean, naming them; they can decide it on its card."
        )
    return (
        "Approvals still waiting for the user's decision in this conversation (they do not "
        "hold the conversation; the user decides them on their cards, or by replying yes or "
        f"no while only one is open): {cards}. Do not request these actions again."
    )


def _short_params(card: Confirmation) -> str:
    text = orjson.dumps(card.params, default=str).decode()
    return text if len(text) <= _PARAMS_NOTE_CHARS else text[:_PARAMS_NOTE_CHARS] + "…"
