"""Abuse and cost limits: how much one socket, user, address or tenant may ask of Parley.

Every limit is a setting (``server/config.py``, 0 turns it off) and every refusal is one
``error`` frame with a code from the protocol and, where waiting helps, ``retry_after``:

* frames per socket: a token bucket on the worker holding the socket (``frames_per_second``
  sustained, ``frame_burst`` at once); above it the socket is closed with 1008 (``flooding``);
* open sockets per user and per client address: counted in Redis across workers (``Presence``),
  each socket renewing its place; above the limit the new socket is closed with 4429;
* user messages per user and per tenant, actions executed per user, and ``confirm`` frames
  that decided nothing per user: fixed windows in Redis (``WindowCounter``), refused with
  ``rate_limited`` until the window ends;
* messages per conversation: ``conversation_full``.

Token and cost budgets are the turn's business: ``server/turns/budgets.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

from protocol import CloseCode, ErrorCode
from server.config import Settings
from server.errors import ClientError, CloseSocket
from storage.errors import NotFound
from storage.keys import UserKey, tenant_counter, user_counter
from storage.redis_client import RedisClient
from storage.small_stores import Presence, WindowCounter
from storage.transcripts import TranscriptStore

logger = logging.getLogger(__name__)

# Client addresses are counted in a presence set of their own. Tokens cannot name an empty
# tenant (server/security/auth.py refuses one), so this owner never collides with a real
# user's keys.
_ADDRESS_TENANT = ""


# -- frames per socket -------------------------------------------------------------------------


class FrameRate:
    """A token bucket for one socket's incoming frames (local: a socket lives on one worker)."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._rate = per_second
        self._burst = float(max(burst, 1))
        self._tokens = self._burst
        self._last = time.monotonic()

    def take(self) -> bool:
        """Spend one frame; False when the socket is sending faster than allowed."""
        if self._rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


# -- connections -------------------------------------------------------------------------------


class ConnectionSlots:
    """One socket's places in the per-address and per-user connection counts.

    A place is an entry in a Redis presence set with a TTL, renewed while the socket lives, so
    the count spans workers and a worker that dies stops holding places within the TTL.
    """

    def __init__(self, presence: Presence, connection_id: str, *, ttl_s: float) -> None:
        self._presence = presence
        self._id = connection_id
        self._ttl_s = ttl_s
        self._held: list[UserKey] = []
        self._renewer: asyncio.Task[None] | None = None

    async def claim_address(self, address: str | None, limit: int) -> None:
        """Take a place among the sockets of one client address.

        Raises:
            CloseSocket: the address already has ``limit`` sockets open (4429).
            StateUnavailable: Redis could not be reached.
        """
        if limit <= 0 or not address:
            return
        await self._claim(UserKey(_ADDRESS_TENANT, address), limit, "this address")

    async def claim_user(self, owner: UserKey, limit: int) -> None:
        """Take a place among the user's sockets.

        Raises:
            CloseSocket: the user already has ``limit`` sockets open (4429).
            StateUnavailable: Redis could not be reached.
        """
        if limit <= 0:
            return
        await self._claim(owner, limit, "this user")

    async def _claim(self, owner: UserKey, limit: int, whose: str) -> None:
        live = await self._presence.touch(owner, self._id, self._ttl_s)
        if live > limit:
            await self._presence.leave(owner, self._id)
            raise CloseSocket(
                CloseCode.TOO_MANY_CONNECTIONS,
                f"too many connections for {whose} (at most {limit})",
                ErrorCode.TOO_MANY_CONNECTIONS,
            )
        self._held.append(owner)
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew(), name=f"slots {self._id}")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            for owner in list(self._held):
                try:
                    await self._presence.touch(owner, self._id, self._ttl_s)
                except Exception:
                    logger.warning("connection %s: could not renew its connection slot", self._id)

    async def release(self) -> None:
        """Give every place back; never raises."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
        for owner in self._held:
            with contextlib.suppress(Exception):
                await self._presence.leave(owner, self._id)
        self._held.clear()


# -- requests per window -----------------------------------------------------------------------


class Limits:
    """The per-socket and per-request limits of one worker's sockets."""

    def __init__(
        self, settings: Settings, redis: RedisClient, transcripts: TranscriptStore
    ) -> None:
        self._settings = settings
        self._transcripts = transcripts
        self._counter = WindowCounter(redis, prefix=settings.redis_prefix)
        self._presence = Presence(redis, prefix=settings.redis_prefix)

    def frame_rate(self) -> FrameRate:
        """A fresh frame bucket for a new socket."""
        return FrameRate(self._settings.frames_per_second, self._settings.frame_burst)

    def connection_slots(self, connection_id: str) -> ConnectionSlots:
        """The connection-count places of a new socket."""
        return ConnectionSlots(
            self._presence, connection_id, ttl_s=self._settings.connection_presence_ttl_s
        )

    async def admit_message(
        self,
        owner: UserKey,
        conversation_id: str | None,
        client_msg_id: str,
        *,
        max_messages: int | None = None,
    ) -> None:
        """Check a user message against the conversation size and the message rates.

        ``max_messages`` is the conversation's own limit (its profile's); None takes
        ``max_messages_per_conversation``.

        A resend of a message that was already accepted is always let through: it runs
        nothing again, and refusing it would leave the client unsure whether it was stored.

        Raises:
            ClientError: ``conversation_not_found``, ``conversation_full`` or ``rate_limited``.
            StateUnavailable: Redis could not be reached.
        """
        try:
            await self._check_conversation_size(owner, conversation_id, client_msg_id, max_messages)
            await self._check_message_rates(owner, client_msg_id)
        except ClientError:
            if await self._transcripts.message_by_client_msg_id(owner, client_msg_id):
                return
            raise

    async def _check_conversation_size(
        self, owner: UserKey, conversation_id: str | None, ref: str, max_messages: int | None
    ) -> None:
        limit = (
            self._settings.max_messages_per_conversation if max_messages is None else max_messages
        )
        if conversation_id is None or limit <= 0:
            return
        try:
            conversation = await self._transcripts.conversation(owner, conversation_id)
        except NotFound:
            raise ClientError(
                ErrorCode.CONVERSATION_NOT_FOUND,
                f"conversation '{conversation_id}' not found",
                ref=ref,
            ) from None
        if conversation.message_count >= limit:
            raise ClientError(
                ErrorCode.CONVERSATION_FULL,
                f"conversation '{conversation_id}' holds {limit} messages; start a new one",
                ref=ref,
            )

    async def _check_message_rates(self, owner: UserKey, ref: str) -> None:
        settings = self._settings
        await self._hit(
            user_counter("msg", owner.tenant, owner.user),
            settings.user_messages_per_minute,
            "messages from this user",
            ref,
        )
        await self._hit(
            tenant_counter("msg", owner.tenant),
            settings.tenant_messages_per_minute,
            "messages in this tenant",
            ref,
        )

    async def admit_action(self, owner: UserKey, token: str) -> None:
        """Count an action that is about to execute (an approval that won its confirmation).

        Raises:
            ClientError: ``rate_limited``; the caller puts the confirmation back to pending.
            StateUnavailable: Redis could not be reached.
        """
        await self._hit(
            user_counter("act", owner.tenant, owner.user),
            self._settings.actions_per_minute,
            "actions approved by this user",
            token,
        )

    async def admit_refused_confirm(self, owner: UserKey, token: str) -> None:
        """Count a ``confirm`` that decided nothing (unknown, foreign, expired or already
        decided): cheap to refuse, but a client that sends them in a loop is stopped here.

        Raises:
            ClientError: ``rate_limited``.
            StateUnavailable: Redis could not be reached.
        """
        await self._hit(
            user_counter("refused-confirm", owner.tenant, owner.user),
            self._settings.refused_confirms_per_minute,
            "confirmations that decided nothing",
            token,
        )

    async def _hit(self, counter: str, limit: int, what: str, ref: str) -> None:
        if limit <= 0:
            return
        window = self._settings.rate_window_s
        allowed, _, retry_after = await self._counter.hit(counter, limit, window)
        if not allowed:
            raise ClientError(
                ErrorCode.RATE_LIMITED,
                f"too many {what}: at most {limit} per {window:g} s",
                retryable=True,
                ref=ref,
                retry_after=math.ceil(retry_after * 10) / 10,
            )
