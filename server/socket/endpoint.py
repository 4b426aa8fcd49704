"""The WebSocket endpoint: handshake, frame dispatch, and the one place where failures become
``error`` frames and close codes.

A socket lives in two phases. Until a valid ``hello`` it may only authenticate (anything else
is answered with ``hello_required``) and it is closed with 4400 if none arrives in time. After
``ready`` it carries the user's frames both ways. Bad frames are answered and the socket stays
open (invariant 7); only a bad token, an unsupported protocol version, an oversized frame or
flooding close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from protocol import (
    ERROR_INFO,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Cancel,
    ClientFrame,
    CloseCode,
    Confirm,
    ErrorCode,
    Feedback,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Typing,
    UserMessage,
    decode_client,
    encode,
)
from server.config import Settings
from server.errors import ClientError, CloseSocket, Failure
from server.feedback import record_feedback
from server.ops import metrics
from server.ops.logs import bind_log_context
from server.security.auth import AuthError, Principal, TokenVerifier
from server.security.limits import Limits
from server.socket.connection import Connection, SendLimits
from server.stream.hub import FrameHub, ReplayLimit
from server.stream.snapshot import Snapshots
from server.turns.engine import TurnEngine
from storage.errors import StateUnavailable
from storage.feedback import FeedbackStore
from storage.keys import UserKey

logger = logging.getLogger(__name__)

# PostgreSQL cannot store U+0000 in text, so no string in a frame may hold it. JSON can only
# spell it as an escape (a raw control character is not valid JSON): a backslash-u0000 that is
# not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, slots=True)
class SocketParts:
    """What the sockets of a worker work with; assembled once, kept at ``app.state.socket``."""

    settings: Settings
    verifier: TokenVerifier
    limits: Limits
    hub: FrameHub
    snapshots: Snapshots
    engine: TurnEngine
    feedback: FeedbackStore


async def websocket_endpoint(websocket: WebSocket) -> None:
    await SocketSession(websocket, websocket.app.state.socket).run()


class SocketSession:
    """One accepted socket, from ``hello`` to close."""

    def __init__(self, websocket: WebSocket, parts: SocketParts) -> None:
        self.websocket = websocket
        self.parts = parts
        self.settings = parts.settings
        self.verifier = parts.verifier
        self.tab = Connection(
            websocket,
            SendLimits(
                max_frames=self.settings.send_queue_frames,
                max_bytes=self.settings.send_queue_bytes,
                close_timeout_s=self.settings.send_close_timeout_s,
            ),
        )
        self.principal: Principal | None = None
        self.owner: UserKey | None = None
        self.frame_rate = parts.limits.frame_rate()
        self.slots = parts.limits.connection_slots(self.tab.id)
        self._reauth_deadline: float | None = None
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            UserMessage: self._on_user_message,
            Cancel: self._on_cancel,
            Typing: self._on_typing,
            Ping: self._on_ping,
            Confirm: self._on_confirm,
            Feedback: self._on_feedback,
            Hello: self._on_hello_again,
        }

    async def run(self) -> None:
        await self.websocket.accept()
        bind_log_context(connection=self.tab.id)
        metrics.CONNECTIONS_OPEN.inc()
        self.tab.start()
        log_id = self.tab.id
        try:
            await self._handshake()
            await self._serve()
        except CloseSocket as close:
            logger.info("connection %s closed: %s (%d)", log_id, close.reason, close.code)
            if close.error is not None:
                # 4429's error says "retry later"; every other closing error is final.
                retryable = ERROR_INFO[close.error].retryable
                self._send_error(close.error, close.reason, retryable=retryable)
            self.tab.close(close.code, close.reason)
        except WebSocketDisconnect as gone:
            logger.info("connection %s: the peer left (%s)", log_id, gone.code)
        except StateUnavailable as exc:
            # Only the handshake gets here (requests answer it with an error frame): the tab
            # cannot be attached to its stream now, and may try again shortly.
            logger.warning("connection %s: %s", log_id, exc)
            self._send_error(
                ErrorCode.STORE_UNAVAILABLE,
                "state store unavailable, try again shortly",
                retryable=True,
            )
            self.tab.close(CloseCode.TRY_AGAIN_LATER, "state store unavailable")
        except Exception:
            logger.exception("connection %s failed", log_id)
            self._send_error(ErrorCode.INTERNAL_ERROR, "internal error", retryable=True)
            self.tab.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            metrics.CONNECTIONS_OPEN.dec()
            await self._leave()

    # -- phases --------------------------------------------------------------------------------

    async def _handshake(self) -> None:
        client = self.websocket.client
        await self.slots.claim_address(
            client.host if client else None, self.settings.max_connections_per_ip
        )
        deadline = time.monotonic() + self.settings.hello_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CloseSocket(CloseCode.BAD_HELLO, "no valid hello in time")
            text = await self._receive(wait_s=remaining)
            if text is None:
                raise CloseSocket(CloseCode.BAD_HELLO, "no valid hello in time")
            try:
                frame = decode_frame(text)
                metrics.frame_received(frame.type)
            except ProtocolError as exc:
                self._send_error(exc.code, exc.message)
                continue
            if not isinstance(frame, Hello):
                self._send_error(ErrorCode.HELLO_REQUIRED, "send hello first")
                continue
            await self._accept_hello(frame)
            return

    async def _serve(self) -> None:
        while True:
            timeout = None
            if self._reauth_deadline is not None:
                timeout = max(0.0, self._reauth_deadline - time.monotonic())
            elif self.principal is not None:
                timeout = max(0.0, self.principal.expires_at - time.time())
            text = await self._receive(wait_s=timeout)
            if text is None:
                self._token_timer_fired()
                continue
            try:
                frame = decode_frame(text)
            except ProtocolError as exc:
                metrics.frame_received("invalid")
                self._send_error(exc.code, exc.message)
                continue
            metrics.frame_received(frame.type)
            await self._handle(frame)

    async def _handle(self, frame: ClientFrame) -> None:
        """Run one frame's handler; whatever fails is answered as an ``error`` for that frame."""
        try:
            await self._handlers[type(frame)](frame)
        except ProtocolError as exc:
            self._send_error(exc.code, exc.message)
        except ClientError as exc:
            self._send_failure(exc.failure, exc.ref)
        except StateUnavailable:
            metrics.redis_error("socket")
            self._send_error(
                ErrorCode.STORE_UNAVAILABLE,
                "state store unavailable, try again shortly",
                retryable=True,
                ref=_request_ref(frame),
            )
        except (CloseSocket, WebSocketDisconnect):
            raise
        except Exception:
            # A fault on the server's side (a database error, a bug) fails this frame, not the
            # socket: the tab's other requests and its stream go on (invariant 7).
            logger.exception("connection %s: a %s frame failed", self.tab.id, frame.type)
            self._send_error(
                ErrorCode.INTERNAL_ERROR,
                "internal error, try again",
                retryable=True,
                ref=_request_ref(frame),
            )

    def _token_timer_fired(self) -> None:
        if self._reauth_deadline is not None:
            raise CloseSocket(CloseCode.UNAUTHENTICATED, "token expired")
        self._reauth_deadline = time.monotonic() + self.settings.reauth_grace_s
        self._send_error(
            ErrorCode.TOKEN_EXPIRED, "token expired: send hello with a fresh token", retryable=True
        )

    async def _receive(self, *, wait_s: float | None) -> str | bytes | None:
        """The next frame (text, or a binary frame's bytes), or None on timeout.

        Raises:
            WebSocketDisconnect: the peer left.
            CloseSocket: a frame too large or not text.
        """
        try:
            async with asyncio.timeout(wait_s):
                message = await self.websocket.receive()
        except TimeoutError:
            return None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if not self.frame_rate.take():
            raise CloseSocket(
                CloseCode.POLICY_VIOLATION,
                f"flooding: more than {self.settings.frames_per_second:g} frames per second",
                ErrorCode.FLOODING,
            )
        text: str | None = message.get("text")
        if text is None:
            data: bytes = message.get("bytes") or b""
            if len(data) > self.settings.max_frame_bytes:
                raise CloseSocket(
                    CloseCode.MESSAGE_TOO_BIG, "frame too large", ErrorCode.FRAME_TOO_LARGE
                )
            # The decoder answers bytes that are not UTF-8 JSON like any other bad text: one
            # ``invalid_json`` error.
            return data
        limit = self.settings.max_frame_bytes
        # A str of n characters takes at least n bytes: skip encoding for the common small frame.
        if len(text) > limit // 4 and len(text.encode()) > limit:
            raise CloseSocket(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame larger than {limit} bytes",
                ErrorCode.FRAME_TOO_LARGE,
            )
        return text

    async def _accept_hello(self, hello: Hello) -> None:
        if hello.protocol not in SUPPORTED_VERSIONS:
            raise CloseSocket(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"protocol {hello.protocol} unsupported; this server speaks {PROTOCOL_VERSION}",
                ErrorCode.UNSUPPORTED_PROTOCOL,
            )
        principal = self._authenticate(hello.token)
        self.principal = principal
        self.tab.principal = principal
        owner = UserKey(tenant=principal.tenant, user=principal.user)
        await self.slots.claim_user(owner, self.settings.max_connections_per_user)
        self.owner = owner
        bind_log_context(tenant=principal.tenant, user=principal.user)
        # Half the send queue: the replay must leave room for the live frames behind it.
        replay = ReplayLimit(
            frames=self.settings.send_queue_frames // 2,
            bytes=self.settings.send_queue_bytes // 2,
        )
        attachment = await self.parts.hub.attach(
            self.tab, owner, hello.epoch, hello.last_seq, max_replay=replay
        )
        ready = await self.parts.snapshots.ready(self.tab.id, principal, attachment)
        self.tab.send(ready)
        metrics.sent("ready")
        self.tab.finish_replay(attachment.missed)
        logger.info(
            "connection %s ready: tenant=%s user=%s resumed=%s",
            self.tab.id,
            principal.tenant,
            principal.user,
            attachment.resumed,
        )

    def _authenticate(self, token: str | None) -> Principal:
        token = token or self._token_from_handshake()
        if not token:
            raise CloseSocket(CloseCode.UNAUTHENTICATED, "no token", ErrorCode.UNAUTHENTICATED)
        try:
            return self.verifier.verify(token)
        except AuthError as exc:
            code = ErrorCode.TOKEN_EXPIRED if exc.expired else ErrorCode.UNAUTHENTICATED
            raise CloseSocket(CloseCode.UNAUTHENTICATED, exc.reason, code) from None

    def _token_from_handshake(self) -> str | None:
        header = self.websocket.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
        cookie = self.settings.auth_cookie
        if cookie:
            return self.websocket.cookies.get(cookie)
        return None

    async def _leave(self) -> None:
        await self.slots.release()
        if self.owner is not None:
            with contextlib.suppress(Exception):
                await self.parts.hub.detach(self.tab, self.owner)
        if not self.tab.closing:
            self.tab.close(CloseCode.NORMAL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.tab.closed.wait(), 2.0)
        await self.tab.stop()

    # -- handlers ------------------------------------------------------------------------------

    async def _on_hello_again(self, hello: Hello) -> None:
        """A fresh token for the same user (after ``token_expired``, or earlier)."""
        principal = self._authenticate(hello.token)
        current = self.principal
        if current is None or (principal.tenant, principal.user) != (current.tenant, current.user):
            raise CloseSocket(
                CloseCode.UNAUTHENTICATED,
                "a new token must name the same user",
                ErrorCode.UNAUTHENTICATED,
            )
        self.principal = principal
        self.tab.principal = principal
        self._reauth_deadline = None

    async def _on_user_message(self, frame: UserMessage) -> None:
        principal, _ = self._identity()
        ack = await self.parts.engine.accept(principal, frame, self.tab.id)
        if ack is not None:
            self.tab.send(ack)

    async def _on_cancel(self, frame: Cancel) -> None:
        _, owner = self._identity()
        if not await self.parts.engine.cancel(owner, frame.conversation_id, frame.turn_id):
            raise ClientError(
                ErrorCode.NO_ACTIVE_TURN,
                "no running turn in that conversation",
                ref=frame.turn_id or frame.conversation_id,
            )

    async def _on_typing(self, frame: Typing) -> None:
        _, owner = self._identity()
        mirror = Typing(conversation_id=frame.conversation_id, active=frame.active)
        await self.parts.hub.publish(owner, [encode(mirror)])

    async def _on_ping(self, frame: Ping) -> None:
        self.tab.send(Pong(t=frame.t))
        metrics.sent("pong")

    async def _on_confirm(self, frame: Confirm) -> None:
        principal, _ = self._identity()
        await self.parts.engine.decide(principal, frame, self.tab.id)

    async def _on_feedback(self, frame: Feedback) -> None:
        _, owner = self._identity()
        await record_feedback(
            self.parts.feedback, owner, frame.message_id, frame.rating, frame.comment
        )

    # -- helpers -------------------------------------------------------------------------------

    def _identity(self) -> tuple[Principal, UserKey]:
        if self.principal is None or self.owner is None:
            raise RuntimeError("handler ran before hello")
        return self.principal, self.owner

    def _send_error(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        ref: str | None = None,
    ) -> None:
        self._send_failure(Failure(code, message, retryable=retryable), ref)

    def _send_failure(self, failure: Failure, ref: str | None) -> None:
        metrics.refused(failure.code)
        metrics.sent("error")
        self.tab.send(failure.error_frame(ref))


def _request_ref(frame: object) -> str | None:
    """The client's id of a request, for an error that answers it."""
    if isinstance(frame, UserMessage):
        return frame.client_msg_id
    if isinstance(frame, Confirm):
        return frame.token
    if isinstance(frame, Feedback):
        return frame.message_id
    return None


def decode_frame(data: str | bytes) -> ClientFrame:
    """A client frame, decoded and fit to be stored.

    Raises:
        ProtocolError: the frame does not decode, or a string in it holds U+0000.
    """
    frame = decode_client(data)
    raw = data.encode() if isinstance(data, str) else data
    if b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "strings must not contain U+0000")
    return frame
