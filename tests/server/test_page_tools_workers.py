"""Page tools across workers: the turn runs on the worker that got the message, the tab with
the tool hangs on another one, and the call and its answer cross over the control channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer
from tests.server.page_tools_support import Page, answer_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def workers(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[list[ParleyServer]]:
    """Two worker processes on one Redis and one database."""
    config = real_backend.config(model)
    first = ParleyServer(tmp_path, config, process=True)
    second = ParleyServer(tmp_path, config, process=True)
    yield [first, second]
    for worker in (first, second):
        worker.stop()


def never_answers(arguments: dict[str, Any]) -> None:
    return None


async def test_a_tab_on_another_worker_runs_the_call(workers: list[ParleyServer]) -> None:
    first, second = workers
    token = first.token()
    runner = await Page.open(
        first,
        {"open_record": lambda arguments: {"result": f"Opened {arguments['id']} on worker one."}},
        token=token,
    )
    sender = await Page.open(second, {}, token=token)

    frames = await sender.ask("open PO-1003", "m-1")

    assert answer_of(frames) == "Opened PO-1003 on worker one."
    assert [call["arguments"] for call in runner.calls] == [{"id": "PO-1003"}]
    assert sender.calls == []
    await runner.close()
    await sender.close()


async def test_a_tab_closing_on_another_worker_ends_the_call(workers: list[ParleyServer]) -> None:
    first, second = workers
    token = first.token()
    runner = await Page.open(first, {"open_record": never_answers}, token=token)
    sender = await Page.open(second, {}, token=token)

    await sender.tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "open PO-1003"})
    await runner.wait_for(lambda frame: frame["type"] == "page_tool_call")
    await runner.close()
    response = await sender.wait_for(lambda frame: frame["type"] == "response")

    assert "the tab closed before it answered" in response["text"]
    await sender.close()
