"""Which tool lines of stored answers a rebuilding tab's snapshot carries: the newest ones,
the newest of those with their view, and none that no longer read."""

from __future__ import annotations

from typing import Any

from protocol import MetricItem, MetricsView, ToolLine, ToolResult, ValueType
from server.stream.tool_lines import SHOWN_KEY, shown_entry, tool_lines
from storage.models import Message

VIEW = MetricsView(
    title="Cash",
    items=(MetricItem(label="Cash", value="10.00", type=ValueType.MONEY, currency="USD"),),
)


def shown(call_id: str, *, view: bool = True, export: bool = False) -> ToolResult:
    return ToolResult(
        conversation_id="c-1",
        turn_id=f"turn-{call_id}",
        call_id=call_id,
        name="cash_balance",
        ok=True,
        summary=f"result of {call_id}",
        view=VIEW if view else None,
        export=f"/api/v1/exports/{call_id}.csv" if export else None,
    )


def answer(message_id: str, *frames: ToolResult, rounds: int = 1) -> Message:
    """An assistant message whose calls are spread over ``rounds`` tool rounds."""
    results: list[list[dict[str, Any]]] = [[] for _ in range(rounds)]
    for index, frame in enumerate(frames):
        results[index % rounds].append(
            {
                "tool_call_id": frame.call_id,
                "name": frame.name,
                "content": "{}",
                SHOWN_KEY: shown_entry(frame),
            }
        )
    return Message(
        id=message_id,
        conversation_id="c-1",
        tenant="t",
        user_id="u",
        role="assistant",
        tool_rounds=[{"text": "", "calls": [], "results": part} for part in results],
    )


def line(call_id: str, *, view: bool = True, export: bool = False) -> ToolLine:
    frame = shown(call_id, view=view, export=export)
    return ToolLine(
        call_id=call_id,
        name=frame.name,
        ok=True,
        summary=frame.summary,
        view=frame.view,
        export=frame.export,
    )


def test_every_shown_call_becomes_a_line_of_its_answer_in_order() -> None:
    messages = [
        answer("m-1", shown("a", export=True), shown("b", view=False), rounds=2),
        Message(id="m-2", conversation_id="c-1", tenant="t", user_id="u", role="user"),
        # A call whose result was never shown (an action's card) has no line.
        Message(
            id="m-3",
            conversation_id="c-1",
            tenant="t",
            user_id="u",
            role="assistant",
            tool_rounds=[{"text": "", "calls": [], "results": [{"tool_call_id": "x"}]}],
        ),
    ]

    found = tool_lines(messages, max_lines=10, max_views=10)

    assert found == {"m-1": (line("a", export=True), line("b", view=False))}


def test_the_newest_lines_are_kept_and_only_the_newest_views() -> None:
    messages = [
        answer("m-1", shown("a"), shown("b")),
        answer("m-2", shown("c"), shown("d", view=False)),
        answer("m-3", shown("e", export=True)),
    ]

    found = tool_lines(messages, max_lines=4, max_views=2)

    assert found == {
        "m-1": (line("b", view=False),),
        "m-2": (line("c"), line("d", view=False)),
        "m-3": (line("e", export=True),),
    }


def test_zero_turns_a_limit_off() -> None:
    messages = [answer("m-1", shown("a"), shown("b")), answer("m-2", shown("c"))]

    found = tool_lines(messages, max_lines=0, max_views=0)

    assert found == {"m-1": (line("a"), line("b")), "m-2": (line("c"),)}


def test_a_stored_line_that_no_longer_reads_is_left_out() -> None:
    broken = answer("m-1", shown("a"), shown("b"))
    assert broken.tool_rounds is not None
    del broken.tool_rounds[0]["results"][0][SHOWN_KEY]["view"]["items"]

    found = tool_lines([broken], max_lines=10, max_views=10)

    assert found == {"m-1": (line("b"),)}
