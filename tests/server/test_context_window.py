"""The window sent to the model: system prompt first, newest exchanges kept within the budget,
tool calls never separated from their results."""

from __future__ import annotations

import orjson

from server.turns.context_window import build_window, transcript_to_chat
from server.turns.token_counting import TokenCounter
from storage.models import Message

COUNTER = TokenCounter("gpt-4o-mini")


def user(text: str) -> Message:
    return Message(conversation_id="c", tenant="t", user_id="u", role="user", text=text)


def assistant(text: str, rounds: list[dict[str, object]] | None = None) -> Message:
    return Message(
        conversation_id="c",
        tenant="t",
        user_id="u",
        role="assistant",
        text=text,
        tool_rounds=rounds,
    )


def tool_round(text: str, call_id: str) -> dict[str, object]:
    return {
        "text": text,
        "calls": [
            {"id": call_id, "type": "function", "function": {"name": "cash", "arguments": "{}"}}
        ],
        "results": [{"tool_call_id": call_id, "name": "cash", "content": '{"total": "1.00"}'}],
    }


def test_a_reply_with_tools_expands_into_its_rounds() -> None:
    message = assistant("Let me look. The total is 1.00.", [tool_round("Let me look. ", "call_1")])
    assert transcript_to_chat(message) == [
        {
            "role": "assistant",
            "content": "Let me look. ",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "cash", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"total": "1.00"}'},
        {"role": "assistant", "content": "The total is 1.00."},
    ]


def test_everything_fits_in_a_large_budget() -> None:
    history = [user("hello"), assistant("hi!"), user("how are you?")]
    window = build_window(
        system_prompt="be brief", history=history, counter=COUNTER, budget_tokens=10_000
    )
    assert window == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi!"},
        {"role": "user", "content": "how are you?"},
    ]


def test_a_small_budget_keeps_the_system_prompt_and_the_newest_messages() -> None:
    history = []
    for index in range(40):
        history += [user(f"question {index} " + "words " * 30), assistant(f"answer {index}")]
    history.append(user("the last question"))
    window = build_window(
        system_prompt="be brief", history=history, counter=COUNTER, budget_tokens=300
    )
    assert window[0] == {"role": "system", "content": "be brief"}
    assert window[-1] == {"role": "user", "content": "the last question"}
    assert 2 < len(window) < len(history)
    assert COUNTER.count_messages(window) <= 300
    # What is kept is a contiguous run of the newest messages.
    kept = [message["content"] for message in window[1:]]
    expected = [message.text for message in history[-len(kept) :]]
    assert kept == expected


def test_tool_calls_and_results_are_kept_or_dropped_together() -> None:
    big = '{"rows": "' + "x" * 2000 + '"}'
    rounds = [tool_round("", "call_1")]
    rounds[0]["results"] = [{"tool_call_id": "call_1", "name": "cash", "content": big}]
    history = [user("old question"), assistant("old answer", rounds), user("new question")]
    window = build_window(system_prompt="s", history=history, counter=COUNTER, budget_tokens=200)
    roles = [message["role"] for message in window]
    assert "tool" not in roles
    assert window[-1]["content"] == "new question"


def test_streaming_messages_and_host_context() -> None:
    in_flight = assistant("partial")
    in_flight.status = "streaming"
    window = build_window(
        system_prompt="s",
        history=[user("hello"), in_flight],
        counter=COUNTER,
        budget_tokens=1_000,
        context={"record": "PO-1001"},
    )
    assert [message["role"] for message in window] == ["system", "system", "user"]
    assert orjson.loads(window[1]["content"].split(": ", 1)[1]) == {"record": "PO-1001"}
