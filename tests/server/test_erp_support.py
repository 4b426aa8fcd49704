"""Shared fixtures of the ERP pack tests: a freshly seeded database per test, on SQLite and on
PostgreSQL (a database per test on the server of db `test`, named after the session), and ways
to read the books back with plain SQL, independently of the pack's code.

Test modules import the fixtures from here (`erp_fixture` is the fixture named ``erp``; the
fixtures it depends on must be imported too); this module holds no tests of its own.
"""

import asyncio
import itertools
import json
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp import build_pack
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolOutcome, ToolRegistry

# The day the tests live on; the seed dates everything relative to it.
TODAY = date(2025, 6, 30)
CENT = Decimal("0.01")

POSTGRES_HOST = os.environ.get("PARLEY_TEST_PG_HOST", "127.0.0.1")
POSTGRES_DSN = f"postgresql://postgres@{POSTGRES_HOST}:5432/test"
# One name per test session, so parallel runs never share a database.
_RUN = uuid.uuid4().hex[:8]
_databases = itertools.count()


def dec(value: Any) -> Decimal:
    """A number read with plain SQL as exact cents (SQLite hands back floats)."""
    return Decimal(str(value)).quantize(CENT)


@asynccontextmanager
async def sqlite_engine(directory: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on the SQLite file ``erp.db`` in `directory`."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{directory / 'erp.db'}")
    try:
        yield engine
    finally:
        await engine.dispose()


async def seed(engine: AsyncEngine, today: date = TODAY) -> ToolRegistry:
    """Create and seed the demo books through the pack's own setup hook; the registry."""
    registry = ToolRegistry()
    registry.add_pack(build_pack(lambda: today))
    await registry.setup_packs(engine, True)
    return registry


async def _postgres_admin(*statements: str) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_url(database: str) -> str:
    return f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:5432/{database}"


async def _seed_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await seed(engine)
    finally:
        await engine.dispose()


# Seeding takes a while, copying is quick: each session seeds one template per backend and
# every test starts from a copy of it (a file copy, or CREATE DATABASE ... TEMPLATE).


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded SQLite file to copy."""
    directory = tmp_path_factory.mktemp("erp-template")
    asyncio.run(_seed_url(f"sqlite+aiosqlite:///{directory / 'erp.db'}"))
    return directory / "erp.db"


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A seeded PostgreSQL database to copy, unique to this test session, dropped after it.

    Each test module that imports this fixture holds its own instance of it, hence the counter.
    """
    name = f"erp_template_{_RUN}_{next(_databases)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(_seed_url(_postgres_url(name)))
        yield name
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def postgres_copy(template: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a new database copied from `template`, dropped afterwards."""
    name = f"erp_test_{_RUN}_{next(_databases)}"
    await _postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    engine = create_async_engine(_postgres_url(name))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Erp:
    """A seeded demo ERP and the registry that runs its tools."""

    backend: str
    engine: AsyncEngine
    registry: ToolRegistry
    sessions: async_sessionmaker[AsyncSession]

    # -- calling tools -------------------------------------------------------------------------

    def ctx(
        self, tenant: str = "acme", roles: Iterable[str] = ("admin",), user: str = "tess.tester"
    ) -> ToolContext:
        settings = self.registry.tenant_settings(tenant)
        return ToolContext(
            tenant=tenant,
            user=user,
            roles=frozenset(roles),
            conversation_id="conversation-1",
            turn_id="turn-1",
            currency=settings.currency,
            locale=settings.locale,
            sessions=self.sessions,
        )

    async def run(
        self,
        tool: str,
        /,
        tenant: str = "acme",
        roles: Iterable[str] = ("admin",),
        user: str = "tess.tester",
        **arguments: Any,
    ) -> ToolOutcome:
        """Validate the arguments as the model would send them (JSON text), then run."""
        ctx = self.ctx(tenant, roles, user)
        call = self.registry.validate(tool, json.dumps(arguments, default=str), ctx.roles)
        return await self.registry.run(call, ctx)

    async def ok(self, tool: str, /, **kwargs: Any) -> Any:
        """Run a tool that must succeed and return its result."""
        outcome = await self.run(tool, **kwargs)
        assert outcome.ok, outcome.result
        json.dumps(outcome.result)  # what goes back to the model is plain JSON
        return outcome.result

    async def summary(
        self,
        tool: str,
        /,
        tenant: str = "acme",
        roles: Iterable[str] = ("admin",),
        user: str = "tess.tester",
        **arguments: Any,
    ) -> str:
        """The line the user would be asked to confirm."""
        ctx = self.ctx(tenant, roles, user)
        call = self.registry.validate(tool, json.dumps(arguments, default=str), ctx.roles)
        return await self.registry.summarize(call, ctx)

    async def refused(self, tool: str, /, **kwargs: Any) -> str:
        """Check that an action is refused before confirmation and when run; the message."""
        with pytest.raises(ToolError) as before:
            await self.summary(tool, **kwargs)
        outcome = await self.run(tool, **kwargs)
        assert not outcome.ok
        assert outcome.result == {"error": before.value.message}
        return before.value.message

    # -- reading the books with plain SQL ------------------------------------------------------

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def value(self, sql: str, **params: Any) -> Any:
        rows = await self.rows(sql, **params)
        assert len(rows) == 1
        return rows[0][0]

    async def gl_balances(self, tenant: str) -> dict[str, Decimal]:
        """Debit minus credit per account, summed here from every journal line."""
        balances: dict[str, Decimal] = defaultdict(Decimal)
        for code, debit, credit in await self.rows(
            "SELECT account_code, debit, credit FROM erp_journal_line WHERE tenant = :t", t=tenant
        ):
            balances[code] += dec(debit) - dec(credit)
        return dict(balances)

    async def open_balance(self, table: str, tenant: str) -> Decimal:
        """What is still open on the invoices or bills of `tenant`."""
        rows = await self.rows(
            f"SELECT total, amount_paid FROM {table} "
            "WHERE tenant = :t AND status IN ('open', 'partially_paid')",
            t=tenant,
        )
        return sum((dec(total) - dec(paid) for total, paid in rows), Decimal("0.00"))

    async def document(self, table: str, tenant: str, number: str) -> dict[str, Any]:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    text(f"SELECT * FROM {table} WHERE tenant = :t AND number = :n"),
                    {"t": tenant, "n": number},
                )
            ).one()
        return dict(row._mapping)

    async def assert_books_balance(self, tenant: str) -> None:
        """Every voucher balances, and the ledger agrees with the sub-ledgers and the stock."""
        per_voucher: dict[int, Decimal] = defaultdict(Decimal)
        for voucher_id, debit, credit in await self.rows(
            "SELECT voucher_id, debit, credit FROM erp_journal_line WHERE tenant = :t", t=tenant
        ):
            assert (dec(debit) == 0) != (dec(credit) == 0), "a line has exactly one side"
            per_voucher[voucher_id] += dec(debit) - dec(credit)
        assert per_voucher, "the tenant has books"
        assert {v for v, diff in per_voucher.items() if diff} == set(), "unbalanced vouchers"
        gl = await self.gl_balances(tenant)
        assert sum(gl.values()) == 0
        assert gl.get("1100", Decimal(0)) == await self.open_balance("erp_invoice", tenant)
        assert -gl.get("2000", Decimal(0)) == await self.open_balance("erp_bill", tenant)
        stock = sum(
            (
                (Decimal(str(qty)) * dec(cost)).quantize(CENT)
                for qty, cost in await self.rows(
                    "SELECT on_hand, unit_cost FROM erp_item WHERE tenant = :t", t=tenant
                )
            ),
            Decimal("0.00"),
        )
        assert gl.get("1200", Decimal(0)) == stock


# The PostgreSQL half is the full run's (production_pair), like the server tests' real pair.
@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.production_pair]),
    ]
)
def erp_template(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend of a test and its seeded template (resolved here, outside the event loop)."""
    if request.param == "sqlite":
        return "sqlite", str(request.getfixturevalue("sqlite_template"))
    return "postgres", request.getfixturevalue("postgres_template")


@pytest.fixture(name="erp")
async def erp_fixture(erp_template: tuple[str, str], tmp_path: Path) -> AsyncIterator[Erp]:
    """The demo ERP with both tenants seeded as of `TODAY`, on a database of its own."""
    backend, template = erp_template
    if backend == "sqlite":
        shutil.copyfile(template, tmp_path / "erp.db")
        engines = sqlite_engine(tmp_path)
    else:
        engines = postgres_copy(template)
    async with engines as engine:
        registry = await seed(engine)  # already seeded: the hook only finds the books there
        yield Erp(backend, engine, registry, async_sessionmaker(engine, class_=AsyncSession))
