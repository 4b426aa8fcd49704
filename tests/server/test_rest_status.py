"""The status route, the OpenAPI document (valid, complete, matching what is served), the
authentication every route requires and the per-user rate limit with its Retry-After."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from openapi_spec_validator import validate

from server.rest.routes import api_mount
from tests.server.harness import TEST_JWT_SECRET, DevModel, ParleyServer
from tests.server.rest_support import (
    Callers,
    assert_error,
    callers,
    rest,
    scrape,
    start_server,
    value,
)

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)

# Every route of the REST API. Adding one means adding it here: the document must list it.
EXPECTED_OPERATIONS = {
    ("get", "/api/v1/conversations"),
    ("post", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{conversation_id}"),
    ("patch", "/api/v1/conversations/{conversation_id}"),
    ("get", "/api/v1/conversations/{conversation_id}/messages"),
    ("post", "/api/v1/conversations/{conversation_id}/escalate"),
    ("post", "/api/v1/messages/{message_id}/feedback"),
    ("get", "/api/v1/confirmations"),
    ("get", "/api/v1/admin/confirmations"),
    ("get", "/api/v1/admin/audit"),
    ("get", "/api/v1/admin/escalations"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/admin/usage"),
    ("get", "/api/v1/exports/{call_id}.csv"),
    ("get", "/api/v1/knowledge"),
    ("get", "/api/v1/knowledge/search"),
    ("put", "/api/v1/knowledge/{collection}"),
    ("get", "/api/v1/knowledge/{collection}/documents"),
    ("get", "/api/v1/knowledge/{collection}/documents/{document_id}"),
    ("put", "/api/v1/knowledge/{collection}/documents/{document_id}"),
    ("delete", "/api/v1/knowledge/{collection}/documents/{document_id}"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/openapi.json"),
}


def document(server: ParleyServer) -> dict[str, object]:
    reply = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, object] = reply.json()
    return body


def operations(spec: dict[str, object]) -> set[tuple[str, str]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return {(method, path) for path, methods in paths.items() for method in methods}


def served_operations() -> set[tuple[str, str]]:
    """What the mounted router really answers, read from its routes (a parameter's converter,
    as in ``{document_id:path}``, is not part of its name)."""
    mount = api_mount()
    router = mount.app.router  # type: ignore[attr-defined]
    return {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", mount.path + route.path))
        for route in router.routes
        for method in route.methods or ()
        if method != "HEAD"
    }


async def test_status_shows_the_callers_tools_and_the_limits(callers: Callers) -> None:
    member = callers.new(roles=("member",))
    reply = await member.get("/status")
    assert reply.status_code == 200, reply.text
    status = reply.json()
    assert status["protocol"] == 1
    assert status["model"]["name"] == "gpt-4o-mini"
    assert status["model"]["dev"] is False  # the scripted model runs as an external endpoint
    assert [tool["name"] for tool in status["tools"]] == ["count_letters", "send_memo"]
    assert {tool["kind"] for tool in status["tools"]} == {"query", "action"}
    assert status["limits"]["max_message_chars"] == 8000
    assert status["limits"]["confirmation_ttl_s"] == 300
    assert status["caller"] == {"user": member.user, "tenant": "acme", "roles": ["member"]}
    assert status["escalation_webhook"] is False
    for secret in (TEST_JWT_SECRET, "test-key", "127.0.0.1", "postgresql", "sqlite"):
        assert secret not in reply.text

    auditor = callers.new(roles=("auditor",))
    tools = (await auditor.get("/status")).json()["tools"]
    assert "audit_digest" in [tool["name"] for tool in tools]


async def test_the_openapi_document_is_valid_and_lists_every_route(rest: ParleyServer) -> None:
    spec = document(rest)
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    assert spec["openapi"] == "3.1.0"
    assert operations(spec) == EXPECTED_OPERATIONS
    assert operations(spec) == served_operations()
    paths = spec["paths"]
    assert isinstance(paths, dict)
    for path, methods in paths.items():
        for method, operation in methods.items():
            assert operation["operationId"], (method, path)
            assert operation["summary"], (method, path)
            responses = operation["responses"]
            if path.endswith("/openapi.json"):
                assert operation["security"] == []
                continue
            assert "401" in responses, (method, path)
            assert "429" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            in_query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if "requestBody" in operation or in_query:
                assert "422" in responses, (method, path)
            if "/admin/" in path:
                assert "403" in responses, (method, path)


async def test_every_route_but_the_document_needs_a_token(callers: Callers) -> None:
    anonymous = callers.anonymous()
    for method, path in sorted(EXPECTED_OPERATIONS):
        url = re.sub(r"\{[^}]+\}", "x_1", path.removeprefix("/api/v1"))
        reply = await anonymous.request(method.upper(), url, json={} if method != "get" else None)
        if path.endswith("/openapi.json"):
            assert reply.status_code == 200
        else:
            assert_error(reply, 401, "unauthenticated")


LIMITED_WINDOW_S = 20  # not 60, to show REST follows PARLEY_RATE_WINDOW_S like the socket


@pytest.fixture(scope="module")
def limited(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
) -> Iterator[ParleyServer]:
    server = start_server(
        "embedded",
        request,
        tmp_path_factory.mktemp("limited"),
        dev_model,
        PARLEY_API_REQUESTS_PER_MINUTE="3",
        PARLEY_RATE_WINDOW_S=str(LIMITED_WINDOW_S),
        PARLEY_ALLOWED_ORIGINS="https://erp.example.com,https://*.example.org",
    )
    yield server
    server.stop()


async def test_too_many_requests_are_429_with_retry_after(limited: ParleyServer) -> None:
    made = Callers(limited)
    try:
        alice = made.new()
        refusals_before = value(scrape(limited), "parley_limit_refusals_total", code="rate_limited")
        for _ in range(3):
            assert (await alice.get("/conversations")).status_code == 200
        refused = await alice.get("/conversations")
        assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= LIMITED_WINDOW_S
        assert f"in {LIMITED_WINDOW_S} s" in refused.json()["error"]["message"]
        # Others are not held back by alice's requests.
        assert (await made.new().get("/status")).status_code == 200
        refusals = value(scrape(limited), "parley_limit_refusals_total", code="rate_limited")
        assert refusals == refusals_before + 1
    finally:
        await made.aclose()


async def test_ids_that_spell_each_other_never_share_a_rate_counter(
    limited: ParleyServer,
) -> None:
    made = Callers(limited)
    try:
        # "t1:x" + "u" and "t1" + "x:u" would join to the same "t1:x:u" unescaped.
        first = made.new(tenant="t1:x", user="u")
        for _ in range(3):
            assert (await first.get("/conversations")).status_code == 200
        assert (await first.get("/conversations")).status_code == 429
        second = made.new(tenant="t1", user="x:u")
        assert (await second.get("/conversations")).status_code == 200
    finally:
        await made.aclose()


async def test_pages_of_allowed_origins_may_call_the_api(limited: ParleyServer) -> None:
    made = Callers(limited)
    try:
        alice = made.new()
        for origin in ("https://erp.example.com", "https://shop.example.org"):
            preflight = await alice.http.options(
                "/conversations",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == origin
            assert "POST" in preflight.headers["access-control-allow-methods"]
            assert "authorization" in preflight.headers["access-control-allow-headers"]
            assert "access-control-allow-credentials" not in preflight.headers
        answer = await alice.http.get("/status", headers={"Origin": "https://erp.example.com"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://erp.example.com"
        assert "Origin" in answer.headers["vary"]

        for stranger in ("https://evil.example.net", "null"):
            preflight = await alice.http.options(
                "/conversations",
                headers={"Origin": stranger, "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-origin" not in preflight.headers
        refused = await alice.http.get("/status", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in refused.headers
    finally:
        await made.aclose()
