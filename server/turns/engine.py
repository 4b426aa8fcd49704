"""The turn engine: one assistant turn from a user message to ``turn_end``.

A turn runs as a task of the worker that claimed the conversation's turn slot, under a lease
in Redis that it renews while it runs (invariant 3). It does not belong to any socket: every
frame it makes goes into the user's frame stream, so closing tabs changes nothing and any tab,
on any worker, sees the same turn. Only ``cancel``, the turn time limit, a lost lease or the
worker's shutdown stop it early, and each of those ends it with a ``turn_end`` and the partial
text saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson

from protocol import (
    ERROR_INFO,
    ErrorCode,
    Response,
    Thinking,
    TurnEnd,
    TurnError,
    TurnStatus,
    Usage,
    encode,
)
from server.errors import TurnRejected
from server.ops import metrics
from server.ops.logs import bind_log_context
from server.security.limits import BudgetExceeded, Budgets
from server.security.redaction import redact_for_model
from server.services import Services
from server.turns.context_window import build_window
from server.turns.delta_batcher import DeltaBatcher
from server.turns.llm import ModelError, ModelReply, ModelUsage
from server.turns.tool_runner import outcome_note
from server.turns.turn_state import RunningTurn, TurnRequest
from storage.errors import StateUnavailable
from storage.keys import UserKey
from storage.leases import TurnClaim
from storage.models import Confirmation, UsageRecord, new_id

logger = logging.getLogger(__name__)

# How a turn's last writes (its final frames, its lease release) wait out a Redis outage.
OUTAGE_RETRY_PAUSES_S = (0.2, 0.4, 0.8, 1.6, 2.0)


class TurnEngine:
    """Starts, queues, runs, cancels and ends turns on this worker."""

    def __init__(self, services: Services) -> None:
        self._s = services
        self._settings = services.settings
        self._running: dict[str, RunningTurn] = {}
        self._accepting = True
        self._budgets = Budgets(services)

    @property
    def accepting(self) -> bool:
        """False once the worker began shutting down: it starts no more turns."""
        return self._accepting

    @property
    def running(self) -> dict[str, RunningTurn]:
        return self._running

    # -- starting ------------------------------------------------------------------------------

    async def check_room(self, owner: UserKey, conversation_id: str | None, ref: str) -> None:
        """Refuse, before it is stored, a message that :meth:`submit` would refuse now: the
        policy is ``reject`` and a turn runs, or ``queue`` and the queue is full.

        So a refused message leaves no trace (no transcript row, no ``message`` frame) and a
        resend after the queue drains is a new message that runs.

        Raises:
            TurnRejected: as :meth:`submit` would.
            StateUnavailable: Redis could not be reached.
        """
        policy = self._settings.double_texting
        if conversation_id is None or policy == "interrupt":
            return
        if await self._s.leases.holder(owner, conversation_id) is None:
            return
        if policy == "reject":
            raise self._busy(ref)
        waiting = await self._s.turn_queue.waiting(owner, conversation_id)
        if waiting >= self._settings.turn_queue_max:
            raise self._queue_full(ref)

    def _busy(self, ref: str) -> TurnRejected:
        return TurnRejected(
            ErrorCode.TURN_IN_PROGRESS, "a turn is already running here", retryable=True, ref=ref
        )

    def _queue_full(self, ref: str) -> TurnRejected:
        return TurnRejected(
            ErrorCode.TURN_IN_PROGRESS,
            f"{self._settings.turn_queue_max} messages already wait for this conversation",
            retryable=True,
            ref=ref,
        )

    async def submit(self, request: TurnRequest) -> str:
        """Run ``request`` now if its conversation is idle, otherwise act on the configured
        double-texting policy. Returns "started" or "queued".

        Raises:
            TurnRejected: the policy is ``reject``, or the conversation's queue is full.
        """
        if not self._accepting:
            # This worker is shutting down: the message waits in the queue for another one.
            policy = "queue"
        elif await self._try_start(request):
            return "started"
        else:
            policy = self._settings.double_texting
        if policy == "reject":
            raise self._busy(request.client_msg_id)
        if policy == "interrupt":
            await self.cancel(request.owner, request.conversation_id, None)
        queued = await self._s.turn_queue.push(
            request.owner,
            request.conversation_id,
            request.dumps(),
            limit=self._settings.turn_queue_max,
        )
        if not queued:
            raise self._queue_full(request.client_msg_id)
        # The running turn may have ended between our claim attempt and the push.
        await self.start_next(request.owner, request.conversation_id)
        return "queued"

    async def continue_after(self, confirmation: Confirmation) -> None:
        """Tell the model what became of an action whose turn ended before the decision
        (its worker restarted, say): a short turn that answers a note, queued like a message."""
        request = TurnRequest(
            tenant=confirmation.tenant,
            user=confirmation.user_id,
            roles=[],
            conversation_id=confirmation.conversation_id,
            user_message_id="",
            client_msg_id="",
            note=outcome_note(confirmation),
        )
        queued = await self._s.turn_queue.push(
            request.owner,
            request.conversation_id,
            request.dumps(),
            limit=self._settings.turn_queue_max + 1,
        )
        if queued:
            await self.start_next(request.owner, request.conversation_id)

    async def start_next(self, owner: UserKey, conversation_id: str) -> None:
        """Claim the conversation's slot and run the next queued request, if any."""
        if not self._accepting:
            await self._hand_off(owner, conversation_id)
            return
        while self._accepting:
            turn_id = new_id("t")
            claim = TurnClaim(
                turn_id=turn_id,
                conversation_id=conversation_id,
                message_id=new_id("m"),
                worker_id=self._s.worker_id,
                started_at=time.time(),
            )
            leases = self._s.leases
            if await leases.acquire(owner, claim, self._settings.turn_lease_ttl_s) is not None:
                return  # the slot is busy; its holder pops the queue when it ends
            entry = await self._s.turn_queue.pop(owner, conversation_id)
            if entry is not None:
                self._launch(TurnRequest.loads(entry), claim)
                return
            await leases.release(owner, conversation_id, turn_id)
            # Someone may have queued while we held the slot and then failed to claim it
            # because of us: look once more, or their message would wait for nobody.
            if not await self._s.turn_queue.waiting(owner, conversation_id):
                return

    async def _hand_off(self, owner: UserKey, conversation_id: str) -> None:
        """Ask the other workers to run what waits for the conversation (this one is leaving)."""
        if await self._s.turn_queue.waiting(owner, conversation_id):
            await self._s.control.publish(
                orjson.dumps(
                    {
                        "op": "start_next",
                        "tenant": owner.tenant,
                        "user": owner.user,
                        "conversation_id": conversation_id,
                    }
                )
            )

    async def _try_start(self, request: TurnRequest) -> bool:
        if not self._accepting:
            raise TurnRejected(
                ErrorCode.MODEL_UNAVAILABLE,
                "this worker is shutting down",
                retryable=True,
                ref=request.client_msg_id,
            )
        claim = TurnClaim(
            turn_id=new_id("t"),
            conversation_id=request.conversation_id,
            message_id=new_id("m"),
            worker_id=self._s.worker_id,
            started_at=time.time(),
        )
        holder = await self._s.leases.acquire(request.owner, claim, self._settings.turn_lease_ttl_s)
        if holder is not None:
            return False
        self._launch(request, claim)
        return True

    def _launch(self, request: TurnRequest, claim: TurnClaim) -> None:
        turn = RunningTurn(request=request, turn_id=claim.turn_id, message_id=claim.message_id)
        self._running[turn.turn_id] = turn
        turn.task = asyncio.create_task(self._run(turn), name=f"turn {turn.turn_id}")

    # -- stopping ------------------------------------------------------------------------------

    async def cancel(self, owner: UserKey, conversation_id: str, turn_id: str | None) -> bool:
        """Stop the conversation's running turn, on whichever worker runs it.

        Returns False when no turn of that conversation (and id, if given) is running.
        """
        holder = await self._s.leases.holder(owner, conversation_id)
        if holder is None or (turn_id is not None and holder != turn_id):
            return False
        if self.cancel_local(holder, TurnStatus.CANCELLED):
            return True
        await self._s.control.publish(orjson.dumps({"op": "cancel", "turn_id": holder}))
        return True

    def cancel_local(self, turn_id: str, status: TurnStatus) -> bool:
        turn = self._running.get(turn_id)
        if turn is None or turn.task is None or turn.task.done():
            return False
        if turn.stop_status is not None:
            return True  # already stopping; a second cancel would interrupt its clean-up
        turn.stop_status = status
        turn.task.cancel()
        return True

    async def drain(self, timeout_s: float) -> None:
        """Stop taking turns, let running ones finish for ``timeout_s``, interrupt the rest."""
        self._accepting = False
        tasks = [turn.task for turn in self._running.values() if turn.task is not None]
        if tasks:
            logger.info("waiting up to %g s for %d running turns", timeout_s, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for turn in list(self._running.values()):
                self.cancel_local(turn.turn_id, TurnStatus.INTERRUPTED)
            if pending:
                await asyncio.wait(pending, timeout=5.0)

    # -- running -------------------------------------------------------------------------------

    async def _run(self, turn: RunningTurn) -> None:
        request = turn.request
        owner = request.owner
        # This task's log lines name the turn, not the socket that happened to start it.
        bind_log_context(
            connection=None,
            tenant=request.tenant,
            user=request.user,
            conversation=request.conversation_id,
            turn=turn.turn_id,
        )
        metrics.turns.started(turn.turn_id)
        renewer = asyncio.create_task(self._keep_lease(turn), name=f"lease {turn.turn_id}")
        status = TurnStatus.COMPLETED
        try:
            async with asyncio.timeout(self._settings.turn_max_s):
                await self._converse(turn)
        except asyncio.CancelledError:
            status = turn.stop_status or TurnStatus.CANCELLED
            if status == TurnStatus.INTERRUPTED:
                turn.error = TurnError(
                    code=ErrorCode.TURN_INTERRUPTED,
                    message="the answer was stopped before it was complete; its text was saved",
                    retryable=True,
                )
        except TimeoutError:
            status = TurnStatus.FAILED
            turn.error = await self._report(
                request, None, f"the turn exceeded {self._settings.turn_max_s:g} s"
            )
        except ModelError as exc:
            status = TurnStatus.FAILED
            turn.error = await self._report(request, exc, exc.message)
        except StateUnavailable:
            # Redis went away mid-turn: its frames cannot be logged, so it cannot go on.
            status = TurnStatus.FAILED
            turn.error = self._store_lost(request)
        except BudgetExceeded as exc:
            status = TurnStatus.FAILED
            metrics.refused(exc.code)
            self._s.notices.turn_failed(
                owner,
                exc.code,
                exc.message,
                ref=exc.ref,
                retryable=exc.retryable,
                retry_after=exc.retry_after,
            )
            turn.error = TurnError(
                code=exc.code,
                message=exc.message,
                retryable=exc.retryable,
                retry_after=exc.retry_after,
            )
        except Exception:
            logger.exception("turn %s failed", turn.turn_id)
            status = TurnStatus.FAILED
            turn.error = await self._report(request, None, "the assistant failed unexpectedly")
        finally:
            renewer.cancel()
            await self._finish(turn, status)
            metrics.turns.ended(turn.turn_id, status.value)
            self._running.pop(turn.turn_id, None)
        await self.start_next(owner, request.conversation_id)

    async def _converse(self, turn: RunningTurn) -> None:
        request = turn.request
        owner = request.owner
        seqs = await self._publish(
            owner,
            Thinking(conversation_id=request.conversation_id, turn_id=turn.turn_id),
        )
        # Saved before any delta, so a snapshot that finds no saved text knows there is none.
        await self.save_text(turn, seqs[-1])
        await self._s.transcripts.start_assistant_message(
            owner, request.conversation_id, turn.turn_id, turn.message_id
        )
        history = await self._s.history.recent(owner, request.conversation_id)
        history = _up_to(history, request.user_message_id)
        tools = self._s.tools.openai_tools(frozenset(request.roles)) if self._s.tools else []
        # The host page's context may carry sensitive fields: the model never sees them.
        context = (
            redact_for_model(request.context, self._settings, source="context")
            if request.context
            else None
        )
        messages = build_window(
            system_prompt=self._settings.system_prompt,
            history=history,
            counter=self._s.model.counter,
            budget_tokens=self._settings.model_context_tokens
            - self._settings.model_max_output_tokens,
            tools=tools,
            context=context,
        )
        if request.note:
            note = redact_for_model(request.note, self._settings, source="action outcome")
            messages.append({"role": "system", "content": note})
        warned = False
        for _round in range(self._settings.tool_rounds_max + 1):
            # Budgets are checked on the exact prompt before every model call, with what the
            # turn's earlier rounds spent: a refused call costs nothing, and tool rounds
            # cannot run a turn past its budget.
            warning = await self._budgets.admit(
                owner,
                request.conversation_id,
                messages,
                tools,
                ref=request.client_msg_id or None,
                spent_in_turn=_sum_usage(turn.usage),
            )
            if warning is not None and not warned:
                warned = True
                self._s.notices.turn_failed(
                    owner, ErrorCode.BUDGET_WARNING, warning, ref=request.client_msg_id or None
                )
            reply = await self._model_round(turn, messages, tools)
            if not reply.tool_calls:
                break
            await self._s.tool_runner.run_round(turn, reply, messages)
        else:
            # The model kept calling tools past the limit; it gets no more rounds.
            await self._stream_note(turn, "\n\n(Stopped: too many tool steps in one answer.)")

    async def _model_round(
        self, turn: RunningTurn, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> ModelReply:
        batcher = DeltaBatcher(turn, self._settings, self._publish, self.save_text)
        try:
            reply = await self._s.model.stream(messages, tools, batcher.add)
        finally:
            await asyncio.shield(batcher.flush())
        if reply.usage is not None:
            turn.usage.append(reply.usage)
        return reply

    async def _stream_note(self, turn: RunningTurn, text: str) -> None:
        batcher = DeltaBatcher(turn, self._settings, self._publish, self.save_text)
        await batcher.add(text)
        await batcher.flush()

    async def _keep_lease(self, turn: RunningTurn) -> None:
        ttl = self._settings.turn_lease_ttl_s
        owner = turn.request.owner
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                kept = await self._s.leases.renew(
                    owner, turn.request.conversation_id, turn.turn_id, ttl
                )
            except Exception:
                logger.warning("turn %s: lease renewal failed; will retry", turn.turn_id)
                metrics.redis_error("lease")
                continue
            if not kept:
                logger.error("turn %s lost its lease; stopping it", turn.turn_id)
                self.cancel_local(turn.turn_id, TurnStatus.INTERRUPTED)
                return

    async def _finish(self, turn: RunningTurn, status: TurnStatus) -> None:
        """Save what the turn produced and tell every tab it ended; never raises."""
        request = turn.request
        owner = request.owner
        usage = _sum_usage(turn.usage)
        _close_open_calls(turn, status)
        try:
            wire_usage = None
            if usage is not None:
                wire_usage = Usage(
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    total_tokens=usage.total_tokens,
                    cost=self._s.model.cost_usd(usage),
                    model=self._s.model.model,
                    estimated=usage.estimated,
                )
            await self._s.transcripts.finish_assistant_message(
                turn.message_id,
                text=turn.text,
                status=status.value,
                tool_rounds=turn.tool_rounds,
                usage=_usage_dict(wire_usage),
            )
            if usage is not None and wire_usage is not None:
                metrics.model_usage(
                    wire_usage.model, usage.prompt_tokens, usage.completion_tokens, wire_usage.cost
                )
                await self._s.transcripts.record_usage(
                    UsageRecord(
                        tenant=request.tenant,
                        user_id=request.user,
                        conversation_id=request.conversation_id,
                        turn_id=turn.turn_id,
                        message_id=turn.message_id,
                        model=wire_usage.model,
                        prompt_tokens=usage.prompt_tokens,
                        completion_tokens=usage.completion_tokens,
                        total_tokens=usage.total_tokens,
                        cost_usd=_decimal(wire_usage.cost),
                        estimated=usage.estimated,
                    )
                )
            frames: list[object] = []
            if status == TurnStatus.COMPLETED and wire_usage is not None:
                frames.append(
                    Response(
                        conversation_id=request.conversation_id,
                        turn_id=turn.turn_id,
                        message_id=turn.message_id,
                        text=turn.text,
                        usage=wire_usage,
                    )
                )
            frames.append(
                TurnEnd(
                    conversation_id=request.conversation_id,
                    turn_id=turn.turn_id,
                    status=status,
                    error=turn.error if status != TurnStatus.COMPLETED else None,
                )
            )
            # One call number for every attempt: a repeat of an append that did reach Redis
            # is answered, not logged again.
            call = self._s.hub.new_call()
            await _through_outage(lambda: self._publish(owner, *frames, call=call))
        except Exception:
            logger.exception("turn %s: could not record its end", turn.turn_id)
        finally:
            # Until the lease is released, the conversation takes no other turn.
            with contextlib.suppress(Exception):
                await _through_outage(
                    lambda: self._s.leases.release(owner, request.conversation_id, turn.turn_id)
                )

    async def _report(
        self, request: TurnRequest, error: ModelError | None, message: str
    ) -> TurnError:
        """Tell the local tabs at once; the returned reason goes into the logged ``turn_end``."""
        if error is None:
            self._s.notices.turn_failed(
                request.owner, ErrorCode.INTERNAL_ERROR, message, ref=request.client_msg_id
            )
            return TurnError(
                code=ErrorCode.INTERNAL_ERROR,
                message=message,
                retryable=ERROR_INFO[ErrorCode.INTERNAL_ERROR].retryable,
            )
        self._s.notices.turn_failed(
            request.owner,
            error.code,
            message,
            ref=request.client_msg_id,
            retryable=error.retryable,
            retry_after=error.retry_after,
        )
        return TurnError(
            code=error.code,
            message=message,
            retryable=error.retryable,
            retry_after=error.retry_after,
        )

    def _store_lost(self, request: TurnRequest) -> TurnError:
        code = ErrorCode.STORE_UNAVAILABLE
        message = "the state store became unreachable; the answer so far was saved"
        self._s.notices.turn_failed(request.owner, code, message, ref=request.client_msg_id)
        return TurnError(code=code, message=message, retryable=ERROR_INFO[code].retryable)

    async def save_text(self, turn: RunningTurn, seq: int) -> None:
        """Save the turn's text so far, which ends with the frame ``seq`` (see snapshot.py)."""
        await self._s.leases.save_partial(
            turn.request.owner,
            turn.turn_id,
            orjson.dumps({"text": turn.text, "seq": seq}).decode(),
            self._settings.turn_lease_ttl_s * 4,
        )
        if self._settings.embedded_state and turn.text:
            await self._s.transcripts.save_partial_text(turn.message_id, turn.text)

    async def _publish(self, owner: UserKey, *frames: object, call: int | None = None) -> list[int]:
        encoded = [encode(frame) for frame in frames]  # type: ignore[arg-type]
        logged = await self._s.hub.publish(owner, encoded, call=call)
        return [frame.seq for frame in logged]


async def _through_outage(call: Callable[[], Awaitable[Any]]) -> None:
    """Run ``call``, again after short pauses while Redis is unreachable (a restart, a
    failover), for a few seconds at most; then let ``StateUnavailable`` through.

    Both uses are safe to repeat: releasing a lease twice changes nothing, and the final
    frames are appended under one call number, so an attempt that reached Redis although its
    reply was lost is not logged again.
    """
    for pause in OUTAGE_RETRY_PAUSES_S:
        try:
            await call()
            return
        except StateUnavailable:
            await asyncio.sleep(pause)
    await call()


def _up_to(history: list[Any], message_id: str) -> list[Any]:
    """The history up to and including ``message_id`` (later queued messages wait their turn)."""
    for index, message in enumerate(history):
        if message.id == message_id:
            return history[: index + 1]
    return history


def _close_open_calls(turn: RunningTurn, status: TurnStatus) -> None:
    """Give every tool call without a result one saying why (invariant 6)."""
    for round_ in turn.tool_rounds:
        answered = {result["tool_call_id"] for result in round_["results"]}
        for call in round_["calls"]:
            if call["id"] not in answered:
                note = turn.awaiting.get(call["id"])
                outcome = (
                    {"status": "awaiting_confirmation", "note": note}
                    if note
                    else {"error": f"not carried out: the turn ended ({status.value})"}
                )
                round_["results"].append(
                    {
                        "tool_call_id": call["id"],
                        "name": call["function"]["name"],
                        "content": orjson.dumps(outcome).decode(),
                    }
                )


def _sum_usage(parts: list[ModelUsage]) -> ModelUsage | None:
    if not parts:
        return None
    return ModelUsage(
        prompt_tokens=sum(part.prompt_tokens for part in parts),
        completion_tokens=sum(part.completion_tokens for part in parts),
        estimated=any(part.estimated for part in parts),
    )


def _usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": usage.cost,
        "model": usage.model,
        "estimated": usage.estimated,
    }


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))
