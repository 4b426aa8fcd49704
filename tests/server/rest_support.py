"""Real parts for the REST, metrics and health tests: API callers with their own tokens, a
webhook receiver on a loopback port, a private redis-server, rows seeded into SQL and scraped
Prometheus samples.

Servers are module-scoped (one per backend per test module) to keep the suite light on a
shared machine; every test makes callers with fresh user ids, so tests never see each
other's rows.
"""

from __future__ import annotations

import contextlib
import http.server
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.server.harness import DevModel, ParleyServer, ServerConfig, Tab, free_port, make_token

REST_TOOLS = "tests.server.rest_pack:pack"
BACKENDS = ["embedded", pytest.param("redis+postgres", marks=pytest.mark.production_pair)]
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
WAIT_S = 20.0


def start_server(
    kind: str,
    request: pytest.FixtureRequest,
    tmp: Path,
    model: DevModel,
    *,
    process: bool = False,
    **extra: str,
) -> ParleyServer:
    """A Parley server on ``kind`` (embedded or redis+postgres) with the REST test tools.

    The PostgreSQL database and the Redis key prefix are the server's own and are dropped when
    the requesting fixture ends.
    """
    prefix = f"parley-rest-{secrets.token_hex(4)}:"
    if kind == "embedded":
        config = ServerConfig(database_url=f"sqlite+aiosqlite:///{tmp / 'parley.db'}")
    else:
        if not reachable(5432):
            pytest.skip("no PostgreSQL at 127.0.0.1:5432")
        if not reachable(6379):
            pytest.fail("real Redis expected at 127.0.0.1:6379 (scripts/test starts it)")
        database = create_postgres_database()
        request.addfinalizer(lambda: drop_postgres_database(database))
        request.addfinalizer(lambda: drop_redis_prefix(prefix))
        config = ServerConfig(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
            redis_url=SHARED_REDIS_URL,
        )
    config.redis_prefix = prefix
    config.model_url = model.base_url
    config.tools = REST_TOOLS
    config.extra = dict(extra)
    return ParleyServer(tmp, config, process=process)


def reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _admin(statement: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def create_postgres_database() -> str:
    name = f"parley_rest_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


# -- callers -----------------------------------------------------------------------------------


@dataclass
class Caller:
    """A user of one tenant with a token, an HTTP client for /api/v1 and a way to open tabs."""

    server: ParleyServer
    user: str
    tenant: str
    roles: tuple[str, ...]
    token: str
    http: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, body: Any = None, **options: Any) -> httpx.Response:
        return await self.http.post(path, json=body, **options)

    async def patch(self, path: str, body: Any = None, **options: Any) -> httpx.Response:
        return await self.http.patch(path, json=body, **options)

    async def tab(self) -> Tab:
        return await Tab.open(self.server.ws_url, self.token)

    async def pages(self, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of a list, following ``next_cursor``."""
        pages: list[list[dict[str, Any]]] = []
        cursor = None
        while True:
            reply = await self.get(path, limit=limit, cursor=cursor, **params)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            pages.append(body["items"])
            cursor = body.get("next_cursor")
            if cursor is None:
                return pages
            assert len(pages) < 100, "paging does not end"


class Callers:
    """Makes callers for one server and closes their clients at the end of a test."""

    def __init__(self, server: ParleyServer) -> None:
        self.server = server
        self._clients: list[httpx.AsyncClient] = []

    def new(
        self,
        *,
        tenant: str = "acme",
        roles: Sequence[str] = ("member",),
        user: str | None = None,
        **claims: Any,
    ) -> Caller:
        user = user or f"u-{secrets.token_hex(4)}"
        token = make_token(user, tenant, roles, **claims)
        return Caller(
            server=self.server,
            user=user,
            tenant=tenant,
            roles=tuple(roles),
            token=token,
            http=self.client({"Authorization": f"Bearer {token}"}),
        )

    def anonymous(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return self.client(headers or {})

    def client(self, headers: dict[str, str]) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=f"{self.server.url}/api/v1", headers=headers, timeout=WAIT_S
        )
        self._clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def assert_error(reply: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    """The reply is the standard error body with this status and code (and field, for 422)."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if field is not None:
        assert error.get("field") == field, error
        assert field in error["message"]


# -- SQL ---------------------------------------------------------------------------------------


async def seed(database_url: str, records: Iterable[SQLModel]) -> None:
    """Insert rows the way the server's own code would (so both dialects store them alike)."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            session.add_all(list(records))
            await session.commit()
    finally:
        await engine.dispose()


# -- a webhook receiver ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP server on a loopback port that records every POST and answers each with the
    next status of ``statuses`` (200 once they run out)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/escalations?key=secret-in-query"

    async def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        import asyncio

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- a private Redis -----------------------------------------------------------------------------


class RedisProcess:
    """A redis-server of this test's own on a free port, to stop and start at will (the shared
    Redis at 6379 is never touched)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._tmp = tmp
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self._tmp)]
        log = (self._tmp / f"redis-{self.port}.log").open("ab")
        self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None


# -- metrics -----------------------------------------------------------------------------------


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: ParleyServer) -> Samples:
    """Every sample of the server's /metrics, keyed by name and sorted labels."""
    reply = httpx.get(f"{server.url}/metrics", timeout=WAIT_S)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value, 0 when it has not appeared yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of a metric over all its label values."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def server_lines(server: ParleyServer) -> Iterator[dict[str, Any]]:
    """The server's JSON log lines."""
    import orjson

    for line in server.output().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                yield orjson.loads(line)


# -- fixtures (import them into a test module to use them) -----------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def rest(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
) -> Iterator[ParleyServer]:
    """One server per backend for the whole test module."""
    server = start_server(request.param, request, tmp_path_factory.mktemp("rest"), dev_model)
    yield server
    server.stop()


@pytest.fixture
async def callers(rest: ParleyServer) -> Any:
    made = Callers(rest)
    yield made
    await made.aclose()
