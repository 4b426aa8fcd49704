"""/metrics on a real server: the values move when sockets open, turns run, tools are called,
actions are confirmed and limits refuse — and with PROMETHEUS_MULTIPROC_DIR, any process
reports the sum of all of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.harness import DevModel, ParleyServer, frames_of
from tests.server.rest_support import (
    Callers,
    Samples,
    callers,
    rest,
    scrape,
    start_server,
    value,
)

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def settle(server: ParleyServer, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until a gauge reaches ``expected`` (a closed socket is counted out a moment
    after the client saw the close)."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(server)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def test_metrics_move_when_a_turn_runs(rest: ParleyServer, callers: Callers) -> None:
    alice = callers.new()
    before = scrape(rest)
    open_before = value(before, "parley_connections_open")
    tab = await alice.tab()
    assert value(scrape(rest), "parley_connections_open") == open_before + 1
    frames = await tab.ask("hello there", "m-1")
    [response] = frames_of(frames, "response")
    deltas = len(frames_of(frames, "response_delta"))
    await tab.close()
    after = await settle(rest, "parley_connections_open", open_before)
    assert value(after, "parley_connections_open") == open_before

    received = "parley_frames_received_total"
    sent = "parley_frames_sent_total"
    assert moved(before, after, received, type="hello") == 1
    assert moved(before, after, received, type="user_message") == 1
    assert moved(before, after, sent, type="ready") == 1
    assert moved(before, after, sent, type="message") == 1
    assert moved(before, after, sent, type="response_delta") == deltas
    assert moved(before, after, sent, type="response") == 1
    assert moved(before, after, sent, type="turn_end") == 1
    assert moved(before, after, "parley_turns_total", status="completed") == 1
    assert moved(before, after, "parley_turn_duration_seconds_count") == 1
    assert moved(before, after, "parley_turn_first_token_seconds_count") == 1
    assert moved(before, after, "parley_turn_duration_seconds_sum") > 0
    usage = response["usage"]
    model = usage["model"]
    tokens = "parley_model_tokens_total"
    assert moved(before, after, tokens, model=model, kind="prompt") == usage["prompt_tokens"]
    assert (
        moved(before, after, tokens, model=model, kind="completion") == (usage["completion_tokens"])
    )
    cost = moved(before, after, "parley_model_cost_usd_total", model=model)
    assert cost == pytest.approx(usage["cost"], rel=1e-6, abs=1e-9)


async def test_tool_calls_and_confirmations_are_counted(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new(roles=("member",))
    before = scrape(rest)
    tab = await alice.tab()
    await tab.ask('[call count_letters] {"text": "abc"}', "m-1")
    await tab.ask("[call no_such_tool] {}", "m-2")
    await tab.ask("[call audit_digest] {}", "m-3")  # members may not use it
    for index, decision in enumerate(("approve", "reject")):
        text = f'[call send_memo] {{"text": "memo {index}"}}'
        await tab.send({"type": "user_message", "client_msg_id": f"a-{index}", "text": text})
        [*_, request] = await tab.until("confirm_request")
        await tab.send({"type": "confirm", "token": request["token"], "decision": decision})
        await tab.until("turn_end")
    await tab.close()
    after = scrape(rest)

    calls = "parley_tool_calls_total"
    assert moved(before, after, calls, tool="count_letters", outcome="ok") == 1
    assert moved(before, after, calls, tool="unknown", outcome="invalid") == 1
    assert moved(before, after, calls, tool="audit_digest", outcome="forbidden") == 1
    assert moved(before, after, calls, tool="send_memo", outcome="ok") == 1
    confirmations = "parley_confirmations_total"
    assert moved(before, after, confirmations, status="pending") == 2
    assert moved(before, after, confirmations, status="approved") == 1
    assert moved(before, after, confirmations, status="executed") == 1
    assert moved(before, after, confirmations, status="rejected") == 1


async def test_limit_refusals_and_bad_frames_are_counted(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    before = scrape(rest)
    tab = await alice.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "x" * 9000})
    assert (await tab.expect("error"))["code"] == "message_too_long"
    await tab.send({"type": "no_such_frame"})
    assert (await tab.expect("error"))["code"] == "unknown_type"
    await tab.close()
    after = scrape(rest)
    refusals = "parley_limit_refusals_total"
    assert moved(before, after, refusals, code="message_too_long") == 1
    assert moved(before, after, "parley_frames_received_total", type="invalid") == 1
    assert moved(before, after, "parley_frames_sent_total", type="error") == 2


async def test_rest_requests_are_counted(rest: ParleyServer, callers: Callers) -> None:
    alice = callers.new()
    before = scrape(rest)
    await alice.get("/conversations")
    await alice.get("/conversations/c_missing")
    after = scrape(rest)
    requests = "parley_http_requests_total"
    assert moved(before, after, requests, operation="list_conversations", status="200") == 1
    assert moved(before, after, requests, operation="get_conversation", status="404") == 1


# -- several processes -----------------------------------------------------------------------


@pytest.fixture
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, dev_model: DevModel
) -> Iterator[tuple[ParleyServer, ParleyServer]]:
    """Two worker processes sharing one PROMETHEUS_MULTIPROC_DIR, as under uvicorn --workers."""
    shared = tmp_path / "prometheus"
    for directory in (shared, tmp_path / "a", tmp_path / "b"):
        directory.mkdir()
    first = start_server(
        "embedded",
        request,
        tmp_path / "a",
        dev_model,
        process=True,
        PROMETHEUS_MULTIPROC_DIR=str(shared),
    )
    try:
        second = start_server(
            "embedded",
            request,
            tmp_path / "b",
            dev_model,
            process=True,
            PROMETHEUS_MULTIPROC_DIR=str(shared),
        )
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


@pytest.mark.slow
async def test_any_worker_reports_the_sum_of_all_workers(
    pair: tuple[ParleyServer, ParleyServer],
) -> None:
    first, second = pair
    made = Callers(first)
    try:
        tab = await made.new().tab()
        await tab.ask("hello", "m-1")
        # The turn ran in the first process; the second one reports it.
        samples = scrape(second)
        assert value(samples, "parley_turns_total", status="completed") == 1
        assert value(samples, "parley_connections_open") == 1
        assert value(samples, "parley_frames_received_total", type="user_message") == 1
        await tab.close()
        await settle(second, "parley_connections_open", 0)
        assert value(scrape(second), "parley_connections_open") == 0
        # A worker that shut down no longer counts in the live gauges; its counts stay.
        first.stop()
        samples = scrape(second)
        assert value(samples, "parley_turns_total", status="completed") == 1
    finally:
        await made.aclose()
