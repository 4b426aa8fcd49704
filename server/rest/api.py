"""The REST API's machinery: operations declared once, served and documented from that.

A resource module declares its operations on an ``ApiRouter``::

    router = ApiRouter("conversations", "A user's conversations with the assistant.")

    @router.get("/conversations/{conversation_id}", response=ConversationOut)
    async def get_conversation(call: ApiCall[None, None]) -> ConversationOut:
        '''One of my conversations.'''

The declaration (method, path, query/body/response models, admin only or not) drives both the
request handling here — authentication, the rate limit, validation, one error format — and
the OpenAPI document (``server.rest.openapi``), so the two cannot drift apart.

Cross-origin preflights are answered before routing (``server.rest.cors``). Handling, in
order: the bearer token (401), the caller's request rate (429 with Retry-After),
the admin role where required (403), query parameters and body (400 for a body that is not a
JSON object, 422 naming the field for one that does not fit), then the handler. Every error
answer is ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from protocol import ErrorCode
from server.config import Settings
from server.errors import ClientError
from server.ops import metrics
from server.ops.logs import bind_log_context
from server.rest.cors import Cors
from server.rest.errors import ApiError, RestErrorCode, from_client_error
from server.rest.resources import RestResources
from server.security.auth import AuthError, Principal
from server.security.origin import OriginPolicy
from storage.errors import StateUnavailable
from storage.keys import UserKey, user_counter

logger = logging.getLogger(__name__)

QueryT = TypeVar("QueryT")
BodyT = TypeVar("BodyT")
# A handler answers a model (sent as JSON), None (204) or a ready Response (a CSV stream).
Handler = Callable[["ApiCall[Any, Any]"], Awaitable[BaseModel | Response | None]]

BODY_LIMIT_BYTES = 64 * 1024


@dataclass(slots=True)
class ApiCall(Generic[QueryT, BodyT]):
    """One authenticated request, validated: what a handler gets."""

    request: Request
    principal: Principal
    query: QueryT
    body: BodyT
    rest: RestResources

    @property
    def owner(self) -> UserKey:
        return UserKey(tenant=self.principal.tenant, user=self.principal.user)

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path, with everything needed to serve and document it."""

    method: str
    path: str
    handler: Handler
    tag: str
    response: type[BaseModel] | None
    status: int = HTTPStatus.OK
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    admin: bool = False
    errors: tuple[int, ...] = ()  # statuses beyond those every operation can answer
    # For a handler that answers a Response of its own: its media type and the schema of its
    # body, for the OpenAPI document (``response`` is None then).
    media_type: str | None = None
    media_schema: Mapping[str, Any] | None = None
    # The largest body, from the settings, for operations that take more than BODY_LIMIT_BYTES.
    body_limit: Callable[[Settings], int] | None = None

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or self.name).strip().splitlines()[0]

    @property
    def description(self) -> str:
        lines = (self.handler.__doc__ or "").strip().splitlines()[1:]
        return "\n".join(line.strip() for line in lines).strip()

    @property
    def path_params(self) -> list[str]:
        # "{call_id}.csv" is a parameter followed by a literal suffix, as Starlette reads it.
        return [name.partition(":")[0] for name in re.findall(r"{([^}]+)}", self.path)]


class ApiRouter:
    """The operations of one resource (one OpenAPI tag)."""

    def __init__(self, tag: str, description: str) -> None:
        self.tag = tag
        self.description = description
        self.operations: list[Operation] = []

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("PATCH", path, options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("PUT", path, options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, options)

    def _add(self, method: str, path: str, options: dict[str, Any]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(method=method, path=path, handler=handler, tag=self.tag, **options)
            )
            return handler

        return register


class ApiApp:
    """The ASGI app mounted at ``/api/v1``: the operations' routes, with JSON answers for
    unknown paths and methods too."""

    def __init__(self, operations: list[Operation], extra_routes: list[Route]) -> None:
        routes = [
            Route(op.path, _endpoint(op), methods=[op.method], name=op.name) for op in operations
        ]
        self.router = Router(routes=routes + extra_routes)
        self._cors: Cors | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._cors is None:
                self._cors = Cors(OriginPolicy.from_settings(scope["app"].state.settings))
            if self._cors.is_preflight(scope):
                await self._cors.preflight(scope)(scope, receive, send)
                return
            send = self._cors.wrap(scope, send)
        try:
            await self.router(scope, receive, send)
        except HTTPException as exc:
            # Raised by the router before any response started: no route, or a wrong method.
            if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
                error = ApiError(
                    exc.status_code,
                    RestErrorCode.METHOD_NOT_ALLOWED,
                    f"method {scope.get('method')} not allowed here",
                    headers=dict(exc.headers or {}),
                )
            else:
                error = ApiError(
                    HTTPStatus.NOT_FOUND,
                    RestErrorCode.ROUTE_NOT_FOUND,
                    f"no route '{scope.get('path')}'",
                )
            await error.response()(scope, receive, send)


def json_response(
    value: BaseModel | None, status: int = HTTPStatus.OK, headers: Mapping[str, str] | None = None
) -> Response:
    """A model as JSON; absent optional fields are left out, as on the socket."""
    if value is None:
        return Response(status_code=HTTPStatus.NO_CONTENT, headers=dict(headers or {}))
    content = orjson.dumps(value.model_dump(mode="json", exclude_none=True))
    return Response(
        content, status_code=status, media_type="application/json", headers=dict(headers or {})
    )


def _endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        rest: RestResources = request.app.state.rest
        try:
            response = await _handle(op, request, rest)
        except ApiError as exc:
            response = exc.response()
        except ClientError as exc:
            response = from_client_error(exc).response()
        except StateUnavailable:
            metrics.redis_error("api")
            response = ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                ErrorCode.STORE_UNAVAILABLE,
                "state store unavailable, try again shortly",
                retry_after=1.0,
            ).response()
        except Exception:
            logger.exception("%s %s failed", op.method, op.path)
            response = ApiError(
                HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL_ERROR, "internal error"
            ).response()
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            metrics.refused(ErrorCode.RATE_LIMITED)
        metrics.HTTP_REQUESTS.labels(op.name, str(response.status_code)).inc()
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    endpoint.__name__ = op.name
    return endpoint


async def _handle(op: Operation, request: Request, rest: RestResources) -> Response:
    principal = _authenticate(request, rest)
    bind_log_context(tenant=principal.tenant, user=principal.user)
    await _check_rate(principal, rest)
    if op.admin and not principal.is_admin:
        raise ApiError(
            HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "this route is for administrators"
        )
    if any(_holds_nul(value) for value in request.path_params.values()):
        # No stored id contains U+0000 (PostgreSQL cannot even compare against one).
        raise ApiError(HTTPStatus.NOT_FOUND, RestErrorCode.ROUTE_NOT_FOUND, "no such resource")
    query_params = dict(request.query_params)
    if _holds_nul(query_params):
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.INVALID_FIELD,
            "parameters must not contain U+0000",
        )
    query = _validate(op.query, query_params, in_body=False)
    body = None
    if op.body is not None:
        limit = op.body_limit(rest.settings) if op.body_limit else BODY_LIMIT_BYTES
        raw_body = await _json_body(request, limit)
        if _holds_nul(raw_body):
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                ErrorCode.INVALID_FIELD,
                "strings in the body must not contain U+0000",
            )
        body = _validate(op.body, raw_body, in_body=True)
    call: ApiCall[Any, Any] = ApiCall(
        request=request, principal=principal, query=query, body=body, rest=rest
    )
    result = await op.handler(call)
    if isinstance(result, Response):
        return result
    return json_response(result, op.status)


def _authenticate(request: Request, rest: RestResources) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="parley"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            HTTPStatus.UNAUTHORIZED,
            ErrorCode.UNAUTHENTICATED,
            "send the token as 'Authorization: Bearer <token>'",
            headers=challenge,
        )
    try:
        return rest.verifier.verify(token.strip())
    except AuthError as exc:
        code = ErrorCode.TOKEN_EXPIRED if exc.expired else ErrorCode.UNAUTHENTICATED
        challenge["WWW-Authenticate"] += ', error="invalid_token"'
        raise ApiError(HTTPStatus.UNAUTHORIZED, code, exc.reason, headers=challenge) from None


async def _check_rate(principal: Principal, rest: RestResources) -> None:
    limit = rest.settings.api_requests_per_minute
    if limit <= 0:
        return
    # One window for every rate limit, socket and REST alike.
    window = rest.settings.rate_window_s
    counter = user_counter("api", principal.tenant, principal.user)
    allowed, _, retry_after = await rest.rate.hit(counter, limit, window)
    if not allowed:
        raise ApiError(
            HTTPStatus.TOO_MANY_REQUESTS,
            ErrorCode.RATE_LIMITED,
            f"more than {limit} requests in {window:g} s",
            retry_after=retry_after,
        )


async def _json_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise _too_large(limit)
    if not raw.strip():
        raise ApiError(
            HTTPStatus.BAD_REQUEST, RestErrorCode.INVALID_BODY, "send a JSON object as the body"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, ErrorCode.INVALID_JSON, "the body is not valid JSON"
        ) from None
    if not isinstance(value, dict):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, RestErrorCode.INVALID_BODY, "the body must be a JSON object"
        )
    return value


def _holds_nul(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _too_large(limit: int) -> ApiError:
    return ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        RestErrorCode.BODY_TOO_LARGE,
        f"the body is larger than {limit} bytes",
    )


def _validate(model: type[BaseModel] | None, data: dict[str, Any], *, in_body: bool) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _unprocessable(exc, "field" if in_body else "parameter") from None


def _unprocessable(exc: ValidationError, noun: str) -> ApiError:
    """A 422 naming the first field at fault, in the project's lowercase message style."""
    first = exc.errors(include_url=False)[0]
    # Request models are flat: the first part of the location is the field; any further part
    # names a member of a union type, which means nothing to the client.
    name = str(first["loc"][0]) if first["loc"] else "body"
    kind = first["type"]
    if kind == "missing":
        return ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.MISSING_FIELD,
            f"{noun} '{name}' is required",
            field=name,
        )
    if kind == "extra_forbidden":
        problem = "is not accepted here"
    else:
        message = str(first["msg"])
        problem = message[:1].lower() + message[1:]
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.INVALID_FIELD,
        f"{noun} '{name}': {problem}",
        field=name,
    )
