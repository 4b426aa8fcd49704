"""The turn engine: owns a turn's life from the user's message to ``turn_end``.

:meth:`TurnEngine.accept` takes a ``user_message`` through admission (limits), the
double-texting policy, storage, dedupe of resends, the mirror to every tab, and starts or
queues its turn. A turn runs as a task of the worker that claimed the conversation's turn slot,
under a lease in Redis that it renews while it runs (invariant 3). It does not belong to any
socket: every frame it makes goes into the user's frame stream, so closing tabs changes nothing
and any tab, on any worker, sees the same turn. Only ``cancel``, the turn time limit, a lost
lease or the worker's shutdown stop it early, and each of those ends it with a ``turn_end``
and the partial text saved. :meth:`TurnEngine.end_turn` is the one way a turn ends, here or
in the sweeper for a turn whose worker died.

Decisions on confirmations come here too (:meth:`TurnEngine.decide`), from a card's buttons or
typed as a yes or a no: the tool runner applies them, and the engine starts a continuation turn
that tells the model the outcome. No turn ever waits for a decision (invariant 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from protocol import Confirm, ErrorCode, Role, TurnEnd, TurnStatus, UserMessage, encode
from protocol import Message as MessageFrame
from server.config import Settings
from server.errors import ClientError, Failure, TurnRejected
from server.ops import metrics
from server.ops.logs import bind_log_context
from server.profiles.catalog import Profile, ProfileCatalog
from server.security.auth import Principal
from server.security.limits import Limits
from server.stream.conversation_frames import announce_started
from server.stream.hub import FrameHub
from server.stream.notices import Notices
from server.turns.action_outcomes import outcome_note
from server.turns.approvals import DecisionWords
from server.turns.tool_runner import ToolRunner
from server.turns.turn_loop import TurnLoop
from server.turns.turn_state import RunningTurn, TurnRequest
from storage.confirmation_states import ConfirmationState, DecisionVia
from storage.control_messages import CancelTurn, StartNext
from storage.errors import NotFound, StateUnavailable
from storage.keys import UserKey
from storage.leases import TurnClaim, TurnLeases
from storage.models import Confirmation, new_id
from storage.small_stores import ControlChannel
from storage.transcripts import TranscriptStore
from storage.turn_queue import TurnQueue

logger = logging.getLogger(__name__)

# How a turn's last writes (its final frames, its lease release) wait out a Redis outage.
OUTAGE_RETRY_PAUSES_S = (0.2, 0.4, 0.8, 1.6, 2.0)

# A typed decision that finds its approval decided or expired meanwhile is a plain message.
_DECIDED_MEANWHILE = frozenset({ErrorCode.CONFIRMATION_NOT_PENDING, ErrorCode.CONFIRMATION_EXPIRED})

# A resent message among the conversation's newest this many was possibly never run.
RESEND_LOOKBACK_MESSAGES = 5

# The refusals of a ``confirm`` that decided nothing; counted on their own (see Limits).
_REFUSED_CONFIRM = frozenset(
    {
        ErrorCode.CONFIRMATION_NOT_FOUND,
        ErrorCode.CONFIRMATION_NOT_PENDING,
        ErrorCode.CONFIRMATION_EXPIRED,
        ErrorCode.FORBIDDEN,
    }
)


class TurnEngine:
    """Accepts messages and decisions, and starts, queues, runs, cancels and ends turns on
    this worker."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        limits: Limits,
        transcripts: TranscriptStore,
        leases: TurnLeases,
        queue: TurnQueue,
        control: ControlChannel,
        hub: FrameHub,
        notices: Notices,
        tool_runner: ToolRunner,
        loop: TurnLoop,
        profiles: ProfileCatalog,
    ) -> None:
        self._settings = settings
        self._worker_id = worker_id
        self._limits = limits
        self._transcripts = transcripts
        self._leases = leases
        self._queue = queue
        self._control = control
        self._hub = hub
        self._notices = notices
        self._tool_runner = tool_runner
        self._loop = loop
        self._profiles = profiles
        self._running: dict[str, RunningTurn] = {}
        # Turns of this worker that stopped running and are being ended: their slot is still
        # held until end_turn releases it, but there is nothing left to cancel.
        self._ending: set[str] = set()
        # Claims this worker holds only to look at a conversation's queue (start_next): no
        # turn runs under them either.
        self._probing: set[str] = set()
        self._accepting = True
        self._decision_words = DecisionWords(settings.confirm_yes_words, settings.confirm_no_words)

    @property
    def accepting(self) -> bool:
        """False once the worker began shutting down: it starts no more turns."""
        return self._accepting

    @property
    def running(self) -> dict[str, RunningTurn]:
        return self._running

    # -- user messages -------------------------------------------------------------------------

    async def accept(
        self, principal: Principal, frame: UserMessage, connection_id: str | None = None
    ) -> MessageFrame | None:
        """Take a user message from admission to its turn; ``connection_id`` names the tab
        that sent it, where the turn's page tool calls run first.

        A message that is only a yes or a no while exactly one approval is open in its
        conversation decides that approval (as the card's button would, ``via: "typed"``)
        instead of starting a turn of its own; the decision's continuation turn answers it.

        Returns the ``message`` frame to send the sending tab alone, when ``frame`` resends a
        message that was already taken up (its first ack may have been lost); None otherwise,
        the mirror having gone to every tab through the stream.

        Raises:
            ClientError: an empty or too long text, an unknown conversation, an unknown or
                forbidden profile, a limit, or the double-texting policy refused it; nothing
                was stored then.
            StateUnavailable: Redis could not be reached.
        """
        owner = UserKey(tenant=principal.tenant, user=principal.user)
        ref = frame.client_msg_id
        if not frame.text.strip():
            raise ClientError(ErrorCode.INVALID_FIELD, "field 'text' must not be empty", ref=ref)
        if len(frame.text) > self._settings.max_message_chars:
            raise ClientError(
                ErrorCode.MESSAGE_TOO_LONG,
                f"message longer than {self._settings.max_message_chars} characters",
                ref=ref,
            )
        # Refuse before storing, so a refused message leaves no trace in the transcript.
        profile = await self._profile_of(owner, principal, frame)
        await self._limits.admit_message(
            owner, frame.conversation_id, ref, max_messages=profile.max_messages_per_conversation
        )
        typed = await self._typed_decision(owner, frame)
        try:
            if typed is None:
                # A decision never waits for the conversation, so nothing is refused for it.
                await self._check_room(owner, frame.conversation_id, ref)
        except ClientError:
            # A resend of a stored message is acknowledged again below, whatever runs now.
            if await self._transcripts.message_by_client_msg_id(owner, ref) is None:
                raise
        try:
            conversation, message, is_new = await self._transcripts.add_user_message(
                owner, frame.conversation_id, text=frame.text, client_msg_id=ref, profile=profile.id
            )
        except NotFound:
            raise ClientError(
                ErrorCode.CONVERSATION_NOT_FOUND,
                f"conversation '{frame.conversation_id}' not found",
                ref=ref,
            ) from None
        mirror = MessageFrame(
            conversation_id=conversation.id,
            message_id=message.id,
            client_msg_id=ref,
            role=Role.USER,
            text=message.text,
        )
        if not is_new and await self._taken_up(owner, conversation.id, message.id):
            # A resend after a reconnect: acknowledge it again, run nothing twice.
            return mirror
        # New, or stored by an earlier attempt that failed before its turn was started or
        # queued (Redis was unreachable): carry it through now.
        await self._hub.publish(owner, [encode(mirror), *announce_started(frame, conversation)])
        if typed is not None and is_new:
            try:
                await self.decide(principal, typed, connection_id or "", via=DecisionVia.TYPED)
                return None
            except ClientError as exc:
                # Decided or expired meanwhile (another tab, the sweeper): then the words are
                # an ordinary message after all. Anything else (a limit) is the answer.
                if exc.code not in _DECIDED_MEANWHILE:
                    raise
        await self.submit(
            TurnRequest(
                tenant=owner.tenant,
                user=owner.user,
                roles=sorted(principal.roles),
                conversation_id=conversation.id,
                user_message_id=message.id,
                client_msg_id=ref,
                context=dict(frame.context) if frame.context else None,
                # Only tool sources may pass the user's token on; without them it is not kept.
                user_token=principal.token if self._settings.tool_sources else None,
                connection_id=connection_id,
            )
        )
        return None

    async def _profile_of(
        self, owner: UserKey, principal: Principal, frame: UserMessage
    ) -> Profile:
        """The profile the message runs under: the one a new conversation names (or the
        default), else the conversation's own; ``frame.profile`` on a later message is ignored.

        Raises:
            ClientError: ``profile_not_found``, ``forbidden`` (the user's roles do not allow
                the profile) or ``conversation_not_found``.
        """
        ref = frame.client_msg_id
        if frame.conversation_id is None:
            return self._profiles.choose(frame.profile, principal.roles, ref=ref)
        try:
            conversation = await self._transcripts.conversation(owner, frame.conversation_id)
        except NotFound:
            raise ClientError(
                ErrorCode.CONVERSATION_NOT_FOUND,
                f"conversation '{frame.conversation_id}' not found",
                ref=ref,
            ) from None
        profile = self._profiles.of_conversation(conversation.profile)
        self._profiles.check_allowed(profile, principal.roles, ref=ref)
        return profile

    async def _typed_decision(self, owner: UserKey, frame: UserMessage) -> Confirm | None:
        """The decision a yes or no message makes: on the conversation's one open approval;
        None for any other message, or when none or several are open (the turn then asks)."""
        if frame.conversation_id is None:
            return None
        decision = self._decision_words.decision(frame.text)
        if decision is None:
            return None
        pending = await self._tool_runner.confirmations.pending_in(
            owner, frame.conversation_id, limit=2
        )
        if len(pending) != 1:
            return None
        return Confirm(token=pending[0].token, decision=decision)

    async def _taken_up(self, owner: UserKey, conversation_id: str, message_id: str) -> bool:
        """Whether a stored user message was answered, is being answered, or waits its turn."""
        recent = await self._transcripts.recent_messages(
            owner, conversation_id, limit=RESEND_LOOKBACK_MESSAGES
        )
        ids = [row.id for row in recent]
        if message_id not in ids or ids[-1] != message_id:
            return True  # something came after it
        if await self._leases.holder(owner, conversation_id) is not None:
            return True
        return await self._queue.waiting(owner, conversation_id) > 0

    async def _check_room(self, owner: UserKey, conversation_id: str | None, ref: str) -> None:
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
        if await self._leases.holder(owner, conversation_id) is None:
            return
        if policy == "reject":
            raise self._busy(ref)
        waiting = await self._queue.waiting(owner, conversation_id)
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
        queued = await self._queue.push(
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

    async def continue_after(
        self,
        confirmation: Confirmation,
        roles: frozenset[str] = frozenset(),
        user_token: str | None = None,
    ) -> None:
        """Tell the model what became of an approval (decided, expired): a short continuation
        turn that answers a note. It follows the conversation's queue like any message, but is
        never refused: the decision has been made, the model must hear of it."""
        request = TurnRequest(
            tenant=confirmation.tenant,
            user=confirmation.user_id,
            roles=sorted(roles),
            conversation_id=confirmation.conversation_id,
            user_message_id="",
            client_msg_id="",
            note=outcome_note(confirmation, self._settings.tool_result_max_chars),
            user_token=user_token if self._settings.tool_sources else None,
        )
        queued = await self._queue.push(
            request.owner,
            request.conversation_id,
            request.dumps(),
            limit=self._settings.turn_queue_max + 1,
        )
        if not queued:
            logger.warning(
                "conversation %s: queue full; the outcome of %s is not reported to the model",
                confirmation.conversation_id,
                confirmation.token,
            )
            return
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
                worker_id=self._worker_id,
                started_at=time.time(),
            )
            leases = self._leases
            self._probing.add(turn_id)
            try:
                if await leases.acquire(owner, claim, self._settings.turn_lease_ttl_s) is not None:
                    return  # the slot is busy; its holder pops the queue when it ends
                entry = await self._queue.pop(owner, conversation_id)
                if entry is not None:
                    self._launch(TurnRequest.loads(entry), claim)
                    return
                await leases.release(owner, conversation_id, turn_id)
            finally:
                self._probing.discard(turn_id)
            # Someone may have queued while we held the slot and then failed to claim it
            # because of us: look once more, or their message would wait for nobody.
            if not await self._queue.waiting(owner, conversation_id):
                return

    async def _hand_off(self, owner: UserKey, conversation_id: str) -> None:
        """Ask the other workers to run what waits for the conversation (this one is leaving)."""
        if await self._queue.waiting(owner, conversation_id):
            await self._control.publish(StartNext(owner=owner, conversation_id=conversation_id))

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
            worker_id=self._worker_id,
            started_at=time.time(),
        )
        holder = await self._leases.acquire(request.owner, claim, self._settings.turn_lease_ttl_s)
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
        holder = await self._leases.holder(owner, conversation_id)
        if holder is None or (turn_id is not None and holder != turn_id):
            return False
        if holder in self._ending or holder in self._probing:
            return False
        if self.cancel_local(holder, TurnStatus.CANCELLED):
            return True
        await self._control.publish(CancelTurn(turn_id=holder))
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

    # -- decisions on confirmations ------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        frame: Confirm,
        connection_id: str,
        *,
        via: DecisionVia = DecisionVia.BUTTON,
    ) -> None:
        """Apply a user's ``confirm`` (``via`` a button or a typed yes/no), whatever turn runs,
        then continue the conversation with a short turn that reports the outcome.

        Raises:
            ClientError: the confirmation is unknown, not the user's, expired or decided, its
                edited parameters do not fit (``invalid_params``), or a limit refused it.
            StateUnavailable: Redis could not be reached.
        """
        owner = UserKey(tenant=principal.tenant, user=principal.user)
        profile = await self._profile_for_decision(owner, frame.token)
        try:
            decided = await self._tool_runner.decide(
                principal,
                frame,
                connection_id,
                self._limits.admit_action,
                via=via,
                profile=profile,
            )
        except ClientError as exc:
            if exc.code in _REFUSED_CONFIRM:
                await self._limits.admit_refused_confirm(owner, frame.token)
            raise
        await self.continue_after(decided, principal.roles, principal.token)

    async def _profile_for_decision(self, owner: UserKey, token: str) -> Profile | None:
        """The profile of the conversation a confirmation belongs to, as it is now: the action
        must still be one it offers. None when there is no such confirmation of ``owner``'s or
        conversation (the tool runner then refuses the decision or skips the check)."""
        found = await self._tool_runner.confirmations.get(token)
        if found is None or (found.tenant, found.user_id) != (owner.tenant, owner.user):
            return None
        try:
            conversation = await self._transcripts.conversation(owner, found.conversation_id)
        except NotFound:
            return None
        return self._profiles.of_conversation(conversation.profile)

    async def expire_overdue(self) -> int:
        """Expire confirmations nobody decided in time and report each to its conversation
        with a continuation turn. Returns how many were expired here."""
        expired = await self._tool_runner.expire_overdue()
        for confirmation in expired:
            await self.continue_after(confirmation)
        return len(expired)

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
        failure: Failure | None = None
        try:
            async with asyncio.timeout(self._settings.turn_max_s):
                await self._loop.converse(turn)
        except asyncio.CancelledError:
            status = turn.stop_status or TurnStatus.CANCELLED
            if status == TurnStatus.INTERRUPTED:
                failure = Failure(
                    ErrorCode.TURN_INTERRUPTED,
                    "the answer was stopped before it was complete; its text was saved",
                    retryable=True,
                )
        except Exception as exc:
            # A state-store outage stops the turn with its text so far saved: interrupted, as
            # when its worker dies; anything else is a failure.
            interrupted = isinstance(exc, StateUnavailable)
            status = TurnStatus.INTERRUPTED if interrupted else TurnStatus.FAILED
            failure = self._failure_of(turn, exc)
            # The tabs on this worker hear it at once; every tab reads it in turn_end.
            self._notices.turn_failed(owner, failure, ref=_ref_of(exc) or request.client_msg_id)
        finally:
            renewer.cancel()
            await self._finish(turn, status, failure)

    async def _finish(self, turn: RunningTurn, status: TurnStatus, failure: Failure | None) -> None:
        """Save the turn's reply and end it for every tab, unless it was ended elsewhere."""
        request = turn.request
        self._ending.add(turn.turn_id)
        if not await self._still_holds_lease(turn):
            # A Redis outage outlasted the lease: a sweeper ended the turn for every tab and
            # kept its reply as the log had it. Ending it again would log a second turn_end.
            logger.warning("turn %s: its lease lapsed and it was ended elsewhere", turn.turn_id)
            metrics.turns.ended(turn.turn_id, TurnStatus.INTERRUPTED.value)
            self._running.pop(turn.turn_id, None)
            self._ending.discard(turn.turn_id)
            return
        response = None
        try:
            response = await self._loop.save_reply(turn, status)
        except Exception:
            logger.exception("turn %s: could not save its reply", turn.turn_id)
        awaiting = await self._still_pending(turn)
        metrics.turns.ended(turn.turn_id, status.value)
        self._running.pop(turn.turn_id, None)
        await self.end_turn(
            request.owner,
            request.conversation_id,
            turn.turn_id,
            status,
            failure,
            response=response,
            awaiting=awaiting,
        )

    async def _still_pending(self, turn: RunningTurn) -> tuple[str, ...]:
        """The tokens of the approvals this turn asked for that nobody decided yet."""
        pending = []
        for token in turn.awaiting.values():
            try:
                row = await self._tool_runner.confirmations.get(token)
            except Exception:
                logger.warning("turn %s: could not read confirmation %s", turn.turn_id, token)
                continue
            if row is not None and row.status == ConfirmationState.PENDING:
                pending.append(token)
        return tuple(pending)

    async def _still_holds_lease(self, turn: RunningTurn) -> bool:
        """Whether this worker still holds the turn's lease (renewing it to end the turn).

        When Redis cannot tell, the turn is ended here: a turn that never ends is worse.
        """
        request = turn.request
        try:
            ttl = self._settings.turn_lease_ttl_s
            return await self._leases.renew(
                request.owner, request.conversation_id, turn.turn_id, ttl
            )
        except Exception:
            return True

    def _failure_of(self, turn: RunningTurn, exc: Exception) -> Failure:
        if isinstance(exc, TimeoutError):
            return Failure.of(
                ErrorCode.INTERNAL_ERROR, f"the turn exceeded {self._settings.turn_max_s:g} s"
            )
        if isinstance(exc, StateUnavailable):
            # Redis went away mid-turn: its frames cannot be logged, so it cannot go on.
            return Failure.of(
                ErrorCode.STORE_UNAVAILABLE,
                "the state store became unreachable; the answer so far was saved",
            )
        if isinstance(exc, ClientError):
            metrics.refused(exc.code)  # a budget refused the model call
        failure = Failure.from_exception(exc)
        if failure.code == ErrorCode.INTERNAL_ERROR:
            logger.error("turn %s failed", turn.turn_id, exc_info=exc)
        return failure

    async def end_turn(
        self,
        owner: UserKey,
        conversation_id: str,
        turn_id: str,
        status: TurnStatus,
        failure: Failure | None,
        *,
        response: object | None = None,
        awaiting: tuple[str, ...] = (),
    ) -> None:
        """End a turn for every tab: its final frames (``response``, if it completed, and
        ``turn_end`` with the failure that ended it and the approvals it left open), the
        conversation's slot released, and the next waiting message started. Used for turns
        that ran here and, by the sweeper, for turns whose worker died. Never raises."""
        frames: list[object] = [] if response is None else [response]
        frames.append(
            TurnEnd(
                conversation_id=conversation_id,
                turn_id=turn_id,
                status=status,
                error=failure.turn_error() if failure is not None else None,
                awaiting=awaiting or None,
            )
        )
        # One call number for every attempt: a repeat of an append that did reach Redis is
        # answered, not logged again.
        call = self._hub.new_call()
        encoded = [encode(frame) for frame in frames]  # type: ignore[arg-type]
        try:
            await _through_outage(lambda: self._hub.publish(owner, encoded, call=call))
        except Exception:
            logger.exception("turn %s: could not record its end", turn_id)
        # Until the lease is released, the conversation takes no other turn.
        with contextlib.suppress(Exception):
            await _through_outage(lambda: self._leases.release(owner, conversation_id, turn_id))
        self._ending.discard(turn_id)
        try:
            await self.start_next(owner, conversation_id)
        except Exception as exc:
            # The sweeper starts messages that wait with no turn running.
            logger.warning("turn %s: could not start the next message: %s", turn_id, exc)

    async def _keep_lease(self, turn: RunningTurn) -> None:
        ttl = self._settings.turn_lease_ttl_s
        owner = turn.request.owner
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                kept = await self._leases.renew(
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


def _ref_of(exc: Exception) -> str | None:
    return exc.ref if isinstance(exc, ClientError) else None


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
