"""The demo ERP host app as a real process on a loopback port, and tokens signed as Parley would.

``ErpHost`` is ``python -m examples.erp`` in a subprocess with its own database (a SQLite file,
or a fresh PostgreSQL database dropped afterwards); nothing of the app runs inside the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET = "erp-host-test-secret-0123456789abcdef0123"
AUDIENCE = "erp"
ISSUER = "parley"
STARTUP_TIMEOUT_S = 60.0
POSTGRES_HOST = os.environ.get("PARLEY_TEST_PG_HOST", "127.0.0.1")
POSTGRES_DSN = f"postgresql://postgres@{POSTGRES_HOST}:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call_token(
    user: str = "alice",
    tenant: str = "acme",
    roles: Iterable[str] = ("admin",),
    *,
    confirmation: str | None = None,
    secret: str = SECRET,
    ttl_s: int = 60,
    drop: Iterable[str] = (),
    **claims: Any,
) -> str:
    """A token like the one Parley signs for one call; `drop` leaves claims out."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "tenant": tenant,
        # A string stays a string, so a test can send a malformed claim.
        "roles": roles if isinstance(roles, str) else list(roles),
        "conversation_id": "conversation-1",
        "turn_id": "turn-1",
        "call_id": f"call-{uuid.uuid4().hex[:8]}",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl_s,
    }
    if confirmation is not None:
        payload["confirmation"] = confirmation
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ErpHost:
    """``python -m examples.erp`` on a free port, its output kept in a file."""

    def __init__(self, tmp: Path, database_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = tmp / f"erp-host-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ERP_")}
        environ.update(
            {
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "ERP_DATABASE_URL": database_url,
                "ERP_PARLEY_SECRET": SECRET,
            }
        )
        environ.update(env or {})
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.erp",
                "--port",
                str(self.port),
                "--seed",
                "--demo-data",
            ],
            cwd=REPO,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _wait(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the ERP host exited during startup:\n{self.output()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the ERP host did not come up:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    async def count(self, table: str, tenant: str) -> int:
        """Rows of `table` in `tenant`, read with plain SQL beside the app."""
        query = f"SELECT count(*) FROM {table} WHERE tenant = $1"
        if self.database_url.startswith("sqlite"):
            path = self.database_url.split(":///", 1)[1]
            with contextlib.closing(sqlite3.connect(path)) as connection:
                row = connection.execute(query.replace("$1", "?"), (tenant,)).fetchone()
                return int(row[0])
        connection = await asyncpg.connect(self.database_url.replace("+asyncpg", ""))
        try:
            return int(await connection.fetchval(query, tenant))
        finally:
            await connection.close()


def _postgres_reachable() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((POSTGRES_HOST, 5432)) == 0


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """A new, empty database of `backend` ("sqlite" or "postgres"), removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'erp.db'}"
        return
    if not _postgres_reachable():
        pytest.skip(f"no PostgreSQL at {POSTGRES_HOST}:5432")
    name = f"erp_host_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:5432/{name}"
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ErpHost]:
    """One seeded host per backend, shared by a module's tests (each leaves the others' data be)."""
    tmp = tmp_path_factory.mktemp(f"erp-host-{request.param}")
    with database(request.param, tmp) as url:
        erp = ErpHost(tmp, url)
        try:
            yield erp
        finally:
            erp.stop()
