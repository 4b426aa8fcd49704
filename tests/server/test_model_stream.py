"""Reading the model's stream: the SSE decoder and the reply builder fed bytes, then the real
``ModelClient`` reading the scripted dev model (in-process, the real ``openai`` client and
transport) with its faults, and a small ASGI peer that sends what no good endpoint does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from protocol import ErrorCode
from server.config import Settings
from server.devllm.app import create_devllm_app
from server.devllm.faults import parse_fault_rules
from server.devllm.transport import in_process_client
from server.errors import ModelError
from server.turns.llm import ModelClient, ModelReply
from server.turns.model_stream import (
    MalformedStream,
    ReplyBuilder,
    SseDecoder,
    StreamReportedError,
)

pytestmark = pytest.mark.timeout(60)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    payload = {"id": "c", "object": "chat.completion.chunk", "choices": choices, **extra}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def decode_all(pieces: Iterable[bytes]) -> list[tuple[bytes | None, bytes]]:
    decoder = SseDecoder()
    return [event for piece in pieces for event in decoder.feed(piece)]


# -- the SSE decoder -------------------------------------------------------------------------

BODY = (
    b": keep-alive comment\n\n"
    + chunk({"role": "assistant", "content": ""})
    + b'data: {"a":\r\ndata: 1}\r\n\r\n'  # two data lines, CRLF endings
    + b'id: 7\nevent: error\ndata: {"error": {"message": "boom"}}\n\n'
    + b"data:[DONE]\n\n"
)
EVENTS = [
    (
        None,
        orjson.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        ),
    ),
    (None, b'{"a":\n1}'),
    (b"error", b'{"error": {"message": "boom"}}'),
    (None, b"[DONE]"),
]


def test_sse_events_are_the_same_however_the_body_is_cut() -> None:
    assert decode_all([BODY]) == EVENTS
    for cut in range(1, len(BODY)):
        assert decode_all([BODY[:cut], BODY[cut:]]) == EVENTS, cut
    assert decode_all(BODY[i : i + 1] for i in range(len(BODY))) == EVENTS


def test_an_event_the_body_ends_inside_is_not_read() -> None:
    assert decode_all([b'data: {"a": 1}\n']) == []
    assert decode_all([b'data: {"a": 1}']) == []


# -- the reply builder -----------------------------------------------------------------------


def build(body: bytes) -> tuple[ReplyBuilder, list[str]]:
    builder = ReplyBuilder()
    texts = [text for event in decode_all([body]) if (text := builder.take(*event)) is not None]
    return builder, texts


def test_text_tool_calls_finish_and_usage_are_gathered() -> None:
    body = (
        chunk({"role": "assistant", "content": ""})
        + chunk({"content": "Hel"})
        + chunk({"content": "lo"})
        + chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "look"}}]})
        + chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "find"}}]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]})
        + chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "x"}'}}]})
        + chunk({}, "tool_calls")
        + b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}\n\n'
        + b"data: [DONE]\n\n"
        + chunk({"content": "after done"})
    )
    builder, texts = build(body)
    reply = builder.finish()
    assert texts == ["Hel", "lo"]
    assert reply.text == "Hello"
    assert [call.wire() for call in reply.tool_calls] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "look", "arguments": '{"q": "x"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "find", "arguments": "{}"}},
    ]
    assert reply.finish_reason == "tool_calls"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (9, 4)
    assert not reply.usage.estimated
    assert builder.done


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"choices": [{"delta": {"content": "cut', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"choices": {"delta": {}}}', "choices are not a list"),
        (b'{"choices": ["text"]}', "choices are not a list"),
        (b'{"choices": [{"delta": "hi"}]}', "delta is not an object"),
        (b'{"choices": [{"delta": {"content": 5}}]}', "content is not text"),
        (b'{"choices": [{"delta": {"tool_calls": {"index": 0}}}]}', "tool_calls is not a list"),
        (b'{"choices": [{"delta": {"tool_calls": [{"id": "x"}]}}]}', "bad index None"),
        (b'{"choices": [{"delta": {"tool_calls": [{"index": 99999}]}}]}', "bad index 99999"),
        (b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "id": 7}]}}]}', "id is not text"),
        (
            b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": []}]}}]}',
            "function is not an object",
        ),
        (b'{"choices": [{"delta": {}, "finish_reason": 1}]}', "finish_reason is not text"),
        (b'{"choices": [], "usage": [1]}', "usage is not an object"),
        (b'{"choices": [], "usage": {"prompt_tokens": "9"}}', "counts are not integers"),
    ],
)
def test_a_malformed_chunk_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedStream, match=reason):
        ReplyBuilder().take(None, data)


def test_an_error_object_in_the_stream_is_reported_with_its_message() -> None:
    with pytest.raises(StreamReportedError, match="overloaded"):
        ReplyBuilder().take(None, b'{"error": {"message": "overloaded"}}')
    with pytest.raises(StreamReportedError, match="an error occurred"):
        ReplyBuilder().take(b"error", b'{"detail": "x"}')


# -- ModelClient against the dev model -------------------------------------------------------


def settings(**overrides: Any) -> Settings:
    return Settings(**{"model_max_attempts": 3, **overrides})


def dev_client(app: Any, *keys: str, **overrides: Any) -> ModelClient:
    clients = [in_process_client(app, api_key=key) for key in keys or ("sk-dev",)]
    return ModelClient(settings(**overrides), clients)


def said(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def collect(
    model: ModelClient, prompt: str, tools: list[dict[str, Any]] | None = None
) -> tuple[ModelReply, list[str]]:
    pieces: list[str] = []

    async def on_text(text: str) -> None:
        pieces.append(text)

    reply = await model.stream(said(prompt), tools or [], on_text)
    return reply, pieces


async def test_text_usage_and_tool_calls_from_the_dev_model() -> None:
    model = dev_client(create_devllm_app(token_rate=0))
    reply, pieces = await collect(model, "[say] one,  two\n\nthree ")
    assert reply.text == "one,  two\n\nthree "
    assert "".join(pieces) == reply.text
    assert len(pieces) > 3  # streamed in pieces, each passed on as it came
    assert reply.finish_reason == "stop"
    assert reply.usage is not None
    assert not reply.usage.estimated
    assert reply.usage.completion_tokens > 0

    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    reply, pieces = await collect(model, '[call lookup] {"order": "SO-1042", "n": 3}', [tool])
    assert pieces == []
    assert reply.finish_reason == "tool_calls"
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call.name == "lookup"
    assert call.id
    assert orjson.loads(call.arguments) == {"order": "SO-1042", "n": 3}


async def test_without_a_usage_chunk_usage_is_counted_locally() -> None:
    app = create_devllm_app(token_rate=0)
    app.state.devllm.set_faults(parse_fault_rules([{"fault": "no_usage"}]))
    reply, _ = await collect(dev_client(app), "[say] counted here")
    assert reply.usage is not None
    assert reply.usage.estimated
    assert reply.usage.completion_tokens > 0


async def test_a_rate_limited_key_rests_and_the_next_one_answers() -> None:
    app = create_devllm_app(token_rate=0)
    rule = {"fault": "rate_limit", "retry_after": 30, "api_keys": ["sk-first"]}
    app.state.devllm.set_faults(parse_fault_rules([rule]))
    model = dev_client(app, "sk-first", "sk-second")
    reply, _ = await collect(model, "[say] from the second key")
    assert reply.text == "from the second key"
    # The first key rests for its Retry-After: the next call goes straight to the second.
    reply, _ = await collect(model, "[say] again")
    assert reply.text == "again"
    assert len(app.state.devllm.requests()) == 3


async def test_every_key_rate_limited_is_a_retryable_error_with_retry_after() -> None:
    app = create_devllm_app(token_rate=0)
    app.state.devllm.set_faults(parse_fault_rules([{"fault": "rate_limit", "retry_after": 45}]))
    with pytest.raises(ModelError) as caught:
        await collect(dev_client(app, "sk-a", "sk-b"), "[say] no")
    assert caught.value.code == ErrorCode.MODEL_RATE_LIMITED
    assert caught.value.retryable
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 40


async def test_a_server_error_is_retried_then_reported() -> None:
    app = create_devllm_app(token_rate=0)
    app.state.devllm.set_faults(parse_fault_rules([{"fault": "server_error", "times": 1}]))
    reply, _ = await collect(dev_client(app), "[say] second try")
    assert reply.text == "second try"

    app.state.devllm.set_faults(parse_fault_rules([{"fault": "server_error"}]))
    with pytest.raises(ModelError) as caught:
        await collect(dev_client(app, model_max_attempts=1), "[say] no")
    assert caught.value.code == ErrorCode.MODEL_UNAVAILABLE
    assert "HTTP 500" in caught.value.message
    assert caught.value.retryable


async def test_a_stream_dropped_mid_reply_is_interrupted_and_not_retried() -> None:
    app = create_devllm_app(token_rate=0)
    model = dev_client(app)
    with pytest.raises(ModelError) as caught:
        await collect(model, "[fault:drop_stream=3] [say] one two three four five six")
    assert caught.value.code == ErrorCode.STREAM_INTERRUPTED
    assert "broke off" in caught.value.message
    assert len(app.state.devllm.requests()) == 1  # text had gone out: no second attempt


async def test_silence_longer_than_the_idle_timeout_fails_the_call() -> None:
    app = create_devllm_app(token_rate=0)
    model = dev_client(app, model_stream_idle_timeout_s=0.3, model_max_attempts=1)
    with pytest.raises(ModelError) as caught:
        await collect(model, "[fault:slow_first_token=5] [say] late")
    assert caught.value.code == ErrorCode.MODEL_TIMEOUT
    assert "0.3 s" in caught.value.message


async def test_slow_handling_of_text_is_not_silence() -> None:
    """Parley's own work on a piece (logging it) does not count against the idle timeout."""
    model = dev_client(create_devllm_app(token_rate=0), model_stream_idle_timeout_s=0.2)
    pieces: list[str] = []

    async def slow_sink(text: str) -> None:
        pieces.append(text)
        if len(pieces) == 1:
            await asyncio.sleep(0.5)

    reply = await model.stream(said("[say] a b c"), [], slow_sink)
    assert reply.text == "a b c"


# -- a peer that breaks the format -----------------------------------------------------------


def sse_app(*events: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def test_a_malformed_chunk_is_a_model_error_never_a_crash() -> None:
    app = sse_app(chunk({"content": "fine"}), b"data: {not json\n\n")
    with pytest.raises(ModelError) as caught:
        await collect(dev_client(app, model_max_attempts=1), "hi")
    assert caught.value.code == ErrorCode.STREAM_INTERRUPTED
    assert caught.value.message.startswith("the model stream was malformed: a chunk is not JSON")


async def test_an_error_event_mid_stream_is_a_model_error() -> None:
    app = sse_app(b'data: {"error": {"message": "model overloaded"}}\n\n')
    with pytest.raises(ModelError) as caught:
        await collect(dev_client(app, model_max_attempts=1), "hi")
    assert caught.value.code == ErrorCode.STREAM_INTERRUPTED
    assert "model overloaded" in caught.value.message


async def test_a_stream_that_ends_with_nothing_is_interrupted() -> None:
    with pytest.raises(ModelError) as caught:
        await collect(dev_client(sse_app(b"data: [DONE]\n\n"), model_max_attempts=1), "hi")
    assert caught.value.code == ErrorCode.STREAM_INTERRUPTED
    assert "without a reply" in caught.value.message
