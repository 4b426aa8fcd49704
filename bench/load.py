"""The benchmark client: the same code drives Parley and the bare relay.

It speaks the part of the protocol both understand: ``hello`` → ``ready``, ``user_message`` →
frames up to ``turn_end``. Tokens carry their send time (see bench/model.py), so each
``response_delta`` tells how long its tokens took from the model to this client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

TokenFor = Callable[[str], str]
_STAMP = re.compile(r"@(\d+)")
CONNECT_TIMEOUT_S = 30.0
# A 2,000-token turn through the typed-SDK relay on a loaded machine can take over a minute.
TURN_TIMEOUT_S = 180.0


async def open_tab(url: str, token: str) -> ClientConnection:
    """A socket past its handshake (``ready`` read), compression off like Parley's default."""
    try:
        ws = await websockets.connect(
            url,
            open_timeout=CONNECT_TIMEOUT_S,
            compression=None,
            max_size=2**22,
            ping_interval=None,
        )
    except websockets.InvalidStatus as exc:
        raise RuntimeError(f"{url} refused the socket: {exc}") from exc
    await ws.send(orjson.dumps({"type": "hello", "protocol": 1, "token": token}).decode())
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while orjson.loads(await ws.recv()).get("type") != "ready":
            pass
    return ws


async def ask(ws: ClientConnection, text: str, number: int) -> None:
    frame = {"type": "user_message", "client_msg_id": f"b-{number}-{time.time_ns()}", "text": text}
    await ws.send(orjson.dumps(frame).decode())


# -- latency ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class LatencyResult:
    samples_ms: list[float] = field(default_factory=list)
    delta_frames: int = 0
    streaming_s: float = 0.0

    def merge(self, other: LatencyResult) -> None:
        self.samples_ms += other.samples_ms
        self.delta_frames += other.delta_frames
        self.streaming_s += other.streaming_s

    def summary(self) -> dict[str, float]:
        values = self.samples_ms
        return {
            "tokens": len(values),
            "p50_ms": round(percentile(values, 0.50), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values), 2),
            # Each response_delta is one append to the frame log (one Redis round trip).
            "delta_frames_per_s": round(self.delta_frames / self.streaming_s, 1),
        }


async def _read_turn(ws: ClientConnection, result: LatencyResult | None) -> None:
    first_delta: int | None = None
    async with asyncio.timeout(TURN_TIMEOUT_S):
        while True:
            raw = await ws.recv()
            now = time.monotonic_ns()
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "response_delta" and result is not None:
                first_delta = first_delta or now
                result.delta_frames += 1
                for stamp in _STAMP.findall(frame["delta"]):
                    result.samples_ms.append((now - int(stamp)) / 1e6)
            elif kind == "turn_end":
                if result is not None and first_delta is not None:
                    result.streaming_s += (now - first_delta) / 1e9
                return
            elif kind == "error":
                raise RuntimeError(f"server error: {frame}")


async def latency(
    send_url: str, receive_url: str, token: str, *, turns: int, tokens: int, rate: float
) -> LatencyResult:
    """Model-to-tab delay of every token of ``turns`` turns, measured on the receiving tab.

    With two URLs the message goes in on one worker and is read on the other; the sending tab
    reads its frames too, as a browser tab would.
    """
    sender = await open_tab(send_url, token)
    receiver = sender if receive_url == send_url else await open_tab(receive_url, token)
    result = LatencyResult()
    try:
        for number in range(turns + 1):  # the first turn warms up, unmeasured
            measured = result if number > 0 else None
            await ask(sender, f"tokens={tokens} rate={rate}", number)
            reads = [_read_turn(receiver, measured)]
            if receiver is not sender:
                reads.append(_read_turn(sender, None))
            await asyncio.gather(*reads)
    finally:
        await sender.close()
        if receiver is not sender:
            await receiver.close()
    return result


# -- throughput ------------------------------------------------------------------------------


@dataclass
class Throughput:
    frames: int = 0
    tokens: int = 0
    seconds: float = 0.0
    # The server's CPU time over the same window (user + system), when it was sampled.
    server_cpu_s: float | None = None

    def summary(self) -> dict[str, float]:
        figures = {
            "frames_per_s": round(self.frames / self.seconds),
            "tokens_per_s": round(self.tokens / self.seconds),
            "seconds": round(self.seconds, 1),
        }
        if self.server_cpu_s is not None and self.tokens:
            per_token_us = self.server_cpu_s * 1e6 / self.tokens
            figures["server_cpu_share"] = round(self.server_cpu_s / self.seconds, 2)
            figures["cpu_us_per_token"] = round(per_token_us, 1)
            # What one fully busy core would deliver at this cost per token.
            figures["tokens_per_s_per_core"] = round(1e6 / per_token_us)
        return figures


async def throughput(
    url: str,
    token_for: TokenFor,
    *,
    streams: int,
    tokens: int,
    seconds: float,
    tabs_per_user: int = 1,
    prefix: str = "bench-t",
    server_cpu: Callable[[], float] | None = None,
) -> Throughput:
    """Frames and tokens delivered per second with ``streams`` users asking back to back, the
    model streaming as fast as it can; counted over ``seconds``.

    Each user has ``tabs_per_user`` tabs: the first asks and is counted, the others read every
    frame as a browser tab would (the fan-out a user's other tabs cost the server). With
    ``server_cpu`` (the server's CPU seconds so far), the server's CPU time over the window
    is taken too, to give its cost per token delivered to the users.
    """
    users = []
    for index in range(streams):
        token = token_for(f"{prefix}{index}")
        users.append([await open_tab(url, token) for _ in range(tabs_per_user)])
    totals = Throughput()
    started = time.monotonic()
    deadline = started + seconds
    cpu_at_start = server_cpu() if server_cpu else None

    async def run(ws: ClientConnection) -> None:
        number = 0
        while time.monotonic() < deadline:
            await ask(ws, f"tokens={tokens} rate=0", number)
            number += 1
            try:
                await asyncio.wait_for(read_turn(ws), TURN_TIMEOUT_S)
            except TimeoutError:
                raise RuntimeError(f"a turn took over {TURN_TIMEOUT_S:g} s at {url}") from None

    async def read_turn(ws: ClientConnection) -> None:
        while True:
            frame = orjson.loads(await ws.recv())
            if time.monotonic() <= deadline:
                totals.frames += 1
                if frame.get("type") == "response_delta":
                    totals.tokens += frame["delta"].count("@")
            if frame.get("type") == "turn_end":
                return
            if frame.get("type") == "error":
                raise RuntimeError(f"server error: {frame}")

    async def follow(ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                if '"type":"error"' in raw:
                    raise RuntimeError(f"server error: {raw!r}")

    async def sample_cpu_at_deadline() -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        if server_cpu is not None and cpu_at_start is not None:
            totals.server_cpu_s = server_cpu() - cpu_at_start

    followers = [asyncio.create_task(follow(ws)) for tabs in users for ws in tabs[1:]]
    try:
        await asyncio.gather(sample_cpu_at_deadline(), *(run(tabs[0]) for tabs in users))
    finally:
        totals.seconds = min(time.monotonic(), deadline) - started
        for tabs in users:
            for ws in tabs:
                with contextlib.suppress(Exception):
                    await ws.close()
        for task in followers:
            with contextlib.suppress(Exception):
                await task
    return totals


def median_throughput(runs: list[Throughput]) -> dict[str, float]:
    """The median of each figure over several runs."""
    summaries = [run.summary() for run in runs]
    return {key: statistics.median(summary[key] for summary in summaries) for key in summaries[0]}


def median_cpu(runs: list[Throughput]) -> dict[str, Any]:
    """The median CPU cost per token over several runs, and each run's, for the record."""
    figures: dict[str, Any] = dict(median_throughput(runs))
    figures["cpu_us_per_token_rounds"] = [run.summary()["cpu_us_per_token"] for run in runs]
    return figures


# -- idle connections ------------------------------------------------------------------------


async def hold_idle(
    url: str, token_for: TokenFor, count: int, *, prefix: str = "idle", batch: int = 50
) -> list[ClientConnection]:
    """Open ``count`` authenticated sockets (each its own user) and leave them idle."""
    tabs: list[ClientConnection] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        tabs += await asyncio.gather(
            *(open_tab(url, token_for(f"{prefix}-{start + index}")) for index in range(size))
        )
    return tabs


async def close_all(tabs: list[ClientConnection]) -> None:
    for start in range(0, len(tabs), 100):
        await asyncio.gather(
            *(tab.close() for tab in tabs[start : start + 100]), return_exceptions=True
        )
