"""A fuzz run against a live server: 10,000 random and mutated frames over a few sockets.

The frames come from seeded generators (one per socket, seeded from ``SEED``): valid client
frames with fields dropped, retyped, stretched or nested; JSON text cut,
spliced and garbled; random text; binary frames, UTF-8 and not; and a few hellos and oversized
frames that must close the socket. Each frame is followed by a marker ``ping``; everything up
to the marker's ``pong`` is the server's answer to that frame, so the test can check it:

* a frame the protocol package cannot decode gets exactly one ``error`` with the code the
  decoder names (before ``hello``: also ``hello_required`` for frames that do decode);
* a frame that closes the socket closes it with a documented code (4401, 4426 or 1009);
* every frame the server sends decodes as a server frame, and none is ``internal_error``.

Meanwhile another user's tab carries on a conversation: the run must not disturb it, and
the worker must be alive and its log free of tracebacks at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from protocol import CLOSE_INFO, Hello, ProtocolError, decode_client, decode_server
from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, make_token

# In process, but long (thousands of fuzzed frames): the full run's.
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

SEED = 20261122
TOTAL_FRAMES = 10_000
SOCKETS = 4
MARKER_BASE = 10**12  # marker pings use t values far above any the generator makes
CLOSING_CODES = {4401, 4426, 1009}
BYSTANDER_TURNS = 4  # within the fuzz server's 5 messages a minute

TEMPLATES: list[dict[str, Any]] = [
    {"type": "user_message", "client_msg_id": "f-1", "text": "hello"},
    {
        "type": "user_message",
        "client_msg_id": "f-2",
        "text": "[say] hi",
        "conversation_id": "c_1",
        "context": {"record": {"id": 7, "iban": "DE89370400440532013000"}},
    },
    {"type": "confirm", "token": "tok", "decision": "approve"},
    {"type": "confirm", "token": "tok", "decision": "reject"},
    {"type": "cancel", "conversation_id": "c_1"},
    {"type": "cancel", "conversation_id": "c_1", "turn_id": "t_1"},
    {"type": "typing", "conversation_id": "c_1", "active": True},
    {"type": "feedback", "message_id": "m_1", "rating": 5},
    {"type": "feedback", "message_id": "m_1", "rating": "down", "comment": "meh"},
    {"type": "ping", "t": 1},
    {"type": "ping"},
]
HELLO = {"type": "hello", "protocol": 1, "token": "not-a-token", "epoch": "e", "last_seq": 3}
FRAME_TYPES = ["hello", "ready", "error", "message", "pong", "user_message", "Ping", "", "💥"]


class FrameFuzzer:
    """Makes fuzz frames: text (``str``) or binary (``bytes``)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._count = 0

    def frame(self, *, allow_closing: bool = True) -> str | bytes:
        self._count += 1
        rng = self.rng
        roll = rng.random()
        if allow_closing and roll < 0.004:
            return orjson.dumps({"type": "ping", "pad": "x" * (70 * 1024)}).decode()
        if allow_closing and roll < 0.015:
            return dumps(self._mutate(dict(HELLO), rng.randint(0, 2)))
        if roll < 0.45:
            return dumps(self._mutate(self._template(), rng.randint(1, 3)))
        if roll < 0.70:
            return self._garble(dumps(self._template()))
        if roll < 0.82:
            return self._random_text()
        if roll < 0.90:
            return dumps(self._value(3))
        if roll < 0.96:
            return rng.randbytes(rng.randint(1, 64))
        return dumps(self._mutate(self._template(), 1)).encode()

    def _template(self) -> dict[str, Any]:
        frame = dict(self.rng.choice(TEMPLATES))
        if "client_msg_id" in frame:
            frame["client_msg_id"] = f"f-{self._count}"
        return frame

    def _mutate(self, frame: dict[str, Any], times: int) -> Any:
        rng = self.rng
        for _ in range(times):
            keys = list(frame)
            choice = rng.randrange(9)
            if choice == 0 and keys:
                frame.pop(rng.choice(keys))
            elif choice == 1 and keys:
                frame[rng.choice(keys)] = self._value(2)
            elif choice == 2:
                frame[self._word()] = self._value(2)
            elif choice == 3:
                frame["type"] = rng.choice([*FRAME_TYPES, self._word(), 7, None, ["ping"]])
            elif choice == 4 and keys:
                frame[rng.choice(keys)] = self._word() * rng.randint(20, 400)
            elif choice == 5:
                frame["context"] = self._nested(rng.randint(50, 80))
            elif choice == 6 and keys:
                key = rng.choice(keys)
                frame[key] = rng.choice([2**53, 2**64, -1, 1.5, 1e308, -0.0, True, "", "\u0000"])
            elif choice == 7:
                return rng.choice([[frame], "frame", 42, None])
            else:
                frame["text"] = "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(30))
        return frame

    def _garble(self, text: str) -> str:
        rng = self.rng
        choice = rng.randrange(8)
        cut = rng.randint(0, len(text))
        if choice == 0:
            return text[:cut]
        if choice == 1:
            return text[:cut] + rng.choice(string.printable) + text[cut:]
        if choice == 2:
            return text[:cut] + text[cut + 1 :]
        if choice == 3:
            return text + rng.choice(["}", "]", ",", " x", "\u0000", text])
        if choice == 4:
            return rng.choice(["", " ", "null", "[]", "{}", "NaN", "Infinity", '"x"', "1e999"])
        if choice == 5:
            depth = rng.choice([100, 1023, 1100, 3000])
            return "[" * depth + "]" * depth
        if choice == 6:
            return text.replace('"', "'", 1)
        return text.replace(":", ":" + rng.choice(['"\\ud800"', "NaN", "01", "+1", "[]"]), 1)

    def _random_text(self) -> str:
        rng = self.rng
        alphabet = rng.choice([string.printable, '{}[]":,0123456789', "é€😀\u200b\x00\x1f"])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))

    def _word(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + "_") for _ in range(6))

    def _value(self, depth: int) -> Any:
        rng = self.rng
        kind = rng.randrange(8 if depth > 0 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([0, -5, 3, 2**31, 2**53 - 1, 2**53 + 1, 10**30])
        if kind == 3:
            return rng.uniform(-1e9, 1e9)
        if kind == 4:
            return self._word()
        if kind == 5:
            return "".join(chr(rng.randint(1, 0xFFFF)) for _ in range(rng.randint(0, 12)))
        if kind == 6:
            return [self._value(depth - 1) for _ in range(rng.randint(0, 4))]
        return {self._word(): self._value(depth - 1) for _ in range(rng.randint(0, 4))}

    def _nested(self, depth: int) -> Any:
        value: Any = {"leaf": 1}
        for _ in range(depth):
            value = {"n": value}
        return value


def dumps(value: Any) -> str:
    """JSON text as a sloppy client might write it: big integers, NaN and lone surrogates
    included (orjson refuses to write those)."""
    return json.dumps(value, allow_nan=True)


def expected_error(frame: str | bytes) -> str | None:
    """The error code the server must answer ``frame`` with, or None when it is accepted: the
    decoder's verdict, and ``invalid_field`` for a string holding U+0000 (which PostgreSQL
    cannot store)."""
    try:
        decode_client(frame)
    except ProtocolError as exc:
        return str(exc.code)
    return "invalid_field" if holds_nul(json.loads(frame)) else None


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def decodes_as_hello(frame: str | bytes) -> bool:
    try:
        return isinstance(decode_client(frame), Hello)
    except ProtocolError:
        return False


@dataclass
class Tally:
    frames: int = 0
    answered: int = 0
    closes: dict[int, int] = field(default_factory=dict)
    seen: int = 0


class FuzzSocket:
    """One fuzzing connection: reconnects whenever the server closes it."""

    def __init__(self, server: ParleyServer, token: str, fuzzer: FrameFuzzer, tally: Tally) -> None:
        self.server = server
        self.token = token
        self.fuzzer = fuzzer
        self.tally = tally
        self.marker = MARKER_BASE
        self.tab: Tab | None = None

    async def run(self, count: int) -> None:
        sent = 0
        while sent < count:
            if self.tab is None:
                sent += await self._connect()
                continue
            frame = self.fuzzer.frame()
            sent += 1
            self.tally.frames += 1
            await self._one(frame)
        if self.tab is not None:
            await self.tab.close()

    async def _connect(self) -> int:
        """Open a socket, fuzz it a little before hello, then authenticate. Returns how many
        fuzz frames it sent."""
        self.tab = await Tab.connect(self.server.ws_url, max_size=None)
        sent = 0
        for _ in range(self.fuzzer.rng.randint(0, 3)):
            frame = self.fuzzer.frame(allow_closing=False)
            if decodes_as_hello(frame):
                continue
            sent += 1
            self.tally.frames += 1
            await self.tab.ws.send(frame)
            await self._send_marker()
            first, second = await self._read(), await self._read()
            expected = expected_error(frame) or "hello_required"
            assert first["type"] == "error", (frame, first)
            assert first["code"] == expected, (frame, first)
            assert second["code"] == "hello_required", (frame, second)
            self.tally.answered += 1
        await self.tab.send({"type": "hello", "protocol": 1, "token": self.token})
        while (await self._read()).get("type") != "ready":
            pass
        return sent

    async def _one(self, frame: str | bytes) -> None:
        assert self.tab is not None
        await self.tab.ws.send(frame)
        closing = decodes_as_hello(frame) or len(frame) > 64 * 1024
        if closing:
            await self._expect_close(frame)
            return
        marker = await self._send_marker()
        answer: list[dict[str, Any]] = []
        while True:
            got = await self._read()
            if got["type"] == "pong" and got.get("t") == marker:
                break
            if "seq" not in got:  # logged frames belong to the user's stream, not the answer
                answer.append(got)
        expected = expected_error(frame)
        if expected is not None:
            # Decoding errors carry no ref; an error with one is about an earlier message
            # (a turn's failure notice), not this frame.
            errors = [got for got in answer if got["type"] == "error" and "ref" not in got]
            assert [error["code"] for error in errors] == [expected], (frame, answer)
            self.tally.answered += 1

    async def _expect_close(self, frame: str | bytes) -> None:
        assert self.tab is not None
        code, _ = await self.tab.closed()
        assert code in CLOSING_CODES, (frame, code)
        assert code in CLOSE_INFO
        self.tally.closes[code] = self.tally.closes.get(code, 0) + 1
        self.tally.answered += 1
        self.tab = None

    async def _send_marker(self) -> int:
        assert self.tab is not None
        self.marker += 1
        await self.tab.send({"type": "ping", "t": self.marker})
        return self.marker

    async def _read(self) -> dict[str, Any]:
        assert self.tab is not None
        raw = await asyncio.wait_for(self.tab.ws.recv(), 20)
        decode_server(raw)  # every frame the server sends is a valid server frame
        frame: dict[str, Any] = orjson.loads(raw)
        assert not (frame["type"] == "error" and frame["code"] == "internal_error"), frame
        self.tally.seen += 1
        return frame


@pytest.fixture
def fuzz_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    config = backend.config(
        model,
        PARLEY_FRAMES_PER_SECOND="0",  # the fuzzer goes as fast as the server answers
        PARLEY_USER_MESSAGES_PER_MINUTE="5",  # valid messages: a few turns, then rate_limited
        PARLEY_LOG_LEVEL="INFO",
    )
    server = ParleyServer(tmp_path, config)
    yield server
    server.stop()


async def bystander(server: ParleyServer, done: asyncio.Event) -> int:
    """Another user's tab holding a conversation while the fuzz runs (a turn every few
    seconds, within the message rate, and pings in between); returns its turns."""
    tab = await server.tab(make_token(f"{server.user}-bystander", "acme"))
    conversation = None
    turns = pings = 0
    while turns < BYSTANDER_TURNS and not (done.is_set() and turns):
        fields = {"conversation_id": conversation} if conversation else {}
        frames = await tab.ask(f"[say] still here {turns}", f"b-{turns}", **fields)
        assert frames[-1]["status"] == "completed", frames[-1]
        conversation = frames[0]["conversation_id"]
        turns += 1
        for _ in range(20):
            pings += 1
            await tab.send({"type": "ping", "t": pings})
            assert (await tab.expect("pong"))["t"] == pings
            if done.is_set():
                break
            await asyncio.sleep(0.5)
    await tab.close()
    return turns


async def test_fuzzed_frames_are_answered_and_harm_nobody(fuzz_server: ParleyServer) -> None:
    tally = Tally()
    token = make_token(fuzz_server.user, "acme")
    sockets = [
        FuzzSocket(fuzz_server, token, FrameFuzzer(SEED + number), tally)
        for number in range(SOCKETS)
    ]
    done = asyncio.Event()
    watcher = asyncio.create_task(bystander(fuzz_server, done))
    try:
        await asyncio.gather(*(socket.run(TOTAL_FRAMES // SOCKETS) for socket in sockets))
    finally:
        done.set()
    assert await watcher >= 1
    assert tally.frames >= TOTAL_FRAMES
    assert tally.closes.get(4401, 0) > 0
    assert tally.closes.get(1009, 0) > 0
    # The worker is alive, still serves new sockets, and logged no crash.
    assert fuzz_server.running
    tab = await fuzz_server.tab()
    await tab.send({"type": "ping", "t": 5})
    assert (await tab.expect("pong"))["t"] == 5
    await tab.close()
    log = fuzz_server.output()
    assert "Traceback" not in log
    assert '"level":"error"' not in log
