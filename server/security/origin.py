"""The Origin check at the WebSocket handshake, against cross-site WebSocket hijacking.

Browsers attach cookies to a WebSocket handshake whatever page opens it, and the same-origin
policy does not apply to WebSockets; Starlette's CORS middleware only covers HTTP. Without
this check a page on any site could open a socket that a cookie authenticates and act as the
user. So a handshake from a browser page (it always sends ``Origin``) is upgraded only when that
origin is the server's own or one of ``PARLEY_ALLOWED_ORIGINS``; any other is refused with HTTP
403 before the upgrade, so the page never gets a socket at all. A handshake without ``Origin``
comes from a non-browser client (a backend, a test), which cannot ride on a user's cookies; it is
allowed unless ``PARLEY_REQUIRE_ORIGIN=1``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from protocol import CloseCode
from server.config import Settings

logger = logging.getLogger(__name__)

ORIGIN_LOG_CHARS = 200  # an Origin header is client-controlled: log no more than this of it


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which ``Origin`` headers may open a socket."""

    allowed: frozenset[str]
    # Entries like "https://*.example.com", stored as ("https", ".example.com").
    wildcard_suffixes: tuple[tuple[str, str], ...]
    any_origin: bool
    require_origin: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        allowed: set[str] = set()
        suffixes: list[tuple[str, str]] = []
        any_origin = False
        for entry in settings.allowed_origins:
            entry = entry.strip().rstrip("/").lower()
            if entry == "*":
                any_origin = True
            elif "://*." in entry:
                scheme, _, host = entry.partition("://*")
                suffixes.append((scheme, host))
            elif entry:
                allowed.add(entry)
        return cls(frozenset(allowed), tuple(suffixes), any_origin, settings.require_origin)

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a handshake with this ``Origin`` (None: absent) and ``Host`` may upgrade."""
        if origin is None:
            return not self.require_origin
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.allowed:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file://) and anything odd
        if host is not None and parts.netloc == host.strip().lower():
            return True  # the server's own pages (the demo page, a same-host deployment)
        return any(
            parts.scheme == scheme and parts.netloc.endswith(suffix)
            for scheme, suffix in self.wildcard_suffixes
        )


class OriginGuard:
    """ASGI middleware refusing WebSocket handshakes from origins the policy does not allow."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if self.policy.allows(origin, headers.get("host")):
            await self.app(scope, receive, send)
            return
        logger.warning(
            "refused a WebSocket handshake from origin %r",
            (origin or "(none)")[:ORIGIN_LOG_CHARS],
        )
        await refuse(WebSocket(scope, receive, send))


async def refuse(websocket: WebSocket) -> None:
    """Answer the handshake with HTTP 403 instead of upgrading it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse("origin not allowed", status_code=403)
        )
    else:
        # Servers without the denial-response extension turn a close before accept into 403.
        await websocket.close(CloseCode.FORBIDDEN_ORIGIN)
