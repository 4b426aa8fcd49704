"""Feedback over REST, and that it is the socket's implementation: the same rules, the same
row, the same messages for the same mistakes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.server.db import rows
from tests.server.harness import ParleyServer, frames_of
from tests.server.rest_support import Caller, Callers, assert_error, callers, rest

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)


async def answered(caller: Caller) -> tuple[str, str]:
    """Run one turn; the ids of the user's message and of the assistant's answer."""
    tab = await caller.tab()
    frames = await tab.ask("hello", "m-1")
    await tab.close()
    return frames[0]["message_id"], frames_of(frames, "response")[0]["message_id"]


async def feedback_rows(server: ParleyServer, message_id: str) -> list[tuple[Any, ...]]:
    return await rows(
        server.config.database_url,
        "SELECT user_id, rating, comment FROM feedback WHERE message_id = :m",
        m=message_id,
    )


async def test_rating_an_answer_and_rating_it_again(rest: ParleyServer, callers: Callers) -> None:
    alice = callers.new()
    _, answer = await answered(alice)
    reply = await alice.post(f"/messages/{answer}/feedback", {"rating": 4, "comment": "useful"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["rating"] == "4"
    assert body["comment"] == "useful"
    assert body["message_id"] == answer
    assert await feedback_rows(rest, answer) == [(alice.user, "4", "useful")]

    again = await alice.post(f"/messages/{answer}/feedback", {"rating": "down"})
    assert again.json()["rating"] == "down"
    assert "comment" not in again.json()
    assert await feedback_rows(rest, answer) == [(alice.user, "down", None)]


async def test_socket_and_rest_share_one_implementation(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    _, answer = await answered(alice)
    tab = await alice.tab()
    await tab.send({"type": "feedback", "message_id": answer, "rating": "up"})
    await tab.send({"type": "ping", "t": 1})
    await tab.until("pong")
    assert await feedback_rows(rest, answer) == [(alice.user, "up", None)]

    # REST replaces the socket's rating: one row per user and message, whichever way it came.
    await alice.post(f"/messages/{answer}/feedback", {"rating": 2})
    assert await feedback_rows(rest, answer) == [(alice.user, "2", None)]

    # The same mistake is refused on both channels with the same code, naming the field.
    over_rest = await alice.post(f"/messages/{answer}/feedback", {"rating": 9})
    assert_error(over_rest, 422, "invalid_field", "rating")
    await tab.send({"type": "feedback", "message_id": answer, "rating": 9})
    error = await tab.expect("error")
    assert error["code"] == "invalid_field"
    assert "'rating'" in error["message"]
    long_comment = {"rating": 5, "comment": "x" * 2001}
    over_rest = await alice.post(f"/messages/{answer}/feedback", long_comment)
    assert_error(over_rest, 422, "invalid_field", "comment")
    await tab.send({"type": "feedback", "message_id": answer, **long_comment})
    error = await tab.expect("error")
    assert error["code"] == "invalid_field"
    assert "'comment'" in error["message"]
    await tab.close()
    assert await feedback_rows(rest, answer) == [(alice.user, "2", None)]


async def test_only_my_assistant_messages_can_be_rated(callers: Callers) -> None:
    alice = callers.new()
    bob = callers.new()
    mallory = callers.new(tenant="globex")
    question, answer = await answered(alice)
    # A user message is not an answer to rate.
    assert_error(
        await alice.post(f"/messages/{question}/feedback", {"rating": 5}), 404, "message_not_found"
    )
    for stranger in (bob, mallory):
        reply = await stranger.post(f"/messages/{answer}/feedback", {"rating": 1})
        assert_error(reply, 404, "message_not_found")
        missing = await stranger.post("/messages/m_missing/feedback", {"rating": 1})
        assert reply.json()["error"]["message"].replace(answer, "ID") == missing.json()["error"][
            "message"
        ].replace("m_missing", "ID")


async def test_bad_feedback_bodies_name_the_field(callers: Callers) -> None:
    alice = callers.new()
    _, answer = await answered(alice)
    path = f"/messages/{answer}/feedback"
    assert_error(await alice.post(path, {}), 422, "missing_field", "rating")
    assert_error(await alice.post(path, {"rating": True}), 422, "invalid_field", "rating")
    assert_error(await alice.post(path, {"rating": "meh"}), 422, "invalid_field", "rating")
    assert_error(await alice.post(path, {"rating": 0}), 422, "invalid_field", "rating")
    assert_error(
        await alice.post(path, {"rating": 3, "comment": 7}), 422, "invalid_field", "comment"
    )
    assert_error(await alice.post(path, {"rating": 3, "stars": 3}), 422, "invalid_field", "stars")
    assert_error(await callers.anonymous().post(path, json={"rating": 3}), 401, "unauthenticated")


async def test_ten_tabs_rating_one_answer_at_once_all_get_answers(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    _, answer = await answered(alice)
    tabs = [await alice.tab() for _ in range(10)]
    ratings = ["up", "down"] * 5
    frame = {"type": "feedback", "message_id": answer}
    await asyncio.gather(
        *(tab.send({**frame, "rating": rating}) for tab, rating in zip(tabs, ratings, strict=True))
    )
    # Each socket is still open and answers in order: no error came before its pong.
    for n, tab in enumerate(tabs):
        await tab.send({"type": "ping", "t": n})
        assert (await tab.expect("pong"))["t"] == n
    stored = await feedback_rows(rest, answer)
    assert len(stored) == 1
    assert stored[0][1] in {"up", "down"}

    replies = await asyncio.gather(
        *(alice.post(f"/messages/{answer}/feedback", {"rating": n % 5 + 1}) for n in range(30))
    )
    assert [reply.status_code for reply in replies] == [200] * 30
    assert len(await feedback_rows(rest, answer)) == 1
    for tab in tabs:
        await tab.close()
