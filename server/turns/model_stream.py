"""Reading a streamed chat completion: SSE bytes in, text and tool-call pieces out.

The ``openai`` SDK's typed stream builds a pydantic object for every chunk, which costs about
ten times what parsing the chunk's JSON does, and a streamed token is little else. So the
adapter (``llm.py``) keeps the SDK for the request (base URL, keys, headers, timeouts, status
errors) and reads the raw response body through this module: :class:`SseDecoder` splits the
bytes into events, :class:`ReplyBuilder` reads each event's JSON with orjson and gathers the
reply. Neither does I/O, so both are tested by feeding them bytes.

A chunk that is not what an OpenAI-compatible endpoint sends (not JSON, or the wrong shape
where the reply is read from) raises :class:`MalformedStream`, which the adapter reports as a
``ModelError``; the SDK would have passed some of those on half-read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

DONE = b"[DONE]"


class MalformedStream(Exception):
    """The stream broke the SSE or chunk format; ``reason`` says where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamReportedError(Exception):
    """The endpoint sent an ``error`` object inside the stream (after a 200 status)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class ToolCallRequest:
    """A tool call as the model streamed it; ``arguments`` is raw JSON text, unchecked."""

    id: str
    name: str
    arguments: str

    def wire(self) -> dict[str, Any]:
        """The OpenAI message shape, for the transcript and the next request."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ModelUsage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ModelReply:
    """Everything one model call produced."""

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: ModelUsage | None = None
    finish_reason: str | None = None


class SseDecoder:
    """Splits a ``text/event-stream`` body into the ``data`` of its events.

    Follows the SSE rules an OpenAI-compatible endpoint relies on: lines end with ``\\n`` or
    ``\\r\\n`` (a lone ``\\r``, which the SSE spec also allows, is not used by any such
    endpoint and is not split on); an empty line ends an event; several ``data:`` lines of
    one event are joined by ``\\n``; comment lines (``:``) and other fields are skipped,
    except ``event``, kept so that an ``event: error`` can be told apart. An event the body
    ends in the middle of is dropped, as the spec says: it is a stream broken off, not a
    chunk to read.
    """

    __slots__ = ("_data", "_event", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """The events completed by ``chunk``, each as (event name or None, data)."""
        if self._partial:
            chunk = self._partial + chunk
        lines = chunk.split(b"\n")
        # The last piece is a line still waiting for its end (empty if the chunk ended one).
        self._partial = lines.pop()
        events: list[tuple[bytes | None, bytes]] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data.clear()
                self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
            # Comments (":keep-alive"), "id:" and "retry:" lines carry nothing the reply needs.
        return events


class ReplyBuilder:
    """Gathers a :class:`ModelReply` from chunk payloads; hands back each text piece.

    Text pieces are kept in a list and joined once, so a long reply is not copied again for
    every token.
    """

    __slots__ = ("_pieces", "done", "reply")

    def __init__(self) -> None:
        self.reply = ModelReply()
        self._pieces: list[str] = []
        self.done = False  # ``data: [DONE]`` was read

    @property
    def started(self) -> bool:
        """Whether any text or tool call has come, so the call cannot be repeated unseen."""
        return bool(self._pieces) or bool(self.reply.tool_calls)

    def finish(self) -> ModelReply:
        """The reply with its text joined."""
        self.reply.text = "".join(self._pieces)
        return self.reply

    def take(self, event: bytes | None, data: bytes) -> str | None:
        """Read one event's data; returns the text it adds, if any.

        Raises:
            MalformedStream: the data is not a chat completion chunk.
            StreamReportedError: the data is an error object.
        """
        if data == DONE:
            self.done = True
            return None
        if self.done:
            return None  # nothing counts after [DONE]
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedStream(f"a chunk is not JSON: {data[:60]!r}") from exc
        if type(chunk) is not dict:
            raise MalformedStream(f"a chunk is not a JSON object: {data[:60]!r}")
        if event == b"error" or "error" in chunk:
            raise StreamReportedError(_error_message(chunk.get("error")))
        usage = chunk.get("usage")
        if usage is not None:
            self._take_usage(usage)
        choices = chunk.get("choices")
        if not choices:
            return None
        if type(choices) is not list or type(choice := choices[0]) is not dict:
            raise MalformedStream("a chunk's choices are not a list of objects")
        text = None
        delta = choice.get("delta")
        if delta is not None:
            if type(delta) is not dict:
                raise MalformedStream("a chunk's delta is not an object")
            content = delta.get("content")
            if content:
                if type(content) is not str:
                    raise MalformedStream("a chunk's delta content is not text")
                self._pieces.append(content)
                text = content
            calls = delta.get("tool_calls")
            if calls:
                if type(calls) is not list:
                    raise MalformedStream("a chunk's tool_calls is not a list")
                for piece in calls:
                    _merge_tool_call_piece(self.reply.tool_calls, piece)
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            if type(finish_reason) is not str:
                raise MalformedStream("a chunk's finish_reason is not text")
            self.reply.finish_reason = finish_reason
        return text

    def _take_usage(self, usage: Any) -> None:
        if type(usage) is not dict:
            raise MalformedStream("a chunk's usage is not an object")
        prompt = usage.get("prompt_tokens") or 0
        completion = usage.get("completion_tokens") or 0
        if type(prompt) is not int or type(completion) is not int:
            raise MalformedStream("a chunk's usage counts are not integers")
        self.reply.usage = ModelUsage(
            prompt_tokens=prompt, completion_tokens=completion, estimated=False
        )


def _merge_tool_call_piece(calls: list[ToolCallRequest], piece: Any) -> None:
    # Tool calls stream in pieces keyed by index: the first carries id and name, the rest
    # carry slices of the arguments text.
    if type(piece) is not dict:
        raise MalformedStream("a tool call piece is not an object")
    index = piece.get("index")
    if type(index) is not int or not 0 <= index < MAX_TOOL_CALLS:
        raise MalformedStream(f"a tool call piece has a bad index {index!r}")
    while len(calls) <= index:
        calls.append(ToolCallRequest(id="", name="", arguments=""))
    call = calls[index]
    call_id = piece.get("id")
    if call_id:
        call.id = _text(call_id, "id")
    function = piece.get("function")
    if function is not None:
        if type(function) is not dict:
            raise MalformedStream("a tool call piece's function is not an object")
        name = function.get("name")
        if name:
            call.name += _text(name, "name")
        arguments = function.get("arguments")
        if arguments:
            call.arguments += _text(arguments, "arguments")


# More parallel tool calls than any model makes in one reply: an index beyond it is garbage,
# and would otherwise make the reply allocate that many empty calls.
MAX_TOOL_CALLS = 128


def _text(value: Any, what: str) -> str:
    if type(value) is not str:
        raise MalformedStream(f"a tool call piece's {what} is not text")
    return value


def _error_message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return str(error["message"])
    return "an error occurred during streaming"
