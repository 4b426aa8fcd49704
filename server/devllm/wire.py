"""OpenAI's chat completions wire shapes: completion objects, stream chunks, errors.

Everything here is plain data; ``app`` decides when to send it. The shapes follow what OpenAI
sends, field for field where the ``openai`` SDK reads them: a stream starts with a chunk carrying
``delta.role``, text arrives in ``delta.content`` pieces, each tool call opens with its index, id
and name and then streams its arguments in pieces, a chunk with ``finish_reason`` closes the
choice, an optional usage chunk has no choices, and ``data: [DONE]`` ends the stream.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

MODEL_NAME = "parley-dev"
SYSTEM_FINGERPRINT = "fp_parley_dev"
DONE = b"data: [DONE]\n\n"

# Tool call arguments are streamed in pieces of about this many characters.
ARGUMENT_PIECE_CHARS = 8

FinishReason = Literal["stop", "tool_calls"]

_WORDISH = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call of a reply with the id the client will answer it by."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A reply made ready for the wire: ids, timestamps, model and usage settled."""

    id: str
    created: int
    model: str
    text: str
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int
    completion_tokens: int

    @property
    def finish_reason(self) -> FinishReason:
        """``tool_calls`` when the reply calls tools, else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self) -> dict[str, Any]:
        """The ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One SSE event of a stream.

    ``generated`` events stand for tokens the model produces, so the token rate paces them;
    ``content`` events carry text or arguments, and ``drop_stream`` counts those.
    """

    data: bytes
    generated: bool = False
    content: bool = False


def new_completion_id() -> str:
    """An id shaped like OpenAI's: ``chatcmpl-`` and random characters."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def new_tool_call_id() -> str:
    """A tool call id shaped like OpenAI's: ``call_`` and random characters."""
    return f"call_{secrets.token_hex(12)}"


def now() -> int:
    """The ``created`` timestamp: whole seconds since the epoch."""
    return int(time.time())


def completion_object(completion: Completion) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": completion.text or None,
        "refusal": None,
    }
    if completion.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in completion.tool_calls
        ]
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": completion.usage(),
    }


def stream_events(completion: Completion, *, include_usage: bool) -> list[StreamEvent]:
    """Every event of the streamed completion, ``[DONE]`` included."""
    events: list[StreamEvent] = []

    def chunk(delta: dict[str, Any], finish_reason: FinishReason | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            # OpenAI puts "usage": null on every chunk but the last when usage is asked for.
            data["usage"] = None
        return sse(data)

    role: dict[str, Any] = {"role": "assistant"}
    if completion.text or not completion.tool_calls:
        events.append(StreamEvent(chunk({**role, "content": "", "refusal": None})))
        role = {}
        for piece in split_text(completion.text):
            events.append(StreamEvent(chunk({"content": piece}), generated=True, content=True))
    for index, call in enumerate(completion.tool_calls):
        opening = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        # With no text before it, the first tool call also carries the role, as OpenAI's does.
        delta = (
            {**role, "content": None, "tool_calls": [opening]}
            if role
            else {"tool_calls": [opening]}
        )
        role = {}
        events.append(StreamEvent(chunk(delta), generated=True))
        for piece in split_arguments(call.arguments):
            argument_delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            events.append(StreamEvent(chunk(argument_delta), generated=True, content=True))
    events.append(StreamEvent(chunk({}, completion.finish_reason)))
    if include_usage:
        events.append(
            StreamEvent(
                sse(
                    {
                        "id": completion.id,
                        "object": "chat.completion.chunk",
                        "created": completion.created,
                        "model": completion.model,
                        "system_fingerprint": SYSTEM_FINGERPRINT,
                        "choices": [],
                        "usage": completion.usage(),
                    }
                )
            )
        )
    events.append(StreamEvent(DONE))
    return events


def sse(data: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def error_body(
    message: str, *, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def models_list() -> dict[str, Any]:
    """The ``GET /v1/models`` answer: the one scripted model."""
    return {"object": "list", "data": [model_object(MODEL_NAME)]}


def model_object(name: str) -> dict[str, Any]:
    """One ``model`` object."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "parley"}


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a request message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def split_text(text: str) -> list[str]:
    """Split text into word-ish pieces (each word with the space before it); they join back."""
    return _WORDISH.findall(text)


def split_arguments(arguments: str) -> list[str]:
    """Split tool call arguments into pieces the way a model streams them: several, short."""
    if len(arguments) < 2:
        return [arguments]
    size = min(ARGUMENT_PIECE_CHARS, -(-len(arguments) // 2))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]
