"""Fixtures for end-to-end server tests: real processes, real Redis and PostgreSQL.

``backend`` runs a test on each state/database pairing that matters: the embedded defaults
(in-process store, SQLite file) and the production pair (real Redis at 127.0.0.1:6379, real
PostgreSQL at 127.0.0.1:5432). PostgreSQL tests are skipped only when no server answers there.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.server.harness import DevModel, ParleyServer, ServerConfig

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str

    def config(self, model: DevModel | None = None, **extra: str) -> ServerConfig:
        return ServerConfig(
            database_url=self.database_url,
            redis_url=self.redis_url,
            redis_prefix=self.redis_prefix,
            model_url=model.base_url if model else None,
            tools="",
            extra=dict(extra),
        )


def _drop_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards.

    Per test, because the demo ERP pack's books change as tests approve and post things."""
    if not _reachable(5432):
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    import asyncio

    import asyncpg

    name = f"parley_test_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _backend(kind: str, tmp: Path, request: pytest.FixtureRequest) -> Backend:
    prefix = f"parley-test-{secrets.token_hex(4)}:"
    if kind == "embedded":
        return Backend(kind, f"sqlite+aiosqlite:///{tmp / 'parley.db'}", None, prefix)
    if not _reachable(6379):
        pytest.fail("real Redis expected at 127.0.0.1:6379 (scripts/test starts it)")
    database = request.getfixturevalue("postgres_database")
    request.addfinalizer(lambda: _drop_redis_prefix(prefix))
    return Backend(kind, database, REDIS_URL, prefix)


@pytest.fixture(params=["embedded", "redis+postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each test runs on the embedded defaults and on real Redis + PostgreSQL."""
    return _backend(request.param, tmp_path, request)


@pytest.fixture
def real_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Real Redis + PostgreSQL only (multi-worker tests)."""
    return _backend("redis+postgres", tmp_path, request)


@pytest.fixture(scope="module")
def dev_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevModel]:
    model = DevModel(tmp_path_factory.mktemp("devllm"))
    yield model
    model.stop()


@pytest.fixture
def model(dev_model: DevModel) -> Iterator[DevModel]:
    """The shared dev model, with faults and request log cleared around each test."""
    dev_model.clear_faults()
    dev_model.clear_requests()
    yield dev_model
    dev_model.clear_faults()


@pytest.fixture
def server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    parley = ParleyServer(tmp_path, backend.config(model))
    yield parley
    parley.stop()
