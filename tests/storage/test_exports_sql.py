"""CSV exports of views on SQLite and PostgreSQL: scoped to their owner, replaced per call,
and bounded per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.exports import ExportStore
from storage.keys import UserKey
from tests.server.conftest import postgres_database

__all__ = ["postgres_database"]

ALICE = UserKey(tenant="acme", user="alice")
COLUMNS = [{"key": "number", "label": "Invoice"}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.migrate()
    yield db
    await db.close()


async def save(store: ExportStore, owner: UserKey, call_id: str, *numbers: str) -> None:
    await store.save(
        owner,
        call_id=call_id,
        conversation_id="c_1",
        tool="erp__ar_aging",
        title="Open invoices",
        columns=COLUMNS,
        rows=[{"number": number} for number in numbers],
        total_rows=len(numbers),
    )


async def test_an_export_is_its_owners_only_and_replaced_by_a_new_one_of_its_call(
    database: Database,
) -> None:
    store = ExportStore(database, keep_per_user=10)
    await save(store, ALICE, "call_1", "INV-1", "INV-2")
    found = await store.get(ALICE, "call_1")
    assert found is not None
    assert (found.columns, found.rows, found.total_rows) == (
        COLUMNS,
        [{"number": "INV-1"}, {"number": "INV-2"}],
        2,
    )
    assert await store.get(UserKey(tenant="acme", user="bob"), "call_1") is None
    assert await store.get(UserKey(tenant="globex", user="alice"), "call_1") is None
    await save(store, ALICE, "call_1", "INV-3")
    again = await store.get(ALICE, "call_1")
    assert again is not None
    assert again.rows == [{"number": "INV-3"}]


async def test_a_user_keeps_only_the_newest_exports(database: Database) -> None:
    store = ExportStore(database, keep_per_user=3)
    bob = UserKey(tenant="acme", user="bob")
    await save(store, bob, "call_b", "INV-9")
    for n in range(5):
        await save(store, ALICE, f"call_{n}", f"INV-{n}")
    kept = [n for n in range(5) if await store.get(ALICE, f"call_{n}") is not None]
    assert kept == [2, 3, 4]
    # Another user's exports do not count against alice's, nor are they removed.
    assert await store.get(bob, "call_b") is not None
