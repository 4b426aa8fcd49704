"""Host-app tools over the network, end to end: a real Parley, a host app of the tests' own
(``tests/server/host_app.py``) and a scripted model, each its own process.

The host checks each call's JWT with PyJWT and records what it got, so the tests see exactly
what crossed the network: who the token named, which Idempotency-Key an action carried, and how
often the host really ran it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import (
    TEST_JWT_SECRET,
    ParleyServer,
    ServerConfig,
    Tab,
    frames_of,
    free_port,
)
from tests.server.tool_sources_support import (
    HOST_API_KEY,
    HostApp,
    ToolsModel,
    source_env,
    sources_file,
)

# Its peers (host apps, MCP servers) are real processes: the full run has it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def tools_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolsModel]:
    model = ToolsModel(tmp_path_factory.mktemp("tools-model"))
    yield model
    model.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Backend:
    prefix = f"parley-test-{secrets.token_hex(4)}:"
    return Backend("embedded", f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}", None, prefix)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostApp]:
    app = HostApp(tmp_path)
    yield app
    app.stop()


def config_for(backend: Backend, model: ToolsModel, path: str, **extra: str) -> ServerConfig:
    config = backend.config(None, **source_env(path, **extra))
    config.model_url = model.base_url
    return config


@pytest.fixture
def parley(
    embedded: Backend, tools_model: ToolsModel, host: HostApp, tmp_path: Path
) -> Iterator[ParleyServer]:
    path = sources_file(tmp_path, host.url, timeout_s=2)
    server = ParleyServer(tmp_path, config_for(embedded, tools_model, path))
    yield server
    server.stop()


def tool_frames(frames: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (call,) = frames_of(frames, "tool_call")
    (result,) = frames_of(frames, "tool_result")
    return call, result


def assert_completed(frames: list[dict[str, Any]]) -> None:
    assert frames[-1]["type"] == "turn_end"
    assert frames[-1]["status"] == "completed", frames[-1]


async def request_action(tab: Tab, text: str, client_msg_id: str) -> dict[str, Any]:
    """Send a message that makes the model ask for an action; its ``confirm_request``, once
    the turn that asked has ended with the card open."""
    await tab.send({"type": "user_message", "client_msg_id": client_msg_id, "text": text})
    (asked,) = frames_of(await tab.until("confirm_request"), "confirm_request")
    assert (await tab.until("turn_end"))[-1]["awaiting"] == [asked["token"]]
    return asked


async def approve(tab: Tab, token: str) -> dict[str, Any]:
    await tab.send({"type": "confirm", "token": token, "decision": "approve"})
    (executed,) = frames_of(await tab.until("action_executed"), "action_executed")
    return executed


# -- queries and actions ---------------------------------------------------------------------


async def test_a_query_runs_at_once_as_the_user_and_an_action_once_after_approval(
    backend: Backend, tools_model: ToolsModel, host: HostApp, tmp_path: Path
) -> None:
    path = sources_file(tmp_path, host.url)
    parley = ParleyServer(tmp_path, config_for(backend, tools_model, path))
    try:
        tab = await parley.tab()
        frames = await tab.ask("show me thing T-1", "m-1")
        call, result = tool_frames(frames)
        assert call["name"] == "host__get_thing"
        assert call["source"] == "host"
        assert result["ok"], result
        assert_completed(frames)
        (request,) = host.requests("/api/things")
        assert request["path"] == "/api/things/T-1"
        assert request["api_key"] == HOST_API_KEY
        assert request["idempotency_key"] is None
        claims = request["claims"]
        assert (claims["sub"], claims["tenant"], claims["aud"]) == (parley.user, "acme", "host")
        assert claims["call_id"] == call["call_id"]
        assert claims["turn_id"] == call["turn_id"]
        assert claims["exp"] - claims["iat"] <= 60
        assert "confirmation" not in claims

        asked = await request_action(tab, "please approve PO-1001", "m-2")
        assert asked["summary"] == "Approve purchase order PO-1001"
        assert asked["source"] == "host"
        assert host.requests("/api/orders") == []  # nothing runs before the user approves
        executed = await approve(tab, asked["token"])
        assert executed["ok"], executed
        assert executed["source"] == "host"
        assert executed["result"]["status"] == "approved"
        (request,) = host.requests("/api/orders")
        assert request["idempotency_key"] == asked["token"]
        assert request["claims"]["confirmation"] == asked["token"]
        assert request["claims"]["sub"] == parley.user
        assert host.executions() == {asked["token"]: 1}
        sources = await rows(
            parley.config.database_url,
            "SELECT DISTINCT source FROM audit_event WHERE confirmation_token = :t",
            t=asked["token"],
        )
        assert sources == [("host",)]
        await tab.close()
    finally:
        parley.stop()


async def test_a_500_after_the_work_is_retried_under_the_same_key_and_runs_once(
    parley: ParleyServer, host: HostApp
) -> None:
    host.control(fail_after_work=1)
    tab = await parley.tab()
    asked = await request_action(tab, "approve PO-2002", "m-1")
    executed = await approve(tab, asked["token"])
    assert executed["ok"], executed
    attempts = host.requests("/api/orders")
    assert len(attempts) == 2
    assert {attempt["idempotency_key"] for attempt in attempts} == {asked["token"]}
    assert host.executions() == {asked["token"]: 1}
    async with httpx.AsyncClient(timeout=5) as client:
        exposition = (await client.get(f"{parley.url}/metrics")).text
    # The first attempt's 500 is counted for the source; the retry's answer was a plain "ok".
    counted = 'parley_tool_source_attempts_total{result="server_error",source="host"} 1.0'
    assert counted in exposition
    await tab.close()


async def test_an_action_without_an_answer_is_reported_as_unknown_never_sent_anew(
    parley: ParleyServer, host: HostApp
) -> None:
    host.control(always_500=True)
    tab = await parley.tab()
    asked = await request_action(tab, "approve PO-3003", "m-1")
    executed = await approve(tab, asked["token"])
    assert not executed["ok"]
    assert "may or may not have been carried out" in executed["result"]["error"]
    attempts = host.requests("/api/orders")
    assert len(attempts) == 3  # PARLEY_TOOL_ACTION_ATTEMPTS, every one under the same key
    assert {attempt["idempotency_key"] for attempt in attempts} == {asked["token"]}
    assert host.executions() == {asked["token"]: 1}
    await tab.close()


async def test_a_refused_retry_after_no_answer_is_not_reported_as_not_run(
    parley: ParleyServer, host: HostApp
) -> None:
    # A host that keeps no idempotency records refuses the retry of what it already did.
    host.control(fail_after_work=1, forget_keys=True)
    tab = await parley.tab()
    asked = await request_action(tab, "approve PO-3103", "m-1")
    executed = await approve(tab, asked["token"])
    assert not executed["ok"]
    error = executed["result"]["error"]
    assert "order is already approved" in error
    assert "may have carried the action out" in error
    assert host.executions() == {asked["token"]: 1}
    await tab.close()


# -- faults ------------------------------------------------------------------------------------


async def test_a_host_that_is_down_gives_a_clear_error_and_the_turn_completes(
    parley: ParleyServer, host: HostApp
) -> None:
    tab = await parley.tab()
    asked = await request_action(tab, "approve PO-4004", "m-0")
    host.stop()
    frames = await tab.ask("thing T-9", "m-1")
    _, result = tool_frames(frames)
    assert not result["ok"]
    assert "'host' could not answer 'get_thing'" in result["summary"]
    assert_completed(frames)
    executed = await approve(tab, asked["token"])
    assert not executed["ok"]
    # Nothing reached the host, so the outcome is known: it did not run (the circuit may
    # have opened after the failed query, in which case nothing was even tried).
    error = executed["result"]["error"]
    assert "was not carried out" in error or "was not called" in error, error
    await tab.close()


async def test_a_slow_host_times_out(parley: ParleyServer, host: HostApp) -> None:
    host.control(slow_s=5)
    tab = await parley.tab()
    frames = await tab.ask("thing T-2", "m-1")
    _, result = tool_frames(frames)
    assert not result["ok"]
    assert "no answer within 2s" in result["summary"]
    assert_completed(frames)
    assert len(host.requests("/api/things")) == 1  # a slow query is not asked again
    await tab.close()


async def test_a_10_mb_answer_is_cut_and_the_turn_completes(
    parley: ParleyServer, host: HostApp
) -> None:
    tab = await parley.tab()
    frames = await tab.ask("the big report please", "m-1")
    _, result = tool_frames(frames)
    assert result["ok"], result
    assert_completed(frames)
    (response,) = frames_of(frames, "response")
    assert response["text"]
    # What the model was given: the beginning and the note, far below 10 MB.
    (stored,) = await rows(
        parley.config.database_url,
        "SELECT tool_rounds FROM message WHERE role = 'assistant' AND id = :m",
        m=response["message_id"],
    )
    text = str(stored[0])
    assert "longer than 262144 bytes" in text
    assert len(text) < 100_000
    await tab.close()


async def test_the_hosts_no_reaches_the_model_as_not_allowed(
    parley: ParleyServer, host: HostApp
) -> None:
    tab = await parley.tab()
    frames = await tab.ask("show salaries", "m-1")
    _, result = tool_frames(frames)
    assert not result["ok"]
    assert result["summary"].startswith("not allowed:")
    assert "only managers may see salaries" in result["summary"]
    assert_completed(frames)
    await tab.close()


async def test_a_tenant_never_produces_a_call_naming_another(
    parley: ParleyServer, host: HostApp
) -> None:
    users = [("alice", "acme"), ("bob", "globex"), ("carol", "acme")]
    tabs = [await parley.tab(parley.token(user, tenant=tenant)) for user, tenant in users]

    async def ask_three(tab: Tab, user: str, tenant: str) -> None:
        for n in range(3):
            frames = await tab.ask(f"thing {user}-{tenant}-{n}", f"m-{n}")
            assert tool_frames(frames)[1]["ok"]

    await asyncio.gather(
        *(ask_three(tab, user, tenant) for tab, (user, tenant) in zip(tabs, users, strict=True))
    )
    requests = host.requests("/api/things")
    assert len(requests) == 9
    for request in requests:
        user, tenant, _ = request["path"].rsplit("/", 1)[1].split("-")
        assert (request["claims"]["sub"], request["claims"]["tenant"]) == (user, tenant)
    for tab in tabs:
        await tab.close()


# -- startup -----------------------------------------------------------------------------------


def test_a_malformed_openapi_document_stops_startup_naming_the_operation(
    embedded: Backend, tools_model: ToolsModel, host: HostApp, tmp_path: Path
) -> None:
    host.control(document="clash")
    path = sources_file(tmp_path, host.url)
    with pytest.raises(RuntimeError) as caught:
        ParleyServer(tmp_path, config_for(embedded, tools_model, path))
    message = str(caught.value)
    assert "tool source 'host'" in message
    assert "approve_order" in message
    assert "two arguments are named 'po_number'" in message


def test_a_malformed_sources_file_stops_startup_naming_the_path_and_key(
    embedded: Backend, tools_model: ToolsModel, host: HostApp, tmp_path: Path
) -> None:
    path = sources_file(tmp_path, host.url, timeout="3")
    with pytest.raises(RuntimeError) as caught:
        ParleyServer(tmp_path, config_for(embedded, tools_model, path))
    assert f"{path}: source 'host', key 'timeout': unknown key" in str(caught.value)


async def test_a_source_down_at_startup_is_degraded_hidden_and_picked_up_later(
    embedded: Backend, tools_model: ToolsModel, tmp_path: Path
) -> None:
    host = HostApp(tmp_path, start=False)
    path = sources_file(tmp_path, host.url)
    parley = ParleyServer(
        tmp_path, config_for(embedded, tools_model, path, PARLEY_TOOL_SOURCE_RETRY_S="0.5")
    )
    client = httpx.AsyncClient(timeout=5)
    try:
        ready = await client.get(f"{parley.url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert "tool_source:host" in ready.json()["degraded"]
        tab = await parley.tab()
        frames = await tab.ask("thing T-1", "m-1")
        assert frames_of(frames, "tool_call") == []  # not offered while its host is down
        assert "no host__get_thing tool" in frames_of(frames, "response")[0]["text"]

        host.start()
        deadline = time.monotonic() + 20
        while (await client.get(f"{parley.url}/readyz")).json()["status"] != "ready":
            assert time.monotonic() < deadline, "the source was not picked up"
            await asyncio.sleep(0.2)
        _, result = tool_frames(await tab.ask("thing T-1", "m-2"))
        assert result["ok"]
        await tab.close()
    finally:
        await client.aclose()
        parley.stop()
        host.stop()


async def test_parleys_own_key_signs_calls_the_host_checks_against_the_jwks(
    embedded: Backend, tools_model: ToolsModel, tmp_path: Path
) -> None:
    port = free_port()
    host = HostApp(tmp_path, jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json")
    path = sources_file(tmp_path, host.url, secret=False)
    config = config_for(
        embedded,
        tools_model,
        path,
        PARLEY_DEV_SIGNING_KEY_FILE=str(tmp_path / "signing-key.pem"),
    )
    parley = ParleyServer(tmp_path, config, port=port)
    try:
        tab = await parley.tab()
        _, result = tool_frames(await tab.ask("thing T-5", "m-1"))
        assert result["ok"], result
        (request,) = host.requests("/api/things")
        assert request["claims"]["sub"] == parley.user
        await tab.close()
    finally:
        parley.stop()
        host.stop()


async def test_passthrough_sends_the_token_the_user_signed_in_with(
    embedded: Backend, tools_model: ToolsModel, tmp_path: Path
) -> None:
    host = HostApp(tmp_path, user_secret=TEST_JWT_SECRET)
    path = sources_file(tmp_path, host.url, secret=False, auth='"passthrough"')
    parley = ParleyServer(tmp_path, config_for(embedded, tools_model, path))
    try:
        token = parley.token()
        tab = await parley.tab(token)
        _, result = tool_frames(await tab.ask("thing T-6", "m-1"))
        assert result["ok"], result
        (request,) = host.requests("/api/things")
        assert request["claims"]["sub"] == parley.user
        assert "aud" not in request["claims"]  # the app's own token, not one Parley made
        await tab.close()
    finally:
        parley.stop()
        host.stop()


# -- many approvals, many tabs, two workers ------------------------------------------------


@pytest.mark.slow
async def test_100_approvals_from_10_tabs_on_2_workers_reach_the_host_once(
    real_backend: Backend, tools_model: ToolsModel, host: HostApp, tmp_path: Path
) -> None:
    path = sources_file(tmp_path, host.url)
    # No per-user action limit: every one of the 100 approvals must race for the row.
    config = config_for(real_backend, tools_model, path, PARLEY_ACTIONS_PER_MINUTE="0")
    workers = [ParleyServer(tmp_path, config), ParleyServer(tmp_path, config)]
    try:
        token = workers[0].token()
        tabs = [await workers[n % 2].tab(token) for n in range(10)]
        asked = await request_action(tabs[0], "approve PO-5005", "m-1")
        confirm = {"type": "confirm", "token": asked["token"], "decision": "approve"}
        await asyncio.gather(*(tab.send(confirm) for tab in tabs for _ in range(10)))
        executed = frames_of(await tabs[5].until("action_executed", timeout=60), "action_executed")
        assert executed[0]["ok"], executed
        await asyncio.sleep(2)  # room for a second execution to show up, were there one
        assert len(host.requests("/api/orders")) == 1
        assert host.executions() == {asked["token"]: 1}
        executions = await rows(
            real_backend.database_url,
            "SELECT count(*) FROM audit_event WHERE confirmation_token = :t AND event = 'executed'",
            t=asked["token"],
        )
        assert executions == [(1,)]
        for tab in tabs:
            await tab.close()
    finally:
        for worker in workers:
            worker.stop()
