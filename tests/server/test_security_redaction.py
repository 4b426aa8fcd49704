"""Sensitive fields never reach the model: tool results and the host page's context lose the
configured fields and have the configured patterns masked, in the request the model gets and in
the transcript that is replayed to it later; the log counts what went, never the values. Also
the log filter that keeps the server's own secrets out of every log line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.security.redaction import MASK, Redactor, SecretScrubber
from tests.server import security_pack as pack
from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, frames_of
from tests.server.security_support import SECURITY_PACK, StartServer, server_starter

pytestmark = pytest.mark.timeout(120)

SECRETS = [
    pack.SECRET_SSN,
    pack.SECRET_PASSWORD,
    pack.SECRET_API_KEY,
    pack.SECRET_CARD,
    pack.SECRET_IBAN,
]


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


# -- the redactor on its own ------------------------------------------------------------------


def test_configured_fields_go_at_any_depth_whatever_their_spelling() -> None:
    redactor = Redactor.from_settings(Settings())
    cleaned, counts = redactor.redact(
        {
            "name": "Ann",
            "SSN": "078-05-1120",
            "people": [{"apiKey": "k1", "API-KEY": "k2", "card_number": "x", "ok": 1}],
            "bank": {"Iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
        }
    )
    assert cleaned == {"name": "Ann", "people": [{"ok": 1}], "bank": {"bic": "COBADEFFXXX"}}
    assert counts == {"field:ssn": 1, "field:apikey": 2, "field:cardnumber": 1, "field:iban": 1}


def test_builtin_patterns_mask_only_what_checks_out() -> None:
    redactor = Redactor.from_settings(Settings())
    text = (
        "card 4111 1111 1111 1111, order 4111 1111 1111 1112, "
        "iban DE89 3704 0044 0532 0130 00, not an iban DE00 3704 0044 0532 0130 00, "
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl, key sk-abcdefghijklmnopqrstuvwx"
    )
    cleaned, counts = redactor.redact({"note": text})
    assert cleaned["note"] == (
        f"card {MASK}, order 4111 1111 1111 1112, iban {MASK}, "
        f"not an iban DE00 3704 0044 0532 0130 00, token {MASK}, key {MASK}"
    )
    assert counts == {
        "pattern:card_number": 1,
        "pattern:iban": 1,
        "pattern:jwt": 1,
        "pattern:api_key": 1,
    }


def test_custom_patterns_as_a_json_list_or_lines() -> None:
    for raw in ('["EMP-\\\\d{6}", "secret-[a-z]+"]', "EMP-\\d{6}\nsecret-[a-z]+"):
        redactor = Redactor.from_settings(
            Settings(redact_patterns=raw, redact_builtin_patterns=False)
        )
        cleaned, counts = redactor.redact(["EMP-123456 and secret-sauce, EMP-12"])
        assert cleaned == [f"{MASK} and {MASK}, EMP-12"]
        assert counts == {"pattern:custom_1": 1, "pattern:custom_2": 1}
    with pytest.raises(ValueError, match="entry 1 is invalid"):
        Redactor.from_settings(Settings(redact_patterns='["(unclosed"]'))


def test_json_text_is_looked_into_and_other_values_pass_unchanged() -> None:
    redactor = Redactor.from_settings(Settings())
    cleaned, counts = redactor.redact('{"password": "p", "rows": [1, 2]}')
    assert json.loads(cleaned) == {"rows": [1, 2]}
    assert counts == {"field:password": 1}
    assert redactor.redact("{not json") == ("{not json", {})
    assert redactor.redact(42) == (42, {})
    deep: Any = "leaf"
    for _ in range(100):
        deep = {"n": deep}
    cleaned, counts = redactor.redact(deep)
    assert counts == {"field:too_deep": 1}


def test_the_log_filter_masks_secrets_and_tokens_everywhere_in_a_record() -> None:
    secret = "jwt-secret-value-0123456789"
    scrubber = SecretScrubber([secret, "sk-live-key-abcdef", "abc"])  # "abc" is too short
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        record = logging.LogRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "key %s token %s abc",
            ("sk-live-key-abcdef", token),
            exc_info=sys.exc_info(),
        )
    record.detail = f"extra {secret}"
    assert scrubber.filter(record)
    rendered = logging.Formatter().format(record)
    for leaked in (secret, "sk-live-key-abcdef", token):
        assert leaked not in rendered
        assert leaked not in record.detail
    assert "abc" in rendered
    assert "RuntimeError: failed with [redacted]" in rendered


# -- through a live server --------------------------------------------------------------------


def model_messages(model: DevModel) -> list[dict[str, Any]]:
    """Every message of every request the model received."""
    return [message for request in model.requests() for message in request["body"]["messages"]]


async def test_tool_results_reach_the_model_and_transcript_redacted(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(tools=SECURITY_PACK)
    tab = await server.tab()
    frames = await tab.ask("[call employee_record] {}", "r-1")
    assert frames[-1]["status"] == "completed"
    assert frames_of(frames, "tool_result")[0]["ok"] is True
    tool_messages = [m for m in model_messages(model) if m["role"] == "tool"]
    assert len(tool_messages) == 1
    content = tool_messages[0]["content"]
    assert "Ann Example" in content
    assert "Example Bank" in content
    assert MASK in content  # the card number inside the notes
    for secret in SECRETS:
        assert secret not in content
    (rounds,) = (
        await rows(
            server.config.database_url,
            "SELECT tool_rounds FROM message WHERE turn_id = :t AND role = 'assistant'",
            t=frames[-1]["turn_id"],
        )
    )[0]
    stored = rounds if isinstance(rounds, str) else json.dumps(rounds)
    assert "Ann Example" in stored
    for secret in SECRETS:
        assert secret not in stored
    # A later turn replays the redacted result from the transcript.
    conversation = frames[0]["conversation_id"]
    model.clear_requests()
    await tab.ask("[say] thanks", "r-2", conversation_id=conversation)
    replayed = json.dumps(model_messages(model))
    assert "Ann Example" in replayed
    for secret in SECRETS:
        assert secret not in replayed
    log = server.output()
    assert "redacted from a tool result before the model: " in log
    assert "field:ssn x1" in log
    for secret in SECRETS:
        assert secret not in log
    await tab.close()


async def test_host_context_reaches_the_model_redacted(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(PARLEY_REDACT_PATTERNS='["EMP-\\\\d{6}"]')
    tab = await server.tab()
    context = {
        "screen": "employee",
        "record": {"id": "EMP-123456", "name": "Ann Example", "iban": pack.SECRET_IBAN},
        "note": f"pays with {pack.SECRET_CARD}",
    }
    frames = await tab.ask("[say] noted", "ctx-1", context=context)
    assert frames[-1]["status"] == "completed"
    texts = [message.get("content") or "" for message in model_messages(model)]
    notes = [text for text in texts if "host application" in text]
    assert len(notes) == 1
    assert "Ann Example" in notes[0]
    for leaked in ("EMP-123456", pack.SECRET_IBAN, pack.SECRET_CARD):
        assert leaked not in notes[0]
    assert "redacted from a context before the model" in server.output()
    await tab.close()
