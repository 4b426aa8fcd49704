"""Knowledge over the real socket and REST API: administrators manage documents, the model's
search_knowledge answers carry citations that match their markers, and a tenant or a role that
must not see a collection gets nothing from it, by tool or by REST."""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

import pytest

from tests.server.db import rows
from tests.server.harness import ParleyServer, frames_of
from tests.server.knowledge_support import POLICY_MD, safety_pdf
from tests.server.rest_support import Caller, Callers, assert_error, callers, rest

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)

QUESTION = "what is our approval limit for purchase orders?"
BOARD_MD = b"# Board minutes\n\nThe merger with Initech stays confidential until March.\n"


def tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


async def put(admin: Caller, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await admin.http.put(path, json=body)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def markdown(content: bytes, **extra: str) -> dict[str, Any]:
    return {"format": "markdown", "content": content.decode(), **extra}


async def test_an_answer_cites_the_passages_its_markers_name(
    rest: ParleyServer, callers: Callers
) -> None:
    company = tenant()
    admin = callers.new(tenant=company, roles=("admin",))
    url = "https://erp.example/wiki/purchasing"
    await put(admin, "/knowledge/policies/documents/purchasing.md", markdown(POLICY_MD, url=url))

    member = callers.new(tenant=company)
    tab = await member.tab()
    frames = await tab.ask(QUESTION, "k-1")
    (call,) = frames_of(frames, "tool_call")
    assert call["name"] == "search_knowledge"
    (response,) = frames_of(frames, "response")
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", response["text"])}
    citations = response["citations"]
    assert markers, response["text"]
    assert [citation["n"] for citation in citations] == sorted(markers)
    first = citations[0]
    assert first["document_id"] == "purchasing.md"
    assert first["title"] == "Purchasing policy"
    assert first["url"] == url
    assert "5,000 EUR" in first["snippet"]
    assert "5,000 EUR" in response["text"]

    # The stored message keeps them, and a new tab's snapshot shows them with the text.
    (stored,) = await rows(
        rest.config.database_url,
        "SELECT citations FROM message WHERE id = :m",
        m=response["message_id"],
    )
    saved = stored[0] if not isinstance(stored[0], str) else json.loads(stored[0])
    assert saved == citations
    await tab.close()
    fresh = await member.tab()
    snapshot = {message["message_id"]: message for message in fresh.ready["messages"]}
    assert snapshot[response["message_id"]]["citations"] == citations
    await fresh.close()


async def test_documents_are_added_replaced_read_and_removed_over_rest(
    rest: ParleyServer, callers: Callers
) -> None:
    company = tenant()
    admin = callers.new(tenant=company, roles=("admin",))
    member = callers.new(tenant=company)
    path = "/knowledge/policies/documents/guides/purchasing.md"

    created = await put(admin, path, markdown(POLICY_MD))
    assert created["outcome"] == "created"
    assert created["document_id"] == "guides/purchasing.md"
    assert created["title"] == "Purchasing policy"
    assert created["chunks"] >= 1
    again = await put(admin, path, markdown(POLICY_MD))
    assert again["outcome"] == "unchanged"
    assert again["updated_at"] == created["updated_at"]
    changed = await put(admin, path, markdown(POLICY_MD.replace(b"Nordholz", b"Eichwerk")))
    assert changed["outcome"] == "replaced"
    pdf = {"format": "pdf", "content": base64.b64encode(safety_pdf()).decode()}
    assert (await put(admin, "/knowledge/policies/documents/safety.pdf", pdf))["outcome"] == (
        "created"
    )

    listed = (await member.get("/knowledge/policies/documents")).json()["items"]
    assert [item["document_id"] for item in listed] == ["guides/purchasing.md", "safety.pdf"]
    one = (await member.get("/knowledge/policies/documents/guides/purchasing.md")).json()
    assert one["content_hash"] == changed["content_hash"]
    found = (await member.get("/knowledge/search", q="office furniture supplier")).json()
    assert found["items"][0]["document_id"] == "guides/purchasing.md"
    assert "Eichwerk" in found["items"][0]["text"]
    forklift = (await member.get("/knowledge/search", q="forklift licence")).json()["items"]
    assert [item["document_id"] for item in forklift] == ["safety.pdf"]

    assert_error(await member.http.put(path, json=markdown(POLICY_MD)), 403, "forbidden")
    assert_error(await member.http.delete(path), 403, "forbidden")
    bad_pdf = {"format": "pdf", "content": base64.b64encode(b"not a pdf").decode()}
    assert_error(
        await admin.http.put("/knowledge/policies/documents/x.pdf", json=bad_pdf),
        422,
        "unreadable_document",
        field="content",
    )
    gone = await admin.http.delete(path)
    assert gone.status_code == 204, gone.text
    assert_error(await member.get(path), 404, "document_not_found")
    assert (await member.get("/knowledge/search", q="office furniture supplier")).json() == {
        "items": []
    }


async def test_another_tenant_and_an_excluded_role_get_nothing(
    rest: ParleyServer, callers: Callers
) -> None:
    company = tenant()
    admin = callers.new(tenant=company, roles=("admin",))
    await put(admin, "/knowledge/policies/documents/purchasing.md", markdown(POLICY_MD))
    await put(admin, "/knowledge/board/documents/minutes.md", markdown(BOARD_MD))
    await put(admin, "/knowledge/board", {"roles": ["director"]})

    director = callers.new(tenant=company, roles=("director",))
    member = callers.new(tenant=company)
    outsider = callers.new(tenant=tenant(), roles=("admin", "director"))

    # REST: the director finds the minutes; the member and the other tenant find nothing.
    merger = (await director.get("/knowledge/search", q="merger Initech")).json()["items"]
    assert [item["document_id"] for item in merger] == ["minutes.md"]
    for caller in (member, outsider):
        assert (await caller.get("/knowledge/search", q="merger Initech")).json() == {"items": []}
        hidden = await caller.get("/knowledge/board/documents/minutes.md")
        assert_error(hidden, 404, "collection_not_found")
    names = [item["name"] for item in (await member.get("/knowledge")).json()["items"]]
    assert names == ["policies"]
    assert (await outsider.get("/knowledge")).json() == {"items": []}

    # By tool: the member's search never returns the minutes, naming the collection is
    # refused like a missing one, and the other tenant is not even offered the tool.
    tab = await member.tab()
    frames = await tab.ask("what are the rules about the merger with Initech?", "k-2")
    (result,) = frames_of(frames, "tool_result")
    assert result["name"] == "search_knowledge"
    (response,) = frames_of(frames, "response")
    assert "confidential" not in response["text"]
    cited = {citation["document_id"] for citation in response.get("citations", ())}
    assert "minutes.md" not in cited
    assert "Initech" not in result["summary"]
    forced = await tab.ask(
        '[call search_knowledge] {"query": "merger Initech", "collection": "board"}', "k-3"
    )
    (refused,) = frames_of(forced, "tool_result")
    assert refused["ok"] is False
    assert refused["summary"] == "no collection 'board' to search"
    assert "confidential" not in json.dumps(forced)
    await tab.close()

    other = await outsider.tab()
    frames = await other.ask("what is our policy on mergers?", "k-4")
    assert frames_of(frames, "tool_call") == []
    forced = await other.ask('[call search_knowledge] {"query": "merger Initech"}', "k-5")
    (nothing,) = frames_of(forced, "tool_result")
    assert nothing["summary"] == "no passages found"
    assert "confidential" not in json.dumps(forced)
    await other.close()

    director_tab = await director.tab()
    frames = await director_tab.ask("what are the rules about the merger with Initech?", "k-6")
    (response,) = frames_of(frames, "response")
    assert response["citations"][0]["document_id"] == "minutes.md"
    await director_tab.close()
