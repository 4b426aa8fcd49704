"""Fixtures for end-to-end server tests: real servers, real Redis and PostgreSQL.

``backend`` runs a test on each state/database pairing that matters: the embedded defaults
(in-process store, SQLite file) and the production pair (real Redis at 127.0.0.1:6379, real
PostgreSQL at 127.0.0.1:5432). PostgreSQL tests are skipped only when no server answers there.

Servers run in the test process unless a test needs processes (see ``harness.py``); those
tests are marked ``slow``. To keep the suite light, what isolation allows is shared by the
tests of a module: the ``server`` (one per backend, each test talking as a user of its own),
the dev model and the PostgreSQL database (each test keeps its own Redis key prefix and, on
the embedded backend, its own SQLite file). A test whose data must start from nothing (the
demo ERP's books) asks for ``fresh_backend``.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import redis

from tests.server import harness
from tests.server.harness import DevModel, ParleyServer, ServerConfig

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test is made: only the full run's tests may start processes.
    harness.processes_allowed = item.get_closest_marker("slow") is not None


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


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _new_postgres_database() -> Iterator[str]:
    if not _reachable(5432):
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"parley_test_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (for data that must start
    from nothing, such as the demo ERP pack's books, which tests approve and post things in)."""
    yield from _new_postgres_database()


@pytest.fixture(scope="module")
def module_postgres_database() -> Iterator[str]:
    """A PostgreSQL database shared by the tests of a module, which keep to users of their
    own; dropped after the module."""
    yield from _new_postgres_database()


def _backend(
    kind: str, tmp: Path, request: pytest.FixtureRequest, *, fresh_database: bool = False
) -> Backend:
    prefix = f"parley-test-{secrets.token_hex(4)}:"
    if kind == "embedded":
        return Backend(kind, f"sqlite+aiosqlite:///{tmp / 'parley.db'}", None, prefix)
    if not _reachable(6379):
        pytest.fail("real Redis expected at 127.0.0.1:6379 (scripts/test starts it)")
    fixture = "postgres_database" if fresh_database else "module_postgres_database"
    database = request.getfixturevalue(fixture)
    request.addfinalizer(lambda: _drop_redis_prefix(prefix))
    return Backend(kind, database, REDIS_URL, prefix)


# A test that runs on both backends runs its Redis + PostgreSQL half in the full run only: the
# fast tier takes the embedded half, and the tests that need the real pair (real_backend,
# tests/storage) run there too.
BOTH_BACKENDS = ["embedded", pytest.param("redis+postgres", marks=pytest.mark.production_pair)]


@pytest.fixture(params=BOTH_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each test runs on the embedded defaults and on real Redis + PostgreSQL."""
    return _backend(request.param, tmp_path, request)


async def _migrate_and_seed_erp(database_url: str) -> None:
    from examples.erp.pack import prepare_database
    from storage.db import Database

    database = Database(database_url)
    try:
        await database.migrate()
        await prepare_database(database.engine, dev=True)
    finally:
        await database.close()


@pytest.fixture(scope="session")
def seeded_erp_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], None]:
    """Writes a SQLite database as a dev server's first start leaves it: migrated, with the
    demo ERP's tables and books. Seeding costs a third of a CPU second a server; a copy of a
    file seeded once costs nothing, and the server starting on it finds the work done. The
    books are dated from the day they were seeded: one file is made per day."""
    templates: dict[date, Path] = {}

    def write(path: Path) -> None:
        today = date.today()
        if today not in templates:
            template = tmp_path_factory.mktemp("seeded-erp") / "parley.db"
            asyncio.run(_migrate_and_seed_erp(f"sqlite+aiosqlite:///{template}"))
            templates[today] = template
        shutil.copyfile(templates[today], path)

    return write


@pytest.fixture(params=BOTH_BACKENDS)
def fresh_backend(
    request: pytest.FixtureRequest, tmp_path: Path, seeded_erp_sqlite: Callable[[Path], None]
) -> Backend:
    """``backend`` with a database of the test's own: on PostgreSQL a new one, on SQLite a
    copy of one seeded with the demo ERP's books."""
    backend = _backend(request.param, tmp_path, request, fresh_database=True)
    if request.param == "embedded":
        seeded_erp_sqlite(Path(backend.database_url.removeprefix("sqlite+aiosqlite:///")))
    return backend


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


@pytest.fixture(scope="module", params=BOTH_BACKENDS)
def shared_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
) -> Iterator[ParleyServer]:
    """One server per backend for the tests of a module."""
    backend = _backend(request.param, tmp_path_factory.mktemp("server"), request)
    parley = ParleyServer(tmp_path_factory.mktemp("server"), backend.config(dev_model))
    yield parley
    parley.stop()


@pytest.fixture
def server(shared_server: ParleyServer, model: DevModel) -> ParleyServer:
    """The module's server on each backend, seen by a user of this test's own."""
    return shared_server.for_new_user()
