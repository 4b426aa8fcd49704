"""Assistant profiles on a real server: what ready lists, which tools each conversation is
offered and may call, who may start which profile, hand-off to another profile seen by every
tab, and the profile on the conversation row, usage, audit and REST.

The tools are the REST test pack's (count_letters, audit_digest for auditors, send_memo); the
profiles split them so that no tool belongs to two profiles.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of
from tests.server.rest_support import (
    BACKENDS,
    REST_TOOLS,
    Callers,
    assert_error,
    scrape,
    start_server,
    value,
)

pytestmark = pytest.mark.timeout(240)

PROFILES_TOML = """
[[profile]]
id = "letters"
title = "Letter counter"
description = "Counts letters"
system_prompt = "You count letters for the user."
tools = ["count_*", "profile_context"]
model = "gpt-4o"
temperature = 0.2
greeting = "Which text shall I count?"
suggestions = ["count the letters of hello", "how long is my name?"]
knowledge = ["style-guide"]
handoff = ["memos"]
default = true

[[profile]]
id = "memos"
title = "Memo desk"
system_prompt = "You send memos for the user."
tools = ["send_memo", "audit_*", "profile_context"]

[[profile]]
id = "backoffice"
title = "Back office"
roles = ["admin"]
tools = []

[[profile]]
id = "short"
title = "Short talks"
max_messages_per_conversation = 2

[[profile]]
id = "frugal"
title = "Frugal"
budget_conversation_tokens = 20
"""


@pytest.fixture(scope="module", params=BACKENDS)
def profiled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
) -> Iterator[ParleyServer]:
    """One server per backend with the profiles above and the REST test tools."""
    tmp = tmp_path_factory.mktemp("profiles")
    path = tmp / "profiles.toml"
    path.write_text(PROFILES_TOML, "utf-8")
    server = start_server(
        request.param,
        request,
        tmp,
        dev_model,
        PARLEY_PROFILES=str(path),
        PARLEY_TOOLS=f"{REST_TOOLS},tests.server.profile_pack:pack",
    )
    yield server
    server.stop()


@pytest.fixture
async def callers(profiled: ParleyServer, model: DevModel) -> Any:
    made = Callers(profiled)
    yield made
    await made.aclose()


def offered(model: DevModel) -> set[str]:
    """The tools the last model request offered."""
    body = model.requests()[-1]["body"]
    return {tool["function"]["name"] for tool in body.get("tools", [])}


async def conversation_rows(server: ParleyServer, user: str) -> list[tuple[Any, ...]]:
    return await rows(
        server.config.database_url,
        "SELECT id, profile FROM conversation WHERE user_id = :u ORDER BY created_at",
        u=user,
    )


async def start(tab: Any, text: str, ref: str, **fields: Any) -> list[dict[str, Any]]:
    frames = await tab.ask(text, ref, **fields)
    assert frames[-1]["type"] == "turn_end", frames
    return frames


async def test_ready_lists_the_profiles_the_users_roles_allow(callers: Callers) -> None:
    member = await callers.new(roles=("member",)).tab()
    listed = member.ready["profiles"]
    assert [profile["id"] for profile in listed] == ["letters", "memos", "short", "frugal"]
    assert listed[0] == {
        "id": "letters",
        "title": "Letter counter",
        "description": "Counts letters",
        "greeting": "Which text shall I count?",
        "suggestions": ["count the letters of hello", "how long is my name?"],
        "default": True,
    }
    assert listed[1] == {"id": "memos", "title": "Memo desk"}
    admin = await callers.new(roles=("admin",)).tab()
    assert [profile["id"] for profile in admin.ready["profiles"]] == [
        "letters",
        "memos",
        "backoffice",
        "short",
        "frugal",
    ]
    for tab in (member, admin):
        await tab.close()


async def test_each_conversation_is_offered_only_its_profiles_tools(
    profiled: ParleyServer, callers: Callers, model: DevModel
) -> None:
    alice = callers.new(roles=("member", "auditor"))
    tab = await alice.tab()
    letters = await start(tab, "[say] counting", "p-1")
    body = model.requests()[-1]["body"]
    # The default profile: its tools, its hand-off, its prompt, model and temperature.
    assert offered(model) == {"count_letters", "profile_context", "handoff"}
    assert body["messages"][0] == {"role": "system", "content": "You count letters for the user."}
    assert (body["model"], body["temperature"]) == ("gpt-4o", 0.2)
    assert frames_of(letters, "response")[0]["usage"]["model"] == "gpt-4o"

    memos = await start(tab, "[say] memo time", "p-2", profile="memos")
    body = model.requests()[-1]["body"]
    # audit_digest is the auditor's by role and in the profile by pattern: both walls pass.
    assert offered(model) == {"send_memo", "audit_digest", "profile_context"}
    assert body["messages"][0]["content"] == "You send memos for the user."
    # No model or temperature of its own: the configured model, the endpoint's temperature.
    assert "temperature" not in body
    assert body["model"] == "gpt-4o-mini"

    # A later message of a conversation keeps its profile, whatever it names.
    await start(
        tab,
        "[say] still memos",
        "p-3",
        conversation_id=memos[0]["conversation_id"],
        profile="letters",
    )
    assert offered(model) == {"send_memo", "audit_digest", "profile_context"}
    stored = await conversation_rows(profiled, alice.user)
    assert [profile for _, profile in stored] == ["letters", "memos"]
    usage = await rows(
        profiled.config.database_url,
        "SELECT profile FROM usage_record WHERE user_id = :u ORDER BY created_at",
        u=alice.user,
    )
    assert [profile for (profile,) in usage] == ["letters", "memos", "memos"]
    listed = (await alice.get("/conversations")).json()["items"]
    assert {item["conversation_id"]: item["profile"] for item in listed} == {
        letters[0]["conversation_id"]: "letters",
        memos[0]["conversation_id"]: "memos",
    }
    await tab.close()


async def test_a_forced_call_to_another_profiles_tool_is_refused_and_audited(
    profiled: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    tab = await alice.tab()
    frames = await start(tab, '[call count_letters] {"text": "abc"}', "f-1", profile="memos")
    result = frames_of(frames, "tool_result")[0]
    assert result["name"] == "count_letters"
    assert result["ok"] is False
    assert "not part of the profile 'memos'" in result["summary"]
    assert frames[-1]["status"] == "completed"
    refused = await rows(
        profiled.config.database_url,
        "SELECT tool, event, profile FROM audit_event WHERE turn_id = :t",
        t=frames[-1]["turn_id"],
    )
    assert refused == [("count_letters", "refused", "memos")]

    # The same tool in its own profile runs, and tools see that profile's knowledge.
    ran = await start(tab, '[call count_letters] {"text": "abc"}', "f-2")
    assert frames_of(ran, "tool_result")[0]["ok"] is True
    context = await start(
        tab, "[call profile_context] {}", "f-3", conversation_id=ran[0]["conversation_id"]
    )
    assert frames_of(context, "tool_result")[0]["summary"] == (
        "profile letters, knowledge style-guide"
    )
    await tab.close()


async def test_an_unknown_or_forbidden_profile_stores_nothing(
    profiled: ParleyServer, callers: Callers
) -> None:
    viewer = callers.new(roles=("viewer",))
    tab = await viewer.tab()
    await tab.send(
        {"type": "user_message", "client_msg_id": "u-1", "text": "hi", "profile": "nope"}
    )
    error = await tab.expect("error")
    assert (error["code"], error["ref"]) == ("profile_not_found", "u-1")
    assert "nope" in error["message"]
    await tab.send(
        {"type": "user_message", "client_msg_id": "u-2", "text": "hi", "profile": "backoffice"}
    )
    error = await tab.expect("error")
    assert (error["code"], error["ref"]) == ("forbidden", "u-2")
    assert await conversation_rows(profiled, viewer.user) == []
    assert (
        await rows(
            profiled.config.database_url, "SELECT id FROM message WHERE user_id = :u", u=viewer.user
        )
        == []
    )

    # The REST create answers the same way, and binds an allowed profile.
    assert_error(await viewer.post("/conversations", {"profile": "nope"}), 404, "profile_not_found")
    assert_error(await viewer.post("/conversations", {"profile": "backoffice"}), 403, "forbidden")
    assert await conversation_rows(profiled, viewer.user) == []
    created = await viewer.post("/conversations", {"title": "memo", "profile": "memos"})
    assert created.status_code == 201, created.text
    assert created.json()["profile"] == "memos"
    [frame] = await tab.until("conversation_updated")
    assert frame["profile"] == "memos"
    await tab.close()


async def test_hand_off_moves_the_conversation_and_every_tab_sees_it(
    profiled: ParleyServer, callers: Callers, model: DevModel
) -> None:
    alice = callers.new()
    first, second = await alice.tab(), await alice.tab()
    frames = await start(first, "hand me over to memos", "h-1")
    conversation_id = frames[0]["conversation_id"]
    created, update = frames_of(frames, "conversation_updated")
    assert (created["profile"], "note" in created) == ("letters", False)
    assert update["conversation_id"] == conversation_id
    assert update["profile"] == "memos"
    assert (
        update["note"] == "Handed over from Letter counter to Memo desk: the user asked for memos"
    )
    call = frames_of(frames, "tool_result")[0]
    assert (call["name"], call["ok"]) == ("handoff", True)
    # The rest of the turn already ran under the new profile.
    assert offered(model) == {"send_memo", "profile_context"}
    assert model.requests()[-1]["body"]["messages"][0]["content"] == (
        "You send memos for the user."
    )
    mirrored = await second.until("turn_end")
    assert frames_of(mirrored, "conversation_updated") == [created, update]

    later = await start(first, "[say] what now?", "h-2", conversation_id=conversation_id)
    assert later[-1]["status"] == "completed"
    assert offered(model) == {"send_memo", "profile_context"}
    assert await conversation_rows(profiled, alice.user) == [(conversation_id, "memos")]
    got = (await alice.get(f"/conversations/{conversation_id}")).json()
    assert got["profile"] == "memos"

    # Tools learn the conversation's profile and its knowledge collections.
    context = await start(
        first, "[call profile_context] {}", "h-4", conversation_id=conversation_id
    )
    assert frames_of(context, "tool_result")[0]["summary"] == "profile memos, knowledge none"
    # Memos lists no hand-off: the tool is gone, and a forced call is refused.
    forced = await start(
        first,
        '[call handoff] {"profile": "letters", "reason": "back"}',
        "h-3",
        conversation_id=conversation_id,
    )
    assert frames_of(forced, "tool_result")[0]["ok"] is False
    assert not frames_of(forced, "conversation_updated")
    # A fresh tab's snapshot names the profile of the conversation.
    third = await alice.tab()
    summaries = {c["conversation_id"]: c for c in third.ready["conversations"]}
    assert summaries[conversation_id]["profile"] == "memos"
    for tab in (first, second, third):
        await tab.close()


async def test_a_hand_off_note_is_in_a_fresh_tabs_snapshot_and_never_in_the_model_context(
    callers: Callers, model: DevModel
) -> None:
    alice = callers.new()
    tab = await alice.tab()
    frames = await start(tab, "hand me over to memos", "n-1")
    conversation_id = frames[0]["conversation_id"]
    note = frames_of(frames, "conversation_updated")[-1]["note"]
    (reply,) = frames_of(frames, "response")
    await tab.close()

    # A tab opened afterwards (no frame log to resume from) rebuilds from the snapshot alone.
    fresh = await alice.tab()
    assert fresh.ready["resumed"] is False
    shown = [
        (message["role"], message["text"], message.get("turn_id"))
        for message in fresh.ready["messages"]
        if message["conversation_id"] == conversation_id
    ]
    assert shown == [
        ("user", "hand me over to memos", None),
        ("assistant", reply["text"], reply["turn_id"]),
        ("note", note, reply["turn_id"]),
    ]
    # REST lists it with the messages; it is not counted as one.
    listed = (await alice.get(f"/conversations/{conversation_id}/messages")).json()["items"]
    assert [item["role"] for item in listed] == ["note", "assistant", "user"]
    assert listed[0]["text"] == note
    got = (await alice.get(f"/conversations/{conversation_id}")).json()
    assert got["message_count"] == 2

    # The model saw the hand-off as its own tool call's result; the note is not a message.
    await start(fresh, "[say] and now?", "n-2", conversation_id=conversation_id)
    sent = model.requests()[-1]["body"]["messages"]
    assert [message["role"] for message in sent] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert all(message["content"] != note for message in sent)
    await fresh.close()


async def test_a_new_conversation_tells_every_tab_its_profile(callers: Callers) -> None:
    alice = callers.new()
    sender, other = await alice.tab(), await alice.tab()
    frames = await start(sender, "[say] hi memos", "p-1", profile="memos")
    message, created = frames[0], frames[1]
    assert message["type"] == "message"
    assert created == {
        "seq": message["seq"] + 1,
        "type": "conversation_updated",
        "conversation_id": message["conversation_id"],
        "status": "active",
        "title": "[say] hi memos",
        "profile": "memos",
    }
    assert frames_of(await other.until("turn_end"), "conversation_updated") == [created]
    # A later message in the same conversation announces nothing.
    later = await start(sender, "[say] again", "p-2", conversation_id=message["conversation_id"])
    assert frames_of(later, "conversation_updated") == []
    assert frames_of(await other.until("turn_end"), "conversation_updated") == []

    # A conversation created over REST reaches both tabs with its profile, default or named.
    for body, profile in (({}, "letters"), ({"profile": "memos"}, "memos")):
        reply = await alice.post("/conversations", body)
        assert reply.status_code == 201, reply.text
        for tab in (sender, other):
            [frame] = await tab.until("conversation_updated")
            assert (frame["conversation_id"], frame["profile"]) == (
                reply.json()["conversation_id"],
                profile,
            )
    for tab in (sender, other):
        await tab.close()


async def test_a_hand_off_to_a_profile_it_does_not_list_is_refused(
    profiled: ParleyServer, callers: Callers
) -> None:
    alice = callers.new(roles=("admin",))
    tab = await alice.tab()
    frames = await start(tab, '[call handoff] {"profile": "backoffice", "reason": "x"}', "r-1")
    result = frames_of(frames, "tool_result")[0]
    assert result["ok"] is False
    assert "may hand over to memos" in result["summary"]
    assert [frame.get("note") for frame in frames_of(frames, "conversation_updated")] == [None]
    assert [p for _, p in await conversation_rows(profiled, alice.user)] == ["letters"]
    await tab.close()


async def test_a_profiles_own_limits_apply_to_its_conversations(
    profiled: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    tab = await alice.tab()
    short = await start(tab, "[say] one", "l-1", profile="short")
    assert short[-1]["status"] == "completed"
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "l-2",
            "text": "[say] two",
            "conversation_id": short[0]["conversation_id"],
        }
    )
    error = await tab.expect("error")
    assert (error["code"], error["ref"]) == ("conversation_full", "l-2")
    assert "holds 2 messages" in error["message"]

    frugal = await start(tab, "[say] costly", "l-3", profile="frugal")
    assert frugal[-1]["status"] == "failed"
    assert frugal[-1]["error"]["code"] == "budget_exceeded"
    assert "token budget of 20" in frugal[-1]["error"]["message"]
    # The default profile keeps the global budgets: the same words run there.
    assert (await start(tab, "[say] costly", "l-4"))[-1]["status"] == "completed"
    await tab.close()


async def test_metrics_carry_the_profile(profiled: ParleyServer, callers: Callers) -> None:
    tab = await callers.new().tab()
    await start(tab, "[say] measured", "m-1", profile="memos")
    await start(tab, "hand me over to memos", "m-2")
    samples = scrape(profiled)
    assert value(samples, "parley_profile_turns_total", profile="memos", status="completed") >= 1
    assert value(samples, "parley_profile_model_tokens_total", profile="memos", kind="prompt") > 0
    assert value(samples, "parley_profile_handoffs_total", profile="letters", target="memos") >= 1
    await tab.close()


def test_a_bad_profiles_file_stops_startup_naming_the_path_and_key(
    request: pytest.FixtureRequest, tmp_path: Path, dev_model: DevModel
) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[[profile]]\nid = "ops"\ntitle = "Ops"\ntool = ["x"]\n', "utf-8")
    with pytest.raises(RuntimeError) as caught:
        start_server("embedded", request, tmp_path, dev_model, PARLEY_PROFILES=str(path))
    assert f"{path}: profile 'ops', key 'tool': unknown key" in str(caught.value)


async def test_a_profile_searches_the_collections_it_names_and_no_others(
    callers: Callers, model: DevModel
) -> None:
    """letters names the style-guide collection: its conversations are offered
    search_knowledge and find only that; memos and short name none, so with a profiles file
    they are not offered it at all."""
    tenant = f"t-{secrets.token_hex(4)}"
    admin = callers.new(tenant=tenant, roles=("admin",))
    for collection, text in (
        ("style-guide", "# Style guide\n\nWrite dates as 6 December 2026 in letters."),
        ("policies", "# Travel policy\n\nWrite travel requests two weeks ahead."),
    ):
        stored = await admin.http.put(
            f"/knowledge/{collection}/documents/{collection}.md",
            json={"format": "markdown", "content": text},
        )
        assert stored.status_code == 200, stored.text
    member = callers.new(tenant=tenant, roles=("member",))
    tab = await member.tab()
    frames = await start(tab, "how should I write dates?", "k-1", profile="letters")
    assert "search_knowledge" in offered(model)
    (response,) = frames_of(frames, "response")
    assert [c["document_id"] for c in response["citations"]] == ["style-guide.md"]
    for profile in ("memos", "short"):
        await start(tab, "how should I write dates?", f"k-{profile}", profile=profile)
        assert "search_knowledge" not in offered(model)
    await tab.close()
