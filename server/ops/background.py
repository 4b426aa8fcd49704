"""A worker's background jobs: the sweeper and the control-channel listener.

The sweeper finds turns whose lease lapsed (their worker died) and ends them ``interrupted``
with their partial text saved, starts queued messages that nothing else would start, and
expires confirmations nobody decided in time. Every worker runs one; ``TurnLeases.forget``
makes sure only one of them ends each turn, and the turn slot that only one starts each
message.

The control listener carries worker-to-worker requests: cancel a turn that runs here, run
the messages a worker that is shutting down left waiting, carry a page tool call to the
worker holding the tab that runs it and its answer back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from protocol import ErrorCode, TurnStatus
from server.config import Settings
from server.errors import Failure
from server.stream.snapshot import Snapshots
from server.tools.page_tools import PageToolRouter
from server.turns.engine import TurnEngine
from storage.control_messages import (
    CancelTurn,
    ConfirmationDecided,
    PageToolAnswered,
    RunPageTool,
    StartNext,
)
from storage.errors import StorageError
from storage.keys import UserKey
from storage.leases import TurnLeases
from storage.memory_frame_log import AnyFrameLog
from storage.redis_client import RedisClient
from storage.redis_pubsub import WakeupSubscription
from storage.small_stores import ControlChannel
from storage.transcripts import TranscriptStore
from storage.turn_queue import TurnQueue

logger = logging.getLogger(__name__)

CONTROL_POLL_S = 1.0


class BackgroundJobs:
    """Starts and stops the worker's periodic and listening tasks."""

    def __init__(
        self,
        settings: Settings,
        engine: TurnEngine,
        snapshots: Snapshots,
        transcripts: TranscriptStore,
        leases: TurnLeases,
        queue: TurnQueue,
        frame_log: AnyFrameLog,
        redis: RedisClient,
        control: ControlChannel,
        page_tools: PageToolRouter,
    ) -> None:
        self._settings = settings
        self._page_tools = page_tools
        self._engine = engine
        self._snapshots = snapshots
        self._transcripts = transcripts
        self._leases = leases
        self._queue = queue
        self._frame_log = frame_log
        self._redis = redis
        self._control = control
        self._stopping = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._handovers: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweeper")
        self._listener = asyncio.create_task(self._listen_forever(), name="control listener")

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is None or self._listener is None:
            return
        # The sweeper wakes on the flag at once, and a sweep under way is let finish. The
        # listener spends most of its time in a Redis read of up to CONTROL_POLL_S, which a
        # stopping worker need not wait out: it is cancelled, and closes its subscription on
        # the way out, so the interrupted read's connection is never read from again.
        self._listener.cancel()
        _, pending = await asyncio.wait((self._sweeper, self._listener), timeout=CONTROL_POLL_S * 3)
        for task in pending:
            task.cancel()

    # -- sweeper -------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        interval = self._settings.sweep_interval_s
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if self._stopping.is_set():
                return
            try:
                await self.sweep_once()
            except (RedisError, StorageError, OSError) as exc:
                logger.warning("sweep skipped: %s", type(exc).__name__)
            except Exception:
                logger.exception("sweep failed")

    async def sweep_once(self) -> None:
        for user, claim in await self._leases.lapsed():
            if not await self._leases.forget(user, claim):
                continue  # another worker's sweeper took it
            # The dead worker saved its text now and then; the log has the deltas since.
            position = await self._frame_log.position(user)
            texts = await self._snapshots.turn_texts(user, [claim], position)
            if not await self._transcripts.interrupt_assistant_message(
                user, claim.conversation_id, claim.turn_id, claim.message_id, texts[claim.turn_id]
            ):
                # The turn did end on its worker, which then could not release the lease
                # (Redis was away): its turn_end went out already, or could not go out then.
                await self._leases.release(user, claim.conversation_id, claim.turn_id)
                await self._engine.start_next(user, claim.conversation_id)
                continue
            # The reason goes inside the logged turn_end: an unlogged error frame would only
            # reach the tabs on this worker, which need not be the user's tabs at all.
            await self._engine.end_turn(
                user,
                claim.conversation_id,
                claim.turn_id,
                TurnStatus.INTERRUPTED,
                Failure.of(
                    ErrorCode.TURN_INTERRUPTED,
                    "the worker running this answer stopped; the partial answer was saved",
                ),
            )
            logger.warning("turn %s lapsed on worker %s; ended it", claim.turn_id, claim.worker_id)
        await self._start_stalled_queues()
        await self._engine.expire_overdue()

    async def _start_stalled_queues(self) -> None:
        """Run messages that wait behind no turn at all: every worker left while they waited,
        or the turn before them could not start them. A busy conversation is left alone; its
        turn starts the next message when it ends."""
        if not self._engine.accepting:
            return
        interval = self._settings.sweep_interval_s
        for user, conversation_id in await self._queue.stalled(older_than_s=interval):
            if await self._leases.holder(user, conversation_id) is None:
                logger.warning(
                    "conversation %s: starting messages that waited with no turn running",
                    conversation_id,
                )
                await self._engine.start_next(user, conversation_id)

    # -- control channel -----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        pubsub: WakeupSubscription | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if pubsub is None:
                        # Sharded on a cluster, like the users' channels (storage.redis_pubsub).
                        pubsub = WakeupSubscription(self._redis)
                        await pubsub.subscribe(self._control.channel)
                    message = await pubsub.get_message(timeout=CONTROL_POLL_S)
                    if message is not None:
                        self._on_control(message["data"])
                except (RedisError, OSError) as exc:
                    logger.warning("control channel lost (%s); reconnecting", type(exc).__name__)
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
                    pubsub = None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), CONTROL_POLL_S)
        finally:
            # Also when ``stop`` cancelled a read: the subscription is not used again.
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _on_control(self, data: bytes | str) -> None:
        # A message that does not decode was logged and dropped by ``read``.
        message = self._control.read(data)
        match message:
            case CancelTurn(turn_id=turn_id):
                self._engine.cancel_local(turn_id, TurnStatus.CANCELLED)
            case ConfirmationDecided():
                # Sent by workers of an earlier version during a rolling deploy: no turn waits
                # for a decision any more (the decision starts its own continuation turn).
                pass
            case RunPageTool():
                self._page_tools.on_run(message)
            case PageToolAnswered():
                self._page_tools.on_answered(message)
            case StartNext(owner=owner, conversation_id=conversation_id) if self._engine.accepting:
                # A worker that is shutting down handed over a conversation's waiting messages;
                # every worker tries, the turn slot lets exactly one of them run the next one.
                task = asyncio.create_task(
                    self._start_next(owner, conversation_id), name="start handed-over turn"
                )
                self._handovers.add(task)
                task.add_done_callback(self._handovers.discard)

    async def _start_next(self, owner: UserKey, conversation_id: str) -> None:
        try:
            await self._engine.start_next(owner, conversation_id)
        except (RedisError, StorageError, OSError) as exc:
            logger.warning("could not take over a waiting turn: %s", type(exc).__name__)
