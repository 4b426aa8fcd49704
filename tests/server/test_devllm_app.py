"""The dev model through the real ``openai`` SDK: in-process and over HTTP from uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
import uvicorn
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from starlette.applications import Starlette

from server.devllm.app import create_devllm_app
from server.devllm.faults import parse_fault_rules
from server.devllm.transport import StreamingASGITransport, in_process_client

# tiktoken reads this when the first count loads the encoding, after this module is imported.
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "tiktoken")
)

TOOL_NAMES = (
    "cash_balance",
    "ar_aging",
    "ap_aging",
    "list_purchase_orders",
    "pending_approvals",
    "stock_levels",
    "dashboard_summary",
    "approve_purchase_order",
    "reject_purchase_order",
    "create_customer",
    "create_sales_order",
)


def tool(name: str) -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": {}},
        },
    }


ALL_TOOLS = [tool(name) for name in TOOL_NAMES]


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# -- peers: the same app in-process and behind a real socket ---------------------------------------


@dataclass
class Peer:
    """A running dev model and the means to talk to it."""

    kind: str
    app: Starlette
    base_url: str
    control: httpx.AsyncClient
    clients: list[openai.AsyncOpenAI] = field(default_factory=list)

    def client(self, api_key: str = "sk-test-default") -> openai.AsyncOpenAI:
        if self.kind == "in_process":
            client = in_process_client(self.app, base_url=self.base_url, api_key=api_key)
        else:
            client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0)
        self.clients.append(client)
        return client

    async def set_faults(self, rules: list[dict[str, Any]]) -> None:
        response = await self.control.post("/_dev/faults", json=rules)
        assert response.status_code == 200, response.text


@dataclass
class ServedApp:
    app: Starlette
    root_url: str


@pytest.fixture(scope="module")
def served_app() -> Iterator[ServedApp]:
    """A dev model app behind uvicorn on a free loopback port, for the whole module."""
    app = create_devllm_app(token_rate=0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield ServedApp(app, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=20)
    sock.close()


@pytest.fixture(params=["in_process", "http"])
async def peer(request: pytest.FixtureRequest, served_app: ServedApp) -> AsyncIterator[Peer]:
    if request.param == "in_process":
        app = create_devllm_app(token_rate=0)
        control = httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://devllm")
        found = Peer("in_process", app, "http://devllm/v1", control)
    else:
        control = httpx.AsyncClient(base_url=served_app.root_url)
        found = Peer("http", served_app.app, f"{served_app.root_url}/v1", control)
        # The served app lives for the module: start every test from a clean slate.
        await control.delete("/_dev/faults")
        await control.delete("/_dev/requests")
    yield found
    for client in found.clients:
        await client.close()
    await control.aclose()


async def stream_text(stream: Any) -> tuple[str, list[Any]]:
    chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    return text, chunks


def function_calls(completion: ChatCompletion) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = completion.choices[0].message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in calls)
    return cast(list[ChatCompletionMessageFunctionToolCall], calls)


async def read_into(stream: Any, received: list[Any]) -> None:
    """Read a stream chunk by chunk, keeping what arrived even if it then fails."""
    async for chunk in stream:
        received.append(chunk)


# -- streaming and non-streaming agree -------------------------------------------------------------


async def test_streamed_text_equals_the_non_streamed_text(peer: Peer) -> None:
    client = peer.client()
    for prompt in ("hello", "what can you do?", "[say] one,  two\n\nthree "):
        completion = await client.chat.completions.create(model="gpt-4o", messages=user(prompt))
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=user(prompt), stream=True
        )
        text, chunks = await stream_text(stream)
        assert completion.choices[0].message.content == text
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == "gpt-4o"  # the requested model is echoed
        assert len(chunks) > 3
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert text == "one,  two\n\nthree "


async def test_tool_call_arguments_arrive_in_pieces_and_parse(peer: Peer) -> None:
    client = peer.client()
    prompt = "create a sales order for Acme: 100 units of Widget at 50"
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=user(prompt), tools=ALL_TOOLS, stream=True
    )
    _, chunks = await stream_text(stream)
    pieces: list[str] = []
    ids: list[str] = []
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            if call.id:
                ids.append(call.id)
                assert call.function.name == "create_sales_order"
            if call.function.arguments:
                pieces.append(call.function.arguments)
    assert len(ids) == 1
    assert ids[0].startswith("call_")
    assert len(pieces) > 3
    assert json.loads("".join(pieces)) == {
        "customer": "Acme",
        "lines": [{"item": "Widget", "quantity": "100", "unit_price": "50"}],
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    completion = await client.chat.completions.create(
        model="gpt-4o", messages=user(prompt), tools=ALL_TOOLS
    )
    [call] = function_calls(completion)
    assert call.type == "function"
    assert json.loads(call.function.arguments) == json.loads("".join(pieces))
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_several_tool_calls_in_one_streamed_reply(peer: Peer) -> None:
    stream = await peer.client().chat.completions.create(
        model="m", messages=user("dashboard and cash balance"), tools=ALL_TOOLS, stream=True
    )
    _, chunks = await stream_text(stream)
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function.name:
                names[call.index] = call.function.name
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    assert sorted(names.values()) == ["cash_balance", "dashboard_summary"]
    assert all(json.loads(text) == {} for text in arguments.values())


async def test_usage_chunk_when_asked_and_not_with_no_usage(peer: Peer) -> None:
    client = peer.client()

    async def usage_chunks(prompt: str, include_usage: bool) -> list[Any]:
        stream = await client.chat.completions.create(
            model="m",
            messages=user(prompt),
            stream=True,
            stream_options={"include_usage": include_usage},
        )
        _, chunks = await stream_text(stream)
        return [chunk for chunk in chunks if chunk.usage is not None]

    [last] = await usage_chunks("hello", True)
    assert last.choices == []
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert await usage_chunks("hello", False) == []
    assert await usage_chunks("[fault:no_usage] hello", True) == []
    await peer.set_faults([{"fault": "no_usage"}])
    assert await usage_chunks("hello", True) == []


async def test_usage_counts_tokens(peer: Peer) -> None:
    completion = await peer.client().chat.completions.create(
        model="m", messages=user("[say] hello world")
    )
    assert completion.usage is not None
    # o200k_base: "hello world" is two tokens; the prompt adds message framing.
    assert completion.usage.completion_tokens == 2
    assert completion.usage.prompt_tokens > completion.usage.completion_tokens


# -- errors and faults -----------------------------------------------------------------------------


async def test_missing_messages_is_an_openai_shaped_400(peer: Peer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await peer.client().chat.completions.create(model="m", messages=[])
    assert caught.value.code == "empty_array"
    response = await peer.control.post("/v1/chat/completions", json={"model": "m"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }
    assert response.headers["x-parley-dev-model"] == "scripted"
    broken = await peer.control.post("/v1/chat/completions", content=b"{nope")
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_request_error"


async def test_rate_limit_with_retry_after_only_for_listed_keys(peer: Peer) -> None:
    await peer.set_faults(
        [{"fault": "rate_limit", "retry_after": 7, "api_keys": ["sk-limited-key"], "times": 2}]
    )
    limited = peer.client("sk-limited-key")
    other = peer.client("sk-other-key")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await limited.chat.completions.create(model="m", messages=user("hello"))
        assert caught.value.response.headers["retry-after"] == "7"
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.response.headers["x-parley-dev-model"] == "scripted"
        reply = await other.chat.completions.create(model="m", messages=user("hello"))
        assert reply.choices[0].message.content
    # Two times, then the rule is spent.
    reply = await limited.chat.completions.create(model="m", messages=user("hello"))
    assert reply.choices[0].message.content
    faults = (await peer.control.get("/_dev/faults")).json()["faults"]
    assert faults == [
        {"fault": "rate_limit", "retry_after": 7.0, "api_keys": ["sk-limited-key"], "times": 0}
    ]


async def test_rate_limit_marker_applies_to_any_key(peer: Peer) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await peer.client().chat.completions.create(
            model="m", messages=user("[fault:rate_limit=2.5] hi"), stream=True
        )
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["retry-after-ms"] == "2500"


async def test_server_error_is_an_internal_server_error(peer: Peer) -> None:
    await peer.set_faults([{"fault": "server_error", "times": 1}])
    client = peer.client()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=user("hello"), stream=True)
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=user("[fault:server_error] hi"))
    assert (await client.chat.completions.create(model="m", messages=user("hi"))).choices


async def test_dropped_stream_raises_mid_iteration(peer: Peer) -> None:
    client = peer.client()
    stream = await client.chat.completions.create(
        model="m",
        messages=user("[fault:drop_stream=3] [say] one two three four five six seven"),
        stream=True,
    )
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        await read_into(stream, received)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in received) == "one two three"

    # The same through the control endpoint, cutting a tool call's arguments short.
    await peer.set_faults([{"fault": "drop_stream", "after_chunks": 2, "times": 1}])
    stream = await client.chat.completions.create(
        model="m", messages=user("approve PO-1001"), tools=ALL_TOOLS, stream=True
    )
    received.clear()
    with pytest.raises(openai.APIConnectionError):
        await read_into(stream, received)
    pieces = [
        call.function.arguments or ""
        for chunk in received
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    assert 0 < len("".join(pieces)) < len('{"po_number":"PO-1001"}')

    # A non-streamed response breaks off too.
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=user("[fault:drop_stream] hi"))


async def test_slow_first_token(peer: Peer) -> None:
    # A read timeout shorter than the delay fires while waiting for the first chunk...
    impatient = peer.client().with_options(timeout=openai.Timeout(30, read=0.5))
    stream = await impatient.chat.completions.create(
        model="m", messages=user("[fault:slow_first_token=60] hello"), stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        async for _ in stream:
            pass
    await stream.close()
    # ...and a delay the client waits out delays the first chunk, then the stream completes.
    await peer.set_faults([{"fault": "slow_first_token", "delay_s": 0.3}])
    started = time.monotonic()
    stream = await peer.client().chat.completions.create(
        model="m", messages=user("hello"), stream=True
    )
    first_chunk_after = None
    text = ""
    async for chunk in stream:
        first_chunk_after = first_chunk_after or time.monotonic() - started
        text += chunk.choices[0].delta.content or ""
    assert first_chunk_after is not None
    assert first_chunk_after >= 0.25
    assert "scripted development model" in text


async def test_token_rate_paces_the_stream_between_chunks(peer: Peer) -> None:
    await peer.set_faults([{"fault": "token_rate", "rate": 20}])
    started = time.monotonic()
    stream = await peer.client().chat.completions.create(
        model="m", messages=user("[say] a b c d e f g"), stream=True
    )
    text, _ = await stream_text(stream)
    assert text == "a b c d e f g"
    # Seven tokens at 20/s: the last comes at least 6/20 s after the first.
    assert time.monotonic() - started >= 0.25


# -- the script through the SDK --------------------------------------------------------------------

ERP_PROMPTS = [
    ("what's our cash balance?", "cash_balance", {}),
    ("show overdue purchase orders", "list_purchase_orders", {"overdue": True}),
    (
        "show purchase orders from Acme Supplies",
        "list_purchase_orders",
        {"supplier": "Acme Supplies"},
    ),
    ("pending approvals", "pending_approvals", {}),
    ("ar aging", "ar_aging", {}),
    ("ap aging", "ap_aging", {}),
    ("stock below reorder", "stock_levels", {"below_reorder": True}),
    ("dashboard", "dashboard_summary", {}),
    ("approve po 1001", "approve_purchase_order", {"po_number": "PO-1001"}),
    (
        "reject PO-1003 because it is a duplicate",
        "reject_purchase_order",
        {"po_number": "PO-1003", "reason": "it is a duplicate"},
    ),
    ("create customer Initech", "create_customer", {"name": "Initech"}),
]


@pytest.mark.parametrize(("prompt", "tool_name", "arguments"), ERP_PROMPTS)
async def test_erp_prompts_call_offered_tools_and_explain_hidden_ones(
    peer: Peer, prompt: str, tool_name: str, arguments: dict[str, Any]
) -> None:
    client = peer.client()
    offered = await client.chat.completions.create(
        model="m", messages=user(prompt), tools=ALL_TOOLS
    )
    calls = function_calls(offered)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (tool_name, arguments)
    ]
    hidden_tools = [t for t in ALL_TOOLS if t["function"]["name"] != tool_name]
    hidden = await client.chat.completions.create(
        model="m", messages=user(prompt), tools=hidden_tools
    )
    assert hidden.choices[0].message.tool_calls is None
    assert hidden.choices[0].finish_reason == "stop"
    assert f"no {tool_name} tool is available" in (hidden.choices[0].message.content or "")


async def test_forced_bad_call_ignores_the_offered_tools(peer: Peer) -> None:
    completion = await peer.client().chat.completions.create(
        model="m", messages=user("[call delete_everything] {oops")
    )
    [call] = function_calls(completion)
    assert (call.function.name, call.function.arguments) == ("delete_everything", "{oops")


async def test_after_a_tool_result_the_model_answers_with_text(peer: Peer) -> None:
    client = peer.client()
    first = await client.chat.completions.create(
        model="m", messages=user("what's our cash balance?"), tools=ALL_TOOLS
    )
    [call] = function_calls(first)
    result = {
        "accounts": [
            {"name": "Operating", "balance": "1200.00", "currency": "USD"},
            {"name": "Reserve", "balance": "300.00", "currency": "USD"},
        ],
        "total": "1500.00",
        "currency": "USD",
    }
    assistant = cast(
        ChatCompletionMessageParam, first.choices[0].message.model_dump(exclude_none=True)
    )
    messages: list[ChatCompletionMessageParam] = [
        *user("what's our cash balance?"),
        assistant,
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
    ]
    stream = await client.chat.completions.create(
        model="m", messages=messages, tools=ALL_TOOLS, stream=True
    )
    text, chunks = await stream_text(stream)
    assert text == (
        "You have **$1,500.00** in cash across 2 bank accounts.\n\n"
        "| Account | Bank | Balance |\n"
        "| --- | --- | ---: |\n"
        "| Operating |  | $1,200.00 |\n"
        "| Reserve |  | $300.00 |"
    )
    assert chunks[-1].choices[0].finish_reason == "stop"

    messages[-1] = {
        "role": "tool",
        "tool_call_id": call.id,
        "content": json.dumps({"error": "the bank feed is offline"}),
    }
    failed = await client.chat.completions.create(model="m", messages=messages, tools=ALL_TOOLS)
    assert failed.choices[0].message.content == (
        "Sorry, cash balance didn't go through: the bank feed is offline."
    )


# -- models, headers and the request log ---------------------------------------------------------


async def test_models_and_the_dev_model_header(peer: Peer) -> None:
    client = peer.client()
    models = await client.models.list()
    assert [model.id for model in models.data] == ["parley-dev"]
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=user("hi"))
    assert raw.headers["x-parley-dev-model"] == "scripted"
    missing = await peer.control.get("/nowhere")
    assert missing.status_code == 404
    assert missing.headers["x-parley-dev-model"] == "scripted"
    assert missing.json()["error"]["type"] == "invalid_request_error"


async def test_request_log_shows_bodies_and_key_labels_only(peer: Peer) -> None:
    secret = "sk-very-secret-key-9876"
    await peer.client(secret).chat.completions.create(model="m", messages=user("hello"))
    await peer.client("sk-another-key-1234").chat.completions.create(
        model="m", messages=user("dashboard"), tools=ALL_TOOLS
    )
    response = await peer.control.get("/_dev/requests")
    assert secret not in response.text
    logged = response.json()["requests"]
    assert [entry["key"] for entry in logged] == ["…9876", "…1234"]
    assert logged[0]["body"]["messages"] == user("hello")
    assert logged[1]["body"]["tools"] == ALL_TOOLS
    latest = (await peer.control.get("/_dev/requests", params={"limit": 1})).json()["requests"]
    assert [entry["key"] for entry in latest] == ["…1234"]
    await peer.control.delete("/_dev/requests")
    assert (await peer.control.get("/_dev/requests")).json() == {"requests": []}


async def test_fault_endpoint_refuses_bad_rules(peer: Peer) -> None:
    response = await peer.control.post("/_dev/faults", json=[{"fault": "meteor"}])
    assert response.status_code == 400
    assert "unknown fault 'meteor'" in response.json()["error"]["message"]
    await peer.set_faults([{"fault": "no_usage"}])
    cleared = await peer.control.delete("/_dev/faults")
    assert cleared.json() == {"faults": []}


# -- in-process only -----------------------------------------------------------------------------


async def test_state_is_reachable_in_process() -> None:
    app = create_devllm_app(token_rate=0, request_log_size=3)
    state = app.state.devllm
    client = in_process_client(app)
    try:
        for index in range(5):
            await client.chat.completions.create(model="m", messages=user(f"[say] {index}"))
        assert [entry.body["messages"][0]["content"] for entry in state.requests()] == [
            "[say] 2",
            "[say] 3",
            "[say] 4",
        ]
        state.set_faults(parse_fault_rules([{"fault": "server_error"}]))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=user("hi"))
        state.clear_faults()
        await client.chat.completions.create(model="m", messages=user("hi"))
    finally:
        await client.close()


async def test_in_process_streaming_really_streams() -> None:
    """The first chunk reaches the reader while the app is still held before the rest."""
    app = create_devllm_app(token_rate=0)
    events: list[str] = []
    first_received = asyncio.Event()

    async def held_back(scope: Any, receive: Any, send: Any) -> None:
        sent = 0

        async def send_holding(message: Any) -> None:
            nonlocal sent
            if message["type"] == "http.response.body" and message.get("body"):
                sent += 1
                if sent == 3:
                    # Only a transport that delivers chunks as they are sent lets the
                    # reader see the first chunk while this one waits.
                    await asyncio.wait_for(first_received.wait(), timeout=30)
                events.append(f"sent {sent}")
            await send(message)

        await app(scope, receive, send_holding)

    client = in_process_client(held_back)
    try:
        stream = await client.chat.completions.create(
            model="m", messages=user("[say] one two three four five"), stream=True
        )
        text = ""
        async for chunk in stream:
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece and not first_received.is_set():
                events.append("received first content")
                first_received.set()
            text += piece or ""
    finally:
        await client.close()
    assert text == "one two three four five"
    # Chunk 1 is the role, chunk 2 the first word: it was read before chunk 3 was sent.
    assert events[:4] == ["sent 1", "sent 2", "received first content", "sent 3"]
