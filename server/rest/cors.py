"""Cross-origin calls to the REST API from the host app's pages.

The widget lives on the host app's pages and may talk to a Parley server on another origin,
and a browser only lets such a page read an API answer the API allows it to. The API allows
exactly the origins that may open a socket (``PARLEY_ALLOWED_ORIGINS``, the same
``OriginPolicy``), for bearer-token requests only: credentials (cookies) are never allowed
cross-origin, since the API does not read cookies at all.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import Message, Scope, Send

from server.security.origin import OriginPolicy

ALLOWED_METHODS = "GET, POST, PATCH, PUT, DELETE"
ALLOWED_HEADERS = "authorization, content-type"
EXPOSED_HEADERS = "retry-after"
PREFLIGHT_MAX_AGE_S = 600


class Cors:
    """Answers preflights and marks answers readable by allowed cross-origin pages."""

    def __init__(self, policy: OriginPolicy) -> None:
        self._policy = policy

    def allowed_origin(self, scope: Scope) -> str | None:
        """The request's ``Origin`` when a page of that origin may read the answer."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return None
        return origin if self._policy.allows(origin, headers.get("host")) else None

    @staticmethod
    def is_preflight(scope: Scope) -> bool:
        headers = Headers(scope=scope)
        return (
            scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )

    def preflight(self, scope: Scope) -> Response:
        """204, with the permissions when the origin is allowed (without them, the browser
        refuses the real request itself)."""
        origin = self.allowed_origin(scope)
        headers = {"Vary": "Origin"}
        if origin is not None:
            headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
                }
            )
        return Response(status_code=204, headers=headers)

    def wrap(self, scope: Scope, send: Send) -> Send:
        """``send`` adding the CORS headers to the answer when the origin is allowed."""
        origin = self.allowed_origin(scope)
        if origin is None:
            return send

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                headers.add_vary_header("Origin")
            await send(message)

        return send_with_cors
