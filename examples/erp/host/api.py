"""The REST API: each request checked (token, roles, key, arguments) and run through the pack.

A request goes through the same steps whatever the operation:

1. the bearer token names the caller (401 otherwise), whose roles must allow the tool (403);
2. an action needs a token issued for a confirmation (403) and an ``Idempotency-Key`` (400);
3. the arguments, from the path plus the query string (queries) or the JSON object body
   (actions), must fit the tool's parameters (400), with bounded size (413) and lists;
4. the tool runs, scoped to the token's tenant and acting as its user. A refusal from the books
   keeps the domain's message and becomes a 4xx; an action runs in one transaction with the
   record of its key (see `idempotency`), so a repeat is answered from the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.erp.host import idempotency
from examples.erp.host.auth import Caller, TokenVerifier
from examples.erp.host.database import WRITE_OPTION
from examples.erp.host.errors import (
    ApiError,
    BadRequest,
    Busy,
    Forbidden,
    KeyReused,
    PayloadTooLarge,
    Refused,
    TimedOut,
)
from examples.erp.host.openapi import API_ROOT
from examples.erp.host.operations import Operation
from examples.erp.host.settings import HostSettings
from server.tools.arguments import ModelArguments
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn, ToolSpec
from server.tools.schema import describe_validation_error
from server.tools.views import EXPORT_KEY, SUMMARY_KEY, VIEW_KEY

__all__ = ["Api", "json_response"]

logger = logging.getLogger("examples.erp.host")

SessionFactory = Callable[[], contextlib.AbstractAsyncContextManager[AsyncSession]]

_MAX_QUERY_VALUE_CHARS = 1_000
# The domain's refusal codes, by the HTTP status that tells a client what kind of "no" it is.
# A refusal without a code is an argument the domain could not use: 400.
_REFUSAL_STATUS: dict[str, int] = {
    "not_found": 404,
    "not_allowed": 403,
    "ambiguous": 400,
    "conflict": 409,
    "duplicate": 409,
    "already_invoiced": 409,
    "already_paid": 409,
    "cancelled": 409,
}
_BUSINESS_RULE_STATUS = 422


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`body` as a JSON response (non-ASCII kept as is, Decimals as strings)."""
    return Response(_dumps(body), status, headers=headers, media_type="application/json")


def _dumps(body: Any) -> str:
    return json.dumps(to_jsonable_python(body), ensure_ascii=False, separators=(",", ":"))


class Api:
    """The operations of one pack, served over one database as the callers' tenants."""

    def __init__(
        self,
        *,
        pack: ToolPack,
        operations: tuple[Operation, ...],
        verifier: TokenVerifier,
        engine: AsyncEngine,
        settings: HostSettings,
    ) -> None:
        self._pack = pack
        self._operations = operations
        self._verifier = verifier
        self._engine = engine
        self._settings = settings
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite has one writer at a time: actions of this process queue here rather than in
        # the driver's busy loop. PostgreSQL runs them side by side under row locks.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def routes(self) -> list[Route]:
        """One route per operation, below the API root, and one per action's preview."""
        routes = [
            Route(API_ROOT + op.path, self._endpoint(op), methods=[op.method], name=op.tool)
            for op in self._operations
        ]
        routes += [
            Route(
                API_ROOT + op.preview_path,
                self._endpoint(op, preview=True),
                methods=["POST"],
                name=f"{op.tool}_preview",
            )
            for op in self._operations
            if op.preview_path is not None
        ]
        return routes

    def _endpoint(
        self, operation: Operation, *, preview: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.handle(request, operation, preview=preview)

        return endpoint

    # -- one request -----------------------------------------------------------------------

    async def handle(
        self, request: Request, operation: Operation, *, preview: bool = False
    ) -> Response:
        """Answer one call of `operation`; every refusal is a JSON error, never an exception.

        A preview of an action checks the same (token, roles, arguments) but needs no
        confirmation or key: it changes nothing and answers the card's line.
        """
        caller: Caller | None = None
        try:
            caller = await self._verifier.verify(request.headers.get("authorization"))
            spec = self._pack.tools[operation.tool]
            if not spec.allowed(caller.roles):
                raise Forbidden(
                    f"{operation.tool} needs one of the roles {', '.join(sorted(spec.roles))}",
                    code="forbidden",
                )
            if operation.method == "GET":
                arguments = self._query_arguments(request, operation)
                response = await self._run_query(spec, caller, _validated(spec, arguments))
            elif preview:
                arguments = await self._body_arguments(request)
                _validated(spec, arguments)
                response = await self._run_preview(spec, caller, arguments)
            else:
                if caller.confirmation is None:
                    raise Forbidden(
                        "an action needs a token issued for the user's confirmation",
                        code="not_confirmed",
                    )
                key = _idempotency_key(request)
                arguments = await self._body_arguments(request)
                model = _validated(spec, arguments)
                response = await self._run_action(operation, spec, caller, key, model)
        except ApiError as exc:
            response = json_response(exc.body(), exc.status, exc.headers())
        except Exception:
            # Answered here rather than by the server, so the connection stays usable; an
            # action's writes were rolled back before this point.
            logger.exception("%s %s failed", operation.method, operation.tool)
            response = json_response({"error": "internal error"}, 500)
        logger.info(
            "%s %s%s by %s@%s call=%s -> %d",
            operation.method,
            operation.tool,
            " (preview)" if preview else "",
            caller.user if caller else "-",
            caller.tenant if caller else "-",
            caller.call_id if caller else "-",
            response.status_code,
        )
        return response

    def _query_arguments(self, request: Request, operation: Operation) -> dict[str, Any]:
        arguments: dict[str, Any] = dict(request.path_params)
        for name, value in request.query_params.multi_items():
            if name in arguments:
                where = "in the path" if name in operation.path_parameters else "more than once"
                raise BadRequest(f"argument {name!r} is given {where}")
            if len(value) > _MAX_QUERY_VALUE_CHARS:
                raise BadRequest(
                    f"argument {name!r} is longer than {_MAX_QUERY_VALUE_CHARS} characters"
                )
            arguments[name] = value
        return arguments

    async def _body_arguments(self, request: Request) -> dict[str, Any]:
        limit = self._settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        body: Any = {}
        if raw.strip():
            try:
                # Numbers stay exact: 0.1 arrives as Decimal("0.1"), never as a binary float.
                body = json.loads(raw, parse_float=Decimal)
            except (ValueError, RecursionError):
                raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        arguments: dict[str, Any] = dict(request.path_params)
        for name, value in body.items():
            if name in arguments:
                raise BadRequest(
                    f"argument {name!r} is given in the path; leave it out of the body"
                )
            _check_lists(name, value, self._settings.max_list_items)
            arguments[name] = value
        return arguments

    # -- running ---------------------------------------------------------------------------

    def _context(self, caller: Caller, sessions: SessionFactory) -> ToolContext:
        tenant = self._pack.tenant_settings(caller.tenant) if self._pack.tenant_settings else None
        return ToolContext(
            tenant=caller.tenant,
            user=caller.user,
            roles=caller.roles,
            conversation_id=caller.conversation_id,
            turn_id=caller.turn_id,
            currency=tenant.currency if tenant else "USD",
            locale=tenant.locale if tenant else "en-US",
            sessions=sessions,
        )

    async def _call(self, spec: ToolSpec, ctx: ToolContext, model: BaseModel) -> Any:
        """The tool's result.

        Raises:
            ToolError: the books refused the call.
            TimedOut: the tool ran longer than its timeout.
        """
        kwargs = {name: getattr(model, name) for name in type(model).model_fields}
        deadline = asyncio.timeout(spec.timeout_s)
        try:
            async with deadline:
                value = await spec.func(ctx, **kwargs)
        except TimeoutError:
            if deadline.expired():
                raise TimedOut(f"{spec.name} did not finish within {spec.timeout_s:g} s") from None
            raise
        if not isinstance(value, ToolReturn):
            return value
        return _with_view(value)

    async def _run_query(self, spec: ToolSpec, caller: Caller, model: BaseModel) -> Response:
        ctx = self._context(caller, self._sessions)
        try:
            result = await self._call(spec, ctx, model)
        except ToolError as exc:
            raise _refusal(exc) from None
        return json_response(result)

    async def _run_preview(
        self, spec: ToolSpec, caller: Caller, arguments: dict[str, Any]
    ) -> Response:
        """The line the pack's summary gives for the action, or its refusal; writes nothing."""
        ctx = self._context(caller, self._sessions)
        assert spec.summarize is not None, spec.name  # every action of the pack has one
        deadline = asyncio.timeout(spec.timeout_s)
        try:
            async with deadline:
                summary = await spec.summarize(ctx, spec.arguments.check(spec.name, arguments))
        except ToolError as exc:
            raise _refusal(exc) from None
        except TimeoutError:
            if deadline.expired():
                raise TimedOut(f"{spec.name} did not finish within {spec.timeout_s:g} s") from None
            raise
        return json_response({"summary": summary})

    async def _run_action(
        self,
        operation: Operation,
        spec: ToolSpec,
        caller: Caller,
        key: str,
        model: BaseModel,
    ) -> Response:
        digest = idempotency.fingerprint(operation.tool, model.model_dump(mode="json"))
        async with self._writing(), self._engine.connect() as plain:
            connection = await plain.execution_options(**{WRITE_OPTION: True})
            await connection.begin()
            try:
                await idempotency.claim(
                    connection,
                    tenant=caller.tenant,
                    key=key,
                    user=caller.user,
                    operation=operation.tool,
                    digest=digest,
                )
            except IntegrityError:
                await connection.rollback()
                return await self._replay(connection, operation, caller, key, digest)
            try:
                status, body = await self._execute(connection, operation, spec, caller, model)
                await idempotency.record(
                    connection, tenant=caller.tenant, key=key, status_code=status, body=body
                )
                await connection.commit()
            except BaseException:
                # Nothing of a failed attempt stays, its claim included: a retry runs afresh.
                with contextlib.suppress(Exception):
                    await connection.rollback()
                raise
        return Response(body, status, media_type="application/json")

    async def _execute(
        self,
        connection: AsyncConnection,
        operation: Operation,
        spec: ToolSpec,
        caller: Caller,
        model: BaseModel,
    ) -> tuple[int, str]:
        """Run the action inside the connection's transaction: its status and JSON body.

        A refusal from the books rolls back what the tool wrote and is answered (and recorded
        under the key) like a result; anything else propagates and rolls back everything.
        """
        savepoint = await connection.begin_nested()
        # The tools commit their own work; joined to this transaction, a commit only releases
        # a savepoint, and the transaction commits once the key's answer is stored with it.
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

        @asynccontextmanager
        async def borrowed() -> AsyncIterator[AsyncSession]:
            yield session

        try:
            result = await self._call(spec, self._context(caller, borrowed), model)
        except ToolError as exc:
            await session.close()
            await savepoint.rollback()
            refusal = _refusal(exc)
            return refusal.status, _dumps(refusal.body())
        except BaseException:
            await session.close()
            raise
        await session.close()
        await savepoint.commit()
        return operation.status, _dumps(result)

    async def _replay(
        self,
        connection: AsyncConnection,
        operation: Operation,
        caller: Caller,
        key: str,
        digest: str,
    ) -> Response:
        answer = await idempotency.stored_answer(connection, tenant=caller.tenant, key=key)
        await connection.rollback()
        if answer is None:
            raise Busy("a request with this Idempotency-Key is still running; try again shortly")
        if (answer.user, answer.operation, answer.fingerprint) != (
            caller.user,
            operation.tool,
            digest,
        ):
            raise KeyReused(
                "this Idempotency-Key was already used for a different request",
                code="idempotency_key_reused",
            )
        return Response(
            answer.body,
            answer.status_code,
            headers={"Idempotent-Replayed": "true"},
            media_type="application/json",
        )

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield


def _with_view(value: ToolReturn) -> Any:
    """The result as JSON, with its view under ``parley_view``, the rows of its CSV under
    ``parley_export`` and its tool line under ``parley_summary``, the keys Parley reads from a
    host's answer (``docs/tools.md``)."""
    extra = {VIEW_KEY: value.view, EXPORT_KEY: value.export, SUMMARY_KEY: value.summary}
    present = {key: item for key, item in extra.items() if item is not None}
    if not isinstance(value.result, dict) or not present:
        return value.result
    return {**value.result, **present}


def _validated(spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    # The pack's tools are Python functions: their arguments are a pydantic model.
    assert isinstance(spec.arguments, ModelArguments), spec.name
    try:
        return spec.arguments.model.model_validate(arguments)
    except ValidationError as exc:
        problems, _ = describe_validation_error(exc)
        raise BadRequest("; ".join(problems), code="invalid_arguments") from None


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise BadRequest(
            "the Idempotency-Key header is required for actions", code="idempotency_key_missing"
        )
    if not 0 < len(key) <= idempotency.MAX_KEY_CHARS or not all(
        "\x21" <= char <= "\x7e" for char in key
    ):
        raise BadRequest(
            f"the Idempotency-Key must be 1 to {idempotency.MAX_KEY_CHARS} visible ASCII "
            "characters",
            code="idempotency_key_invalid",
        )
    return key


def _check_lists(path: str, value: Any, limit: int) -> None:
    if isinstance(value, list):
        if len(value) > limit:
            raise BadRequest(f"argument {path!r} has more than {limit} items")
        for index, item in enumerate(value):
            _check_lists(f"{path}[{index}]", item, limit)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_lists(f"{path}.{name}", item, limit)


def _refusal(exc: ToolError) -> Refused:
    status = 400 if exc.code is None else _REFUSAL_STATUS.get(exc.code, _BUSINESS_RULE_STATUS)
    return Refused(exc.message, status=status, code=exc.code)
