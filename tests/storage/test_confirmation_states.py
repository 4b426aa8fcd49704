"""The confirmation state machine: the table of moves, and ``ConfirmationStore.transition``
holding to it on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from protocol import ConfirmationStatus
from storage.confirmation_states import (
    TRANSITIONS,
    AuditEventKind,
    ConfirmationState,
    check_transition,
)
from storage.confirmations import ConfirmationStore
from storage.db import Database
from storage.models import AuditEvent, Confirmation, utcnow
from tests.server.conftest import module_postgres_database, postgres_database
from tests.server.db import rows

__all__ = ["module_postgres_database", "postgres_database"]

State = ConfirmationState

ALLOWED = [
    (State.PENDING, State.APPROVED),
    (State.PENDING, State.REJECTED),
    (State.PENDING, State.EXPIRED),
    (State.PENDING, State.CANCELLED),
    (State.APPROVED, State.EXECUTED),
    (State.APPROVED, State.FAILED),
    # An approval the action limit refused is taken back before anything runs.
    (State.APPROVED, State.PENDING),
]
ILLEGAL = [pair for pair in itertools.product(State, State) if pair not in ALLOWED]

# How a new (pending) confirmation reaches each state by allowed moves.
PATH_TO: dict[ConfirmationState, list[ConfirmationState]] = {
    State.PENDING: [],
    State.APPROVED: [State.APPROVED],
    State.REJECTED: [State.REJECTED],
    State.EXPIRED: [State.EXPIRED],
    State.CANCELLED: [State.CANCELLED],
    State.EXECUTED: [State.APPROVED, State.EXECUTED],
    State.FAILED: [State.APPROVED, State.FAILED],
}


# -- the table, without a database ---------------------------------------------------------------


def test_the_table_is_exactly_the_documented_lifecycle() -> None:
    assert set(TRANSITIONS) == set(State)
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == set(ALLOWED)
    assert {state for state in State if state.is_final} == {
        State.REJECTED,
        State.EXPIRED,
        State.CANCELLED,
        State.EXECUTED,
        State.FAILED,
    }


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_allowed_moves_pass_the_check(old: ConfirmationState, new: ConfirmationState) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_every_other_move_is_a_programming_error(
    old: ConfirmationState, new: ConfirmationState
) -> None:
    with pytest.raises(RuntimeError, match=f"illegal confirmation transition '{old}' -> '{new}'"):
        check_transition(old, new)


def test_a_string_that_is_no_state_is_refused() -> None:
    with pytest.raises(RuntimeError, match="unknown confirmation state 'pnding'"):
        check_transition("pnding", State.APPROVED)  # type: ignore[arg-type]


def test_stored_values_are_the_ones_rows_already_hold() -> None:
    # Renaming a value would strand every existing row: these strings are in databases.
    assert [state.value for state in State] == [
        "pending",
        "approved",
        "rejected",
        "expired",
        "cancelled",
        "executed",
        "failed",
    ]


def test_every_wire_status_is_a_state_of_the_same_name() -> None:
    # The tool runner turns a ``confirm_resolved.status`` into the state it writes.
    for status in ConfirmationStatus:
        assert ConfirmationState(status).value == status.value


def test_audit_steps_are_named_after_the_state_entered() -> None:
    entered = {state: AuditEventKind.entered(state) for state in State if state != State.PENDING}
    assert {state.value: kind.value for state, kind in entered.items()} == {
        state.value: state.value for state in entered
    }
    assert set(AuditEventKind) - set(entered.values()) == {
        AuditEventKind.REQUESTED,
        AuditEventKind.REFUSED,
    }
    with pytest.raises(RuntimeError, match="entering 'pending' is no audit step"):
        AuditEventKind.entered(State.PENDING)


# -- the store, on SQLite and PostgreSQL ---------------------------------------------------------


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
    finally:
        await db.close()


@pytest.fixture(scope="module", params=BACKENDS)
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database shared by the module's tests on one backend. A test keeps to the
    confirmations it creates (each has a token of its own), so what others left there cannot
    change its outcome; making and migrating a database per test cost more than the tests."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('shared') / 'parley.db'}"
    else:
        url = str(request.getfixturevalue("module_postgres_database"))
    asyncio.run(_migrate(url))
    return url


@pytest.fixture
async def database(shared_database_url: str) -> AsyncIterator[Database]:
    db = Database(shared_database_url)
    yield db
    await db.close()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of the test's own, for a test that reads every row of a table."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def empty_database(empty_database_url: str) -> AsyncIterator[Database]:
    db = Database(empty_database_url)
    await db.migrate()
    yield db
    await db.close()


@pytest.fixture
def store(database: Database) -> ConfirmationStore:
    return ConfirmationStore(database)


_tokens = itertools.count()


async def a_confirmation(store: ConfirmationStore, state: ConfirmationState) -> str:
    """A new confirmation, moved along allowed edges until it is in ``state``."""
    now = utcnow()
    token = f"tok-{next(_tokens)}"
    confirmation = Confirmation(
        token=token,
        tenant="acme",
        user_id="alice",
        conversation_id="c_1",
        turn_id="t_1",
        call_id="call_1",
        action="send_memo",
        params={"text": "hello"},
        summary="Send the memo",
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    audit = AuditEvent(
        tenant="acme",
        user_id="alice",
        tool="send_memo",
        event=AuditEventKind.REQUESTED,
        confirmation_token=token,
    )
    await store.create(confirmation, audit)
    current = State.PENDING
    for step in PATH_TO[state]:
        assert await store.transition(token, current, step) is not None
        current = step
    return token


async def stored_status(database: Database, token: str) -> Any:
    [(status,)] = await rows(
        database.url, "SELECT status FROM confirmation WHERE token = :t", t=token
    )
    return status


@contextlib.contextmanager
def sql_sent(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database's engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])  # (connection, cursor, statement, parameters, context, many)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize(("old", "new"), ALLOWED)
async def test_each_allowed_move_is_written_once(
    database: Database, store: ConfirmationStore, old: ConfirmationState, new: ConfirmationState
) -> None:
    token = await a_confirmation(store, old)
    decided = utcnow()

    moved = await store.transition(token, old, new, decided_at=decided)

    assert moved is not None
    assert moved.status is new  # rows come back typed, not as bare strings
    assert moved.decided_at is not None
    assert await stored_status(database, token) == new.value  # stored as the plain value
    # The move happened; the same move again finds the row no longer in ``old``.
    assert await store.transition(token, old, new) is None
    assert await stored_status(database, token) == new.value


@pytest.mark.parametrize("old", list(State))
async def test_illegal_moves_are_refused_before_any_sql(
    database: Database, store: ConfirmationStore, old: ConfirmationState
) -> None:
    token = await a_confirmation(store, old)
    illegal = [new for first, new in ILLEGAL if first == old]
    assert illegal  # every state has moves it may not make (at least to itself)
    for new in illegal:
        with sql_sent(database) as sent, pytest.raises(RuntimeError, match="illegal"):
            await store.transition(token, old, new, decided_at=utcnow())
        assert sent == [], f"{old} -> {new} reached the database"
    assert await stored_status(database, token) == old.value


async def test_the_status_cannot_sneak_in_among_the_other_values(
    database: Database, store: ConfirmationStore
) -> None:
    token = await a_confirmation(store, State.PENDING)
    with sql_sent(database) as sent, pytest.raises(RuntimeError, match="status"):
        await store.transition(token, State.PENDING, State.APPROVED, status=State.EXECUTED)
    assert sent == []
    assert await stored_status(database, token) == "pending"


async def test_of_concurrent_moves_out_of_pending_exactly_one_wins(
    database: Database, store: ConfirmationStore
) -> None:
    token = await a_confirmation(store, State.PENDING)
    # Many tabs approving and rejecting while the sweeper expires and a cancel withdraws.
    targets = [State.APPROVED, State.REJECTED, State.EXPIRED, State.CANCELLED] * 4

    results = await asyncio.gather(
        *(
            store.transition(token, State.PENDING, new, decided_by_connection=f"conn-{n}")
            for n, new in enumerate(targets)
        )
    )

    winners = [(n, row) for n, row in enumerate(results) if row is not None]
    assert len(winners) == 1
    [(n, row)] = winners
    assert row.status is targets[n]
    assert row.decided_by_connection == f"conn-{n}"
    assert await stored_status(database, token) == targets[n].value


async def test_of_concurrent_moves_out_of_approved_exactly_one_wins(
    database: Database, store: ConfirmationStore
) -> None:
    # Exactly-once execution: an approved action is recorded as run (or taken back) by one
    # caller only.
    token = await a_confirmation(store, State.APPROVED)
    targets = [State.EXECUTED, State.FAILED, State.PENDING] * 4

    results = await asyncio.gather(
        *(store.transition(token, State.APPROVED, new) for new in targets)
    )

    assert sum(row is not None for row in results) == 1
    assert await stored_status(database, token) in {"executed", "failed", "pending"}


async def test_listings_filter_on_the_typed_status(empty_database: Database) -> None:
    # The sweeper's listing takes every owner's overdue confirmations: only this test's may be
    # in the table.
    store = ConfirmationStore(empty_database)
    tokens = {state: await a_confirmation(store, state) for state in State}
    owner_rows = await store.list_for("acme", user="alice")
    assert {row.token: row.status for row in owner_rows} == {
        token: state for state, token in tokens.items()
    }
    executed = await store.list_for("acme", status=State.EXECUTED)
    assert [row.token for row in executed] == [tokens[State.EXECUTED]]
    overdue = await store.overdue(now=utcnow() + timedelta(hours=1))
    assert [row.token for row in overdue] == [tokens[State.PENDING]]
