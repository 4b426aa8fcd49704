"""Typed decisions and the notes about open approvals, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol import Decision
from server.config import Settings
from server.turns.approvals import DecisionWords, awaiting_result, pending_note
from storage.models import Confirmation

WORDS = DecisionWords(Settings().confirm_yes_words, Settings().confirm_no_words)


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ("yes", Decision.APPROVE),
        ("  Yes!  ", Decision.APPROVE),
        ("Go ahead.", Decision.APPROVE),
        ("go   ahead", Decision.APPROVE),
        ("OK", Decision.APPROVE),
        ("Bestätigen", Decision.APPROVE),
        ("ja…", Decision.APPROVE),
        ("no", Decision.REJECT),
        ("Cancel!", Decision.REJECT),
        ("Nein.", Decision.REJECT),
        ("STOPP", Decision.REJECT),
        ("yes please approve PO-1001", None),
        ("what's our cash balance?", None),
        ("", None),
        ("?!", None),
    ],
)
def test_only_a_whole_message_of_one_word_decides(text: str, decision: Decision | None) -> None:
    assert WORDS.decision(text) == decision


def test_the_word_lists_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {"PARLEY_CONFIRM_YES_WORDS": "sure, do it", "PARLEY_CONFIRM_NO_WORDS": "nope,sure"}
    )
    words = DecisionWords(settings.confirm_yes_words, settings.confirm_no_words)
    assert words.decision("Do it!") == Decision.APPROVE
    assert words.decision("nope") == Decision.REJECT
    assert words.decision("yes") is None
    # A word in both lists decides nothing.
    assert words.decision("sure") is None


def card(number: int) -> Confirmation:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    return Confirmation(
        token=f"cf-{number}",
        tenant="acme",
        user_id="alice",
        conversation_id="c_1",
        turn_id="t_1",
        call_id=f"call_{number}",
        action="approve_purchase_order",
        params={"po_number": f"PO-{number}"},
        summary=f"Approve purchase order PO-{number}",
        created_at=now,
        expires_at=now,
    )


def test_the_pending_note_names_the_cards_up_to_its_bound() -> None:
    note = pending_note([card(1001), card(1002), card(1003)], 2, ambiguous=None)
    assert "“Approve purchase order PO-1001” (action approve_purchase_order, card cf-1001" in note
    assert "cf-1002" in note
    assert "cf-1003" not in note
    assert "and others not listed here" in note
    assert "Do not request these actions again" in note


def test_an_ambiguous_yes_asks_the_model_to_ask_which_one() -> None:
    note = pending_note([card(1001), card(1002)], 5, ambiguous="yes")
    assert note.startswith("The user's reply “yes” would decide an approval, but 2 are pending")
    assert "Ask the user which one they mean" in note
    many = pending_note([card(1001), card(1002), card(1003)], 2, ambiguous="ok")
    assert "but more than 2 are pending" in many


def test_the_interim_result_names_the_card_and_says_nothing_ran() -> None:
    result = awaiting_result("cf-9")
    assert result["status"] == "awaiting_approval"
    assert result["card"] == "cf-9"
    assert "Nothing has been carried out yet" in result["note"]
