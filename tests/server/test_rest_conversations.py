"""REST conversations and messages on a real server: listing and paging newest first,
create, rename, archive, the frame every tab gets, and the answers to bad requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.models import Conversation
from tests.server.harness import ParleyServer, frames_of, make_token
from tests.server.rest_support import Callers, assert_error, callers, rest, seed

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)


async def test_create_list_and_get_newest_first(callers: Callers) -> None:
    alice = callers.new()
    created = []
    for index in range(5):
        reply = await alice.post("/conversations", {"title": f"  topic {index}  "})
        assert reply.status_code == 201, reply.text
        created.append(reply.json())
    assert created[0]["title"] == "topic 0"
    assert created[0]["status"] == "active"
    assert created[0]["message_count"] == 0
    assert created[0]["created_at"].endswith("Z")

    pages = await alice.pages("/conversations", limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [item for page in pages for item in page]
    assert listed == created[::-1]

    one = await alice.get(f"/conversations/{created[2]['conversation_id']}")
    assert one.status_code == 200
    assert one.json() == created[2]
    default_title = await alice.post("/conversations", {})
    assert default_title.json()["title"] == "New conversation"


async def test_paging_neither_skips_nor_repeats_rows_with_equal_times(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    moment = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    rows = [
        Conversation(
            tenant=alice.tenant,
            user_id=alice.user,
            title=f"same time {index}",
            created_at=moment,
            updated_at=moment,
        )
        for index in range(7)
    ]
    await seed(rest.config.database_url, rows)
    pages = await alice.pages("/conversations", limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    ids = [item["conversation_id"] for page in pages for item in page]
    assert ids == sorted((row.id for row in rows), reverse=True)
    assert pages[0][0]["updated_at"] == "2025-03-01T12:00:00.123456Z"


async def test_rename_archive_and_restore_reach_every_tab(callers: Callers) -> None:
    alice = callers.new()
    tab = await alice.tab()
    created = (await alice.post("/conversations", {"title": "draft"})).json()
    conversation_id = created["conversation_id"]
    [frame] = await tab.until("conversation_updated")
    assert frame["conversation_id"] == conversation_id
    assert frame["status"] == "active"

    renamed = await alice.patch(f"/conversations/{conversation_id}", {"title": "Q3 invoices"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Q3 invoices"
    [frame] = await tab.until("conversation_updated")
    assert frame["title"] == "Q3 invoices"
    assert frame["seq"] > 0

    archived = await alice.patch(f"/conversations/{conversation_id}", {"archived": True})
    assert archived.json()["status"] == "archived"
    [frame] = await tab.until("conversation_updated")
    assert frame["status"] == "archived"
    listed = (await alice.get("/conversations")).json()["items"]
    assert conversation_id not in [item["conversation_id"] for item in listed]
    only_archived = (await alice.get("/conversations", status="archived")).json()["items"]
    assert [item["conversation_id"] for item in only_archived] == [conversation_id]

    restored = await alice.patch(f"/conversations/{conversation_id}", {"archived": False})
    assert restored.json()["status"] == "active"
    listed = (await alice.get("/conversations")).json()["items"]
    assert conversation_id in [item["conversation_id"] for item in listed]
    await tab.close()


async def test_messages_of_a_conversation_newest_first(callers: Callers) -> None:
    alice = callers.new()
    tab = await alice.tab()
    first = await tab.ask("hello there", "m-1")
    conversation_id = first[0]["conversation_id"]
    second = await tab.ask("what can you do?", "m-2", conversation_id=conversation_id)
    await tab.close()
    replies = [frames_of(frames, "response")[0] for frames in (first, second)]

    pages = await alice.pages(f"/conversations/{conversation_id}/messages", limit=3)
    assert [len(page) for page in pages] == [3, 1]
    messages = [item for page in pages for item in page]
    assert [(m["role"], m["text"]) for m in messages] == [
        ("assistant", replies[1]["text"]),
        ("user", "what can you do?"),
        ("assistant", replies[0]["text"]),
        ("user", "hello there"),
    ]
    assert messages[1]["client_msg_id"] == "m-2"
    assert messages[0]["message_id"] == replies[1]["message_id"]
    assert messages[0]["status"] == "completed"
    assert messages[0]["usage"]["total_tokens"] == replies[1]["usage"]["total_tokens"]
    assert "usage" not in messages[1]  # absent, not null
    conversation = (await alice.get(f"/conversations/{conversation_id}")).json()
    assert conversation["message_count"] == 4


async def test_missing_or_invalid_tokens_are_401(callers: Callers) -> None:
    paths = ["/conversations", "/conversations/c_x", "/conversations/c_x/messages"]
    expired = make_token("alice", "acme", ("member",), ttl_s=-120)
    forged = make_token("alice", "acme", ("member",), secret="not-the-server-secret-0123456789")
    cases = [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer"}, "unauthenticated"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-jwt"}, "unauthenticated"),
        ({"Authorization": f"Bearer {forged}"}, "unauthenticated"),
        ({"Authorization": f"Bearer {expired}"}, "token_expired"),
    ]
    for headers, code in cases:
        client = callers.anonymous(headers)
        for path in paths:
            reply = await client.get(path)
            assert_error(reply, 401, code)
            assert reply.headers["www-authenticate"].startswith("Bearer")
        reply = await client.post("/conversations", json={"title": "x"})
        assert_error(reply, 401, code)


async def test_other_users_and_tenants_ids_are_not_found(callers: Callers) -> None:
    alice = callers.new()
    bob = callers.new()  # same tenant
    mallory = callers.new(tenant="globex", roles=("admin",))
    conversation_id = (await alice.post("/conversations", {"title": "mine"})).json()[
        "conversation_id"
    ]
    missing = "c_000000000000000000000000"
    for stranger in (bob, mallory):
        for path in (f"/conversations/{conversation_id}", f"/conversations/{missing}"):
            assert_error(await stranger.get(path), 404, "conversation_not_found")
        theirs = await stranger.get(f"/conversations/{conversation_id}")
        nobodys = await stranger.get(f"/conversations/{missing}")
        # Nothing tells an existing id from a made-up one.
        assert theirs.json()["error"]["message"].replace(conversation_id, "ID") == nobodys.json()[
            "error"
        ]["message"].replace(missing, "ID")
        assert_error(
            await stranger.get(f"/conversations/{conversation_id}/messages"),
            404,
            "conversation_not_found",
        )
        assert_error(
            await stranger.patch(f"/conversations/{conversation_id}", {"title": "stolen"}),
            404,
            "conversation_not_found",
        )
        listed = (await stranger.get("/conversations")).json()["items"]
        assert conversation_id not in [item["conversation_id"] for item in listed]
    assert (await alice.get(f"/conversations/{conversation_id}")).json()["title"] == "mine"


async def test_bad_bodies_and_parameters_name_the_field(callers: Callers) -> None:
    alice = callers.new()
    conversation_id = (await alice.post("/conversations", {})).json()["conversation_id"]
    path = f"/conversations/{conversation_id}"

    assert_error(
        await alice.post("/conversations", {"title": "   "}), 422, "invalid_field", "title"
    )
    assert_error(
        await alice.post("/conversations", {"title": "x" * 201}), 422, "invalid_field", "title"
    )
    assert_error(await alice.post("/conversations", {"title": 5}), 422, "invalid_field", "title")
    assert_error(
        await alice.post("/conversations", {"colour": "red"}), 422, "invalid_field", "colour"
    )
    assert_error(await alice.patch(path, {}), 422, "missing_field", "title")
    assert_error(await alice.patch(path, {"archived": "soon"}), 422, "invalid_field", "archived")

    assert_error(await alice.get("/conversations", limit=0), 422, "invalid_field", "limit")
    assert_error(await alice.get("/conversations", limit=1000), 422, "invalid_field", "limit")
    assert_error(await alice.get("/conversations", limit="ten"), 422, "invalid_field", "limit")
    assert_error(await alice.get("/conversations", status="gone"), 422, "invalid_field", "status")
    assert_error(
        await alice.get("/conversations", cursor="not a cursor"), 422, "invalid_field", "cursor"
    )
    # A cursor of another list is refused too.
    tab = await alice.tab()
    await tab.ask("hello", "m-1", conversation_id=conversation_id)
    await tab.ask("again", "m-2", conversation_id=conversation_id)
    await tab.close()
    messages = (await alice.get(f"{path}/messages", limit=1)).json()
    assert_error(
        await alice.get("/conversations", cursor=messages["next_cursor"]),
        422,
        "invalid_field",
        "cursor",
    )

    not_json = await alice.http.post(
        "/conversations", content=b"{title", headers={"Content-Type": "application/json"}
    )
    assert_error(not_json, 400, "invalid_json")
    assert_error(await alice.post("/conversations", ["title"]), 400, "invalid_body")
    empty = await alice.http.post("/conversations", content=b"")
    assert_error(empty, 400, "invalid_body")
    huge = await alice.post("/conversations", {"title": "x" * 100_000})
    assert_error(huge, 413, "body_too_large")


async def test_unknown_routes_and_methods_answer_in_the_same_format(callers: Callers) -> None:
    alice = callers.new()
    assert_error(await alice.get("/nothing/here"), 404, "route_not_found")
    wrong_method = await alice.http.delete("/conversations")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]


async def test_an_escalated_or_archived_title_still_changes(callers: Callers) -> None:
    alice = callers.new()
    conversation_id = (await alice.post("/conversations", {})).json()["conversation_id"]
    path = f"/conversations/{conversation_id}"
    escalated = await alice.post(f"{path}/escalate", {"reason": "need a human"})
    assert escalated.status_code == 201
    renamed = await alice.patch(path, {"title": "handed over", "archived": False})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "handed over"
    # Restoring applies to archived conversations only: an escalated one stays escalated.
    assert renamed.json()["status"] == "escalated"


async def test_nul_characters_are_refused_not_crashing(callers: Callers) -> None:
    """U+0000 cannot be stored or even compared by PostgreSQL: refused before storage."""
    caller = callers.new()
    reply = await caller.get("/conversations/c_%00")
    assert reply.status_code == 404
    reply = await caller.post("/conversations", {"title": "bad\u0000title"})
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_field"
    reply = await caller.get("/conversations", status="act\u0000ive")
    assert reply.status_code == 422
