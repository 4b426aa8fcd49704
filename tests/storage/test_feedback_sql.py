"""Feedback on SQLite and PostgreSQL: many tabs rating one message at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.feedback import FeedbackStore
from storage.keys import UserKey
from storage.transcripts import TranscriptStore
from tests.server.conftest import postgres_database
from tests.server.db import rows

__all__ = ["postgres_database"]

OWNER = UserKey(tenant="acme", user="alice")


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


async def an_answer(db: Database) -> str:
    transcripts = TranscriptStore(db)
    conversation, _, _ = await transcripts.add_user_message(
        OWNER, None, text="hello", client_msg_id="m-1"
    )
    answer = await transcripts.start_assistant_message(OWNER, conversation.id, "t-1", "msg-a1")
    return answer.id


async def test_concurrent_ratings_of_one_message_all_succeed_and_leave_one_row(
    database: Database,
) -> None:
    message_id = await an_answer(database)
    store = FeedbackStore(database)
    ratings = ["up", "down", "1", "2", "3", "4", "5", "up", "down", "5"] * 2

    stored = await asyncio.gather(
        *(store.rate(OWNER, message_id, rating, f"tab {n}") for n, rating in enumerate(ratings))
    )

    assert [row.rating for row in stored] == ratings  # each call returns its own write
    table = await rows(
        database.url,
        "SELECT rating, comment FROM feedback WHERE message_id = :m",
        m=message_id,
    )
    assert len(table) == 1
    assert table[0] in {(row.rating, row.comment) for row in stored}


async def test_rating_again_replaces_the_rating_and_keeps_the_row(database: Database) -> None:
    message_id = await an_answer(database)
    store = FeedbackStore(database)
    first = await store.rate(OWNER, message_id, "up", "nice")
    second = await store.rate(OWNER, message_id, "down", None)
    assert second.id == first.id
    assert (second.rating, second.comment) == ("down", None)
    assert second.created_at >= first.created_at
