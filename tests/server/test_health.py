"""Liveness, readiness and logs: /readyz follows Redis going away and coming back (a
redis-server of the test's own), notices an unmigrated database, and every log line about a
socket or a turn names it."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.server.conftest import Backend
from tests.server.harness import REPO, DevModel, ParleyServer, ServerConfig, base_env, frames_of
from tests.server.rest_support import (
    SHARED_REDIS_URL,
    Callers,
    RedisProcess,
    callers,
    create_postgres_database,
    drop_postgres_database,
    drop_redis_prefix,
    reachable,
    rest,
    scrape,
    server_lines,
    total,
)
from tests.server.security_support import hello_outcome

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)

CHECKS = {"database", "schema", "redis", "fanout", "draining", "model"}


def readiness(server: ParleyServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def liveness(server: ParleyServer) -> httpx.Response:
    return httpx.get(f"{server.url}/healthz", timeout=10)


def migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    """``parley migrate`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        cwd=REPO,
        env={**base_env(), "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def ready_state(server: ParleyServer, status: int, timeout: float = 30) -> dict[str, Any]:
    """The /readyz body once it answers ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        reply = readiness(server)
        if reply.status_code == status:
            body: dict[str, Any] = reply.json()
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {reply.status_code}: {reply.text}")
        await asyncio.sleep(0.2)


async def test_healthz_and_readyz_when_all_is_well(rest: ParleyServer) -> None:
    live = liveness(rest)
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = readiness(rest)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": dict.fromkeys(CHECKS, "ok")}
    assert ready.headers["cache-control"] == "no-store"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def on_own_redis(
    own_redis: RedisProcess, dev_model: DevModel, tmp_path: Path
) -> Iterator[ParleyServer]:
    server = ParleyServer(tmp_path, own_redis_config(own_redis, dev_model, tmp_path))
    yield server
    server.stop()


def own_redis_config(own_redis: RedisProcess, dev_model: DevModel, tmp_path: Path) -> ServerConfig:
    return ServerConfig(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        redis_url=own_redis.url,
        model_url=dev_model.base_url,
        tools="",
    )


@pytest.mark.slow  # a Redis restart
async def test_readyz_follows_redis_going_away_and_coming_back(
    on_own_redis: ParleyServer, own_redis: RedisProcess
) -> None:
    await ready_state(on_own_redis, 200)
    own_redis.stop()
    down = await ready_state(on_own_redis, 503)
    assert down["status"] == "unavailable"
    assert down["problems"]["redis"].startswith("unreachable")
    assert down["checks"]["database"] == "ok"
    assert total(scrape(on_own_redis), "parley_redis_errors_total") >= 1
    # The process itself is fine: liveness does not depend on Redis.
    assert liveness(on_own_redis).status_code == 200

    own_redis.start()
    up = await ready_state(on_own_redis, 200)
    assert up["checks"]["redis"] == "ok"


@pytest.mark.slow  # a Redis restart
async def test_a_worker_started_while_redis_is_down_waits_for_it_and_recovers(
    own_redis: RedisProcess, dev_model: DevModel, tmp_path: Path
) -> None:
    own_redis.stop()  # the worker starts first, as after a host reboot
    server = ParleyServer(tmp_path, own_redis_config(own_redis, dev_model, tmp_path))
    try:
        down = await ready_state(server, 503)
        assert down["problems"]["redis"].startswith("unreachable")
        assert liveness(server).status_code == 200
        code, _, frames = await hello_outcome(server.ws_url, server.token())
        assert code == 1013
        assert [frame["code"] for frame in frames if frame["type"] == "error"] == [
            "store_unavailable"
        ]

        own_redis.start()
        await ready_state(server, 200)
        tab = await server.tab()
        answer = await tab.ask("[say] back again", "m-1")
        assert answer[-1]["status"] == "completed"
        await tab.close()
    finally:
        server.stop()


@pytest.fixture
def unmigrated(dev_model: DevModel, tmp_path: Path) -> Iterator[tuple[ParleyServer, str]]:
    """A production-like server (outside dev mode, on Redis) whose fresh PostgreSQL database
    nobody has migrated."""
    if not reachable(5432):
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = create_postgres_database()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    prefix = f"parley-rest-{secrets.token_hex(4)}:"
    config = ServerConfig(
        database_url=url,
        redis_url=SHARED_REDIS_URL,
        redis_prefix=prefix,
        model_url=dev_model.base_url,
        tools="",
        extra={"PARLEY_DEV": "0"},
    )
    try:
        server = ParleyServer(tmp_path, config)
        yield server, url
        server.stop()
    finally:
        drop_postgres_database(name)
        drop_redis_prefix(prefix)


@pytest.mark.slow  # runs `parley migrate`
async def test_readyz_asks_for_migrations_until_they_ran(
    unmigrated: tuple[ParleyServer, str],
) -> None:
    server, url = unmigrated
    body = await ready_state(server, 503)
    assert "parley migrate" in body["problems"]["schema"]
    assert body["checks"]["database"] == "ok"
    # Meanwhile the sweeper's queries fail on the missing tables, and are counted.
    deadline = time.monotonic() + 20
    while total(scrape(server), "parley_db_errors_total") == 0:
        assert time.monotonic() < deadline, "no database error was counted"
        await asyncio.sleep(0.2)
    migrated = migrate(url)
    assert migrated.returncode == 0, migrated.stderr
    await ready_state(server, 200)


@pytest.mark.slow  # runs `parley migrate`
async def test_readyz_stays_ready_on_a_database_a_newer_release_migrated(
    unmigrated: tuple[ParleyServer, str],
) -> None:
    server, url = unmigrated
    migrated = migrate(url)
    assert migrated.returncode == 0, migrated.stderr
    # A rolling deploy: the next release migrated to a revision this code has never seen.
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = 'f00dfeed9999'")
            )
    finally:
        await engine.dispose()
    body = await ready_state(server, 200)
    assert body["checks"]["schema"] == "ok"


async def test_log_lines_name_the_connection_user_and_turn(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    tab = await alice.tab()
    frames = await tab.ask('[call count_letters] {"text": "abc"}', "m-1")
    await tab.close()
    [turn_end] = frames_of(frames, "turn_end")
    await alice.get("/conversations")

    lines = list(server_lines(rest))
    [ready] = [
        line
        for line in lines
        if line.get("connection") == tab.ready["connection_id"] and "ready" in line["message"]
    ]
    assert (ready["tenant"], ready["user"]) == ("acme", alice.user)
    [tool_line] = [line for line in lines if line.get("turn") == turn_end["turn_id"]]
    assert tool_line["message"] == "counted 3 letters"
    assert tool_line["conversation"] == turn_end["conversation_id"]
    assert (tool_line["tenant"], tool_line["user"]) == ("acme", alice.user)
    assert "connection" not in tool_line  # a turn belongs to no socket
    assert tool_line["level"] == "info"
    assert tool_line["time"].endswith("+00:00")
    [access] = [
        line
        for line in lines
        if line.get("user") == alice.user and "GET /api/v1/conversations" in line["message"]
    ]
    assert access["tenant"] == "acme"


def test_text_logs_on_a_terminal_carry_the_same_context() -> None:
    """Human-readable lines keep the context fields, in brackets at the end."""
    script = (
        "import logging\n"
        "from server.config import Settings\n"
        "from server.ops.logs import bind_log_context, configure_logging\n"
        "configure_logging(Settings(log_format='text'))\n"
        "bind_log_context(connection='k_1', user='alice', turn='t_9')\n"
        "logging.getLogger('parley.test').info('hello %s', 'there')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.endswith("parley.test: hello there [connection=k_1 user=alice turn=t_9]")


async def test_the_demo_page_is_dev_mode_only_and_the_widget_is_served_always(
    real_backend: Backend, dev_model: DevModel, tmp_path: Path
) -> None:
    production = ParleyServer(tmp_path, real_backend.config(dev_model, PARLEY_DEV="0"))
    try:
        async with httpx.AsyncClient(base_url=production.url, timeout=10) as client:
            assert (await client.get("/")).status_code == 404
            assert (await client.get("/client/demo/index.html")).status_code == 404
            widget = await client.get("/client/widget.js")
            assert widget.status_code == 200
            assert "customElements" in widget.text
    finally:
        production.stop()
    dev = ParleyServer(tmp_path, real_backend.config(dev_model))
    try:
        async with httpx.AsyncClient(base_url=dev.url, timeout=10) as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert "parley-assistant" in page.text
    finally:
        dev.stop()
