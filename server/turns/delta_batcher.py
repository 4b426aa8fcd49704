"""Streamed text, coalesced into ``response_delta`` frames of at most one per short window."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from protocol import ResponseDelta
from server.config import Settings
from server.ops import metrics
from server.turns.turn_state import RunningTurn

# How often a streaming turn's text so far is saved for snapshots and sweepers.
PARTIAL_SAVE_INTERVAL_S = 0.5

Publish = Callable[..., Awaitable[list[int]]]  # (owner, *frames) -> their seqs
SaveText = Callable[[RunningTurn, int], Awaitable[None]]


class DeltaBatcher:
    """Coalesces streamed text into at most about one ``response_delta`` per window.

    Each logged frame is a Redis round trip. Text is gathered for ``delta_flush_ms`` (or until
    ``delta_flush_chars`` wait), so a model that sends tokens faster than the window, or in
    bursts as models do over a network, costs one call per window, not one per token.

    Text that finds nothing logged for a whole window goes out at once (the leading edge):
    a model slower than the window then costs one call per token but adds no wait. The window
    is the dial between added latency and Redis calls; docs/benchmarks.md measures both.

    Logging a delta does not hold up reading the model: what arrives while a delta is being
    logged waits and goes out in the next one, so a model faster than the log gets fewer,
    larger deltas instead of one append per ``delta_flush_chars``. Only past
    ``delta_max_waiting_chars`` does the stream wait for the log, so a log that falls behind
    slows the model's stream down rather than piling its text up in memory.
    """

    def __init__(
        self,
        turn: RunningTurn,
        settings: Settings,
        publish: Publish,
        save_text: SaveText,
    ) -> None:
        self._turn = turn
        self._publish = publish
        self._save_text = save_text
        self._pending: list[str] = []
        self._pending_chars = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        # What a flush nobody awaited raised, for the turn's next add or flush to raise.
        self._failure: Exception | None = None
        self._last_flush = -math.inf  # loop time of the last flush
        self._last_partial_save = 0.0
        self._last_saved_seq = 0
        # Save at least every quarter of the log's length too, so the frames after a save are
        # still in the log when a snapshot needs them (see snapshot.py).
        self._save_every_frames = max(1, settings.log_max_frames // 4)
        self._lock = asyncio.Lock()  # one flush at a time, so seq order is text order
        self._flush_after_s = settings.delta_flush_ms / 1000
        self._flush_chars = settings.delta_flush_chars
        self._most_waiting_chars = max(settings.delta_max_waiting_chars, self._flush_chars)
        self._flush_queued = False  # a flush task is on its way and will take what waits
        self._seen_text = False  # the turn's first text is timed once, not looked up per token

    async def add(self, text: str) -> None:
        """Take the next piece of streamed text.

        Raises:
            StateUnavailable: this or an earlier flush could not log its text.
        """
        if not self._seen_text:
            self._seen_text = True
            metrics.turns.first_text(self._turn.turn_id)
        self._pending.append(text)
        self._pending_chars += len(text)
        # Taken first, so that the turn's reply keeps it even when the stream stops here.
        self._raise_failure()
        if self._pending_chars >= self._most_waiting_chars:
            await self.flush()  # the log is behind: hold the model's stream back
        elif self._pending_chars >= self._flush_chars:
            self._start_flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            wait = self._last_flush + self._flush_after_s - loop.time()
            if wait <= 0:
                self._flush_soon()
            else:
                self._timer = loop.call_later(wait, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        self._start_flush()

    def _start_flush(self) -> None:
        """Log what waits as soon as the log is free, without waiting for it here."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_queued:
            return  # the one on its way takes this text too
        self._flush_queued = True
        # A flush under way may have taken its text before this arrived: queue another one
        # behind it (the lock keeps them in order; one that finds nothing does nothing).
        task = asyncio.create_task(self._flush_unawaited())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_unawaited(self) -> None:
        # Nobody awaits this task: its failure is kept for the turn, which must stop as it
        # would after a flush it awaited (its frames cannot be logged), not stream on.
        try:
            await self.flush()
        except Exception as exc:
            self._failure = self._failure or exc

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def flush(self) -> None:
        """Log the text that waits, now.

        Raises:
            StateUnavailable: this or an earlier flush could not log its text.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            await self._flush_pending()
        self._raise_failure()

    async def _flush_pending(self) -> None:
        self._flush_queued = False  # text that comes from now on needs a flush of its own
        if not self._pending:
            return
        delta = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        self._last_flush = asyncio.get_running_loop().time()
        turn = self._turn
        request = turn.request
        turn.text += delta
        seqs = await self._publish(
            request.owner,
            ResponseDelta(
                conversation_id=request.conversation_id,
                turn_id=turn.turn_id,
                message_id=turn.message_id,
                delta=delta,
            ),
        )
        turn.last_delta_seq = seqs[-1]
        now = time.monotonic()
        if (
            now - self._last_partial_save >= PARTIAL_SAVE_INTERVAL_S
            or turn.last_delta_seq - self._last_saved_seq >= self._save_every_frames
        ):
            self._last_partial_save = now
            self._last_saved_seq = turn.last_delta_seq
            await self._save_text(turn, turn.last_delta_seq)
