"""Page tools over real sockets: a tab offers functions of its page, the scripted model calls
them as ``page__<name>``, the right tab runs them and the model answers from their result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of
from tests.server.page_tools_support import Page, answer_of, tool_spec

pytestmark = pytest.mark.timeout(120)


def opened(label: str) -> Any:
    """A handler of ``open_record`` that says which tab opened the record."""
    return lambda arguments: {"result": {"message": f"{label} opened {arguments['id']}."}}


def never_answers(arguments: dict[str, Any]) -> None:
    return None


async def next_error(page: Page) -> dict[str, Any]:
    """The next ``error`` frame the page receives."""
    before = len(frames_of(page.frames, "error"))
    await page.wait_for(lambda frame: len(frames_of(page.frames, "error")) > before)
    return frames_of(page.frames, "error")[before]


def offered_tools(model: DevModel) -> list[set[str]]:
    """The tool names offered in each request the model got."""
    return [
        {tool["function"]["name"] for tool in request["body"].get("tools") or []}
        for request in model.requests()
    ]


async def tool_rounds(server: ParleyServer, turn_id: str) -> list[dict[str, Any]]:
    (found,) = await rows(
        server.config.database_url,
        "SELECT tool_rounds FROM message WHERE turn_id = :t AND role = 'assistant'",
        t=turn_id,
    )
    rounds = found[0]
    return list(json.loads(rounds) if isinstance(rounds, str) else rounds)


async def test_the_model_calls_a_page_tool_and_answers_from_its_result(
    server: ParleyServer, model: DevModel
) -> None:
    page = await Page.open(server, {"open_record": opened("The page")})

    frames = await page.ask("open PO-1003", "m-1")

    assert [call["name"] for call in page.calls] == ["open_record"]
    assert page.calls[0]["arguments"] == {"id": "PO-1003"}
    assert "seq" not in page.calls[0]  # sent to this tab alone, not through the log
    (call,) = frames_of(frames, "tool_call")
    assert (call["name"], call["arguments"]) == ("page__open_record", {"id": "PO-1003"})
    (result,) = frames_of(frames, "tool_result")
    assert (result["ok"], result["summary"]) == (True, "The page opened PO-1003.")
    assert answer_of(frames) == "The page opened PO-1003."
    assert "page__open_record" in offered_tools(model)[0]
    await page.close()


async def test_with_two_tabs_the_call_runs_in_the_tab_that_sent_the_message(
    server: ParleyServer,
) -> None:
    first = await Page.open(server, {"open_record": opened("The first tab")})
    second = await Page.open(server, {"open_record": opened("The second tab")})

    frames = await second.ask("open PO-1003", "m-1")

    assert answer_of(frames) == "The second tab opened PO-1003."
    assert len(second.calls) == 1
    assert first.calls == []
    await first.close()
    await second.close()


async def test_a_tab_without_the_tool_has_it_run_in_a_tab_that_has_it(
    server: ParleyServer,
) -> None:
    with_tool = await Page.open(server, {"open_record": opened("The table tab")})
    without = await Page.open(server, {})

    frames = await without.ask("open PO-1003", "m-1")

    assert answer_of(frames) == "The table tab opened PO-1003."
    assert [call["arguments"] for call in with_tool.calls] == [{"id": "PO-1003"}]
    assert without.calls == []
    await with_tool.close()
    await without.close()


async def test_a_handler_that_throws_is_a_tool_error_the_model_reports(
    server: ParleyServer,
) -> None:
    page = await Page.open(
        server, {"open_record": lambda arguments: {"error": "no row PO-1003 on this page"}}
    )

    frames = await page.ask("open PO-1003", "m-1")

    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is False
    assert "no row PO-1003 on this page" in answer_of(frames)
    assert frames_of(frames, "turn_end")[0]["status"] == "completed"
    await page.close()


async def test_another_users_page_tools_are_never_offered_nor_answerable(
    server: ParleyServer, model: DevModel
) -> None:
    bob = await Page.open(server, {"open_record": never_answers}, token=server.token("bob-x"))
    alice = await Page.open(server, {})

    frames = await alice.ask("open PO-1003", "m-1")

    assert frames_of(frames, "tool_call") == []
    assert all(
        not any(name.startswith("page__") for name in tools) for tools in offered_tools(model)
    )
    assert bob.calls == []

    # Bob's own call, answered from Alice's socket: refused; Bob's answer still counts.
    await bob.tab.send({"type": "user_message", "client_msg_id": "b-1", "text": "open PO-1003"})
    call = await bob.wait_for(lambda frame: frame["type"] == "page_tool_call")
    await alice.tab.send(
        {"type": "page_tool_result", "call_id": call["call_id"], "result": "Alice was here."}
    )
    refusal = await alice.wait_for(lambda frame: frame["type"] == "error")
    assert refusal["code"] == "page_tool_call_not_found"
    assert refusal["ref"] == call["call_id"]
    await bob.tab.send(
        {"type": "page_tool_result", "call_id": call["call_id"], "result": "Bob opened it."}
    )
    response = await bob.wait_for(lambda frame: frame["type"] == "response")
    assert response["text"] == "Bob opened it."
    await alice.close()
    await bob.close()


async def test_bad_page_tool_frames_get_errors_and_the_tab_keeps_its_tools(
    server: ParleyServer,
) -> None:
    page = await Page.open(server, {"open_record": opened("The page")})
    schema = tool_spec("x")["parameters"]
    bad_sets: list[tuple[list[dict[str, Any]], str]] = [
        ([tool_spec("open record")], "tools[0].name"),
        ([tool_spec("a" * 49)], "tools[0].name"),
        ([tool_spec("a"), tool_spec("a")], "tools[1].name"),
        ([{**tool_spec("a"), "parameters": {"type": "array"}}], "tools[0].parameters"),
        (
            [{**tool_spec("a"), "parameters": {**schema, "properties": {"id": {"type": 5}}}}],
            "tools[0].parameters",
        ),
        ([tool_spec(f"t{n}") for n in range(33)], "at most 32"),
        ([{**tool_spec("a"), "description": "x" * 40_000}], "bytes"),
    ]
    for tools, named in bad_sets:
        await page.tab.send({"type": "page_tools", "tools": tools})
        error = await next_error(page)
        assert error["code"] == "invalid_field", error
        assert named in error["message"], error
    await page.tab.send({"type": "page_tools", "tools": [{"name": "x"}]})
    assert (await next_error(page))["code"] == "missing_field"
    await page.tab.send({"type": "page_tool_result", "result": 1})
    assert (await next_error(page))["code"] == "missing_field"
    await page.tab.send({"type": "page_tool_result", "call_id": "pt_unknown", "result": 1})
    assert (await next_error(page))["code"] == "page_tool_call_not_found"

    # Nothing was lost: the earlier registration still runs.
    frames = await page.ask("open PO-1003", "m-1")
    assert answer_of(frames) == "The page opened PO-1003."
    await page.close()


PROFILES = """
[[profile]]
id = "desk"
title = "Desk"
tools = ["page__*"]
default = true

[[profile]]
id = "ledger"
title = "Ledger"
tools = ["cash_*"]
"""


@pytest.fixture
def profiled(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """A server whose profiles offer the page's tools to one kind of conversation only."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES, "utf-8")
    parley = ParleyServer(tmp_path, backend.config(model, PARLEY_PROFILES=str(profiles)))
    yield parley
    parley.stop()


async def test_a_profile_offers_page_tools_only_when_its_tools_name_them(
    profiled: ParleyServer, model: DevModel
) -> None:
    page = await Page.open(profiled, {"open_record": opened("The page")})

    frames = await page.ask("open PO-1003", "m-1", profile="desk")
    assert answer_of(frames) == "The page opened PO-1003."
    assert "page__open_record" in offered_tools(model)[-1]

    # Not offered to a conversation of a profile without them...
    await page.ask("what can you do?", "m-2", profile="ledger")
    assert "page__open_record" not in offered_tools(model)[-1]
    # ...and refused if the model calls it all the same: the page never hears of it.
    frames = await page.ask('[call page__open_record] {"id": "PO-1004"}', "m-3", profile="ledger")
    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is False
    assert "profile" in result["summary"]
    assert [call["arguments"] for call in page.calls] == [{"id": "PO-1003"}]
    await page.close()


@pytest.fixture
def impatient(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """A server that gives a tab half a second to answer a page tool call."""
    parley = ParleyServer(tmp_path, backend.config(model, PARLEY_PAGE_TOOL_TIMEOUT_S="0.5"))
    yield parley
    parley.stop()


async def test_no_answer_ends_the_call_with_a_tool_error_and_the_turn_completes(
    impatient: ParleyServer,
) -> None:
    page = await Page.open(impatient, {"open_record": never_answers})

    frames = await page.ask("open PO-1003", "m-1")

    assert len(page.calls) == 1
    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is False
    assert "did not answer within 0.5s" in answer_of(frames)
    (end,) = frames_of(frames, "turn_end")
    assert end["status"] == "completed"
    # Invariant 6: the call has its result in the transcript.
    (round_,) = await tool_rounds(impatient, end["turn_id"])
    assert [result["tool_call_id"] for result in round_["results"]] == [
        call["id"] for call in round_["calls"]
    ]
    # The late answer is refused, and changes nothing.
    await page.tab.send(
        {"type": "page_tool_result", "call_id": page.calls[0]["call_id"], "result": "late"}
    )
    late = await page.wait_for(lambda frame: frame["type"] == "error")
    assert late["code"] == "page_tool_call_not_found"
    await page.close()


async def test_a_tab_that_closes_during_the_call_ends_it_with_a_tool_error(
    server: ParleyServer,
) -> None:
    runner = await Page.open(server, {"open_record": never_answers})
    sender = await Page.open(server, {})

    await sender.tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "open PO-1003"})
    await runner.wait_for(lambda frame: frame["type"] == "page_tool_call")
    await runner.close()
    response = await sender.wait_for(lambda frame: frame["type"] == "response")

    assert "the tab closed before it answered" in response["text"]
    await sender.close()


async def test_closing_the_tab_withdraws_its_tools(server: ParleyServer, model: DevModel) -> None:
    page = await Page.open(server, {"open_record": opened("The page")})
    await page.close()
    other = await Page.open(server, {})

    frames = await other.ask("open PO-1003", "m-1")

    assert frames_of(frames, "tool_call") == []
    assert not any("page__open_record" in tools for tools in offered_tools(model))
    await other.close()


async def test_a_page_tool_registered_with_confirm_runs_only_after_the_user_approves(
    server: ParleyServer,
) -> None:
    page = await Page.open(
        server,
        {"open_record": opened("The page")},
        tools=[tool_spec("open_record", confirm=True)],
    )
    ask = '[call page__open_record] {"id": "PO-1003"}'
    await page.tab.send({"type": "user_message", "client_msg_id": "m-1", "text": ask})

    request = await page.wait_for(lambda frame: frame["type"] == "confirm_request")
    assert request["action"] == "page__open_record"
    assert request["params"] == {"id": "PO-1003"}
    assert page.calls == []  # nothing ran before the decision
    # Approved from the very tab that runs the tool: its answer is read while the decision waits.
    await page.tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})

    executed = await page.wait_for(lambda frame: frame["type"] == "action_executed")
    assert executed["ok"] is True
    assert executed["result"] == {"message": "The page opened PO-1003."}
    assert [call["arguments"] for call in page.calls] == [{"id": "PO-1003"}]
    end = await page.wait_for(lambda frame: frame["type"] == "turn_end")
    assert end["status"] == "completed"
    await page.close()


async def test_a_rejected_page_tool_never_runs(server: ParleyServer) -> None:
    page = await Page.open(
        server,
        {"open_record": opened("The page")},
        tools=[tool_spec("open_record", confirm=True)],
    )
    ask = '[call page__open_record] {"id": "PO-1003"}'
    await page.tab.send({"type": "user_message", "client_msg_id": "m-1", "text": ask})
    request = await page.wait_for(lambda frame: frame["type"] == "confirm_request")

    await page.tab.send({"type": "confirm", "token": request["token"], "decision": "reject"})

    resolved = await page.wait_for(lambda frame: frame["type"] == "confirm_resolved")
    assert resolved["status"] == "rejected"
    await page.wait_for(lambda frame: frame["type"] == "turn_end")
    assert page.calls == []
    await page.close()


async def test_arguments_that_do_not_fit_the_schema_never_reach_the_page(
    server: ParleyServer,
) -> None:
    page = await Page.open(server, {"open_record": opened("The page")})

    frames = await page.ask('[call page__open_record] {"id": 1003}', "m-1")

    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is False
    assert "'id'" in result["summary"]
    assert page.calls == []
    assert frames_of(frames, "turn_end")[0]["status"] == "completed"
    await page.close()
