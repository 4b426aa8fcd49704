"""A queued turn request's JSON form: what a worker writes, another (maybe newer) one reads."""

from __future__ import annotations

import orjson

from server.turns.turn_state import TurnRequest


def request() -> TurnRequest:
    return TurnRequest(
        tenant="acme",
        user="alice",
        roles=["admin"],
        conversation_id="c_1",
        user_message_id="m_1",
        client_msg_id="cm-1",
        connection_id="k_1",
    )


def test_a_request_survives_the_round_trip_with_the_tab_that_sent_it() -> None:
    assert TurnRequest.loads(request().dumps()) == request()


def test_keys_a_newer_worker_added_are_left_out() -> None:
    newer = {**orjson.loads(request().dumps()), "added_later": True}
    assert TurnRequest.loads(orjson.dumps(newer).decode()) == request()
