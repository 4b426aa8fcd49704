"""The scripted dev model as an ASGI app speaking OpenAI's chat completions API.

Routes:

- ``POST /v1/chat/completions``: streamed (SSE) or not, as OpenAI answers it;
- ``GET /v1/models`` and ``GET /v1/models/{model}``: the one model, ``parley-dev``;
- ``GET /_dev/faults``, ``POST /_dev/faults`` (a JSON list of fault rules, replacing the current
  ones; see ``faults``), ``DELETE /_dev/faults``;
- ``GET /_dev/requests`` (``?limit=N``): the last received request bodies with the label of the
  key that sent them; ``DELETE /_dev/requests`` forgets them.

Every response carries ``x-parley-dev-model: scripted``. The control routes have no
authentication: the dev model is a development tool and listens on loopback by default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.devllm import tokens
from server.devllm.default_script import default_script
from server.devllm.embeddings import embeddings
from server.devllm.faults import (
    FaultKind,
    FaultRule,
    FaultSpecError,
    parse_fault_rules,
    take_markers,
)
from server.devllm.responses import BrokenResponse, EventStreamResponse
from server.devllm.script import Script, conversation_from_messages
from server.devllm.state import DEFAULT_REQUEST_LOG_SIZE, DevModelState
from server.devllm.wire import (
    MODEL_NAME,
    Completion,
    ToolCall,
    completion_object,
    error_body,
    model_object,
    models_list,
    new_completion_id,
    new_tool_call_id,
    now,
    stream_events,
)

HEADER_NAME = b"x-parley-dev-model"
HEADER_VALUE = b"scripted"


def create_devllm_app(
    script: Script | None = None,
    *,
    token_rate: float = 60.0,
    first_token_delay_s: float = 0.0,
    request_log_size: int = DEFAULT_REQUEST_LOG_SIZE,
) -> Starlette:
    """Build a dev model app following ``script`` (the default ERP demo script if None).

    ``token_rate`` is how many tokens per second a stream sends (0: as fast as possible);
    ``first_token_delay_s`` delays the first chunk of every stream; ``request_log_size`` bounds
    the log ``GET /_dev/requests`` shows. The app's state is ``app.state.devllm``, a
    ``DevModelState``.
    """
    state = DevModelState(
        script or default_script(),
        token_rate=token_rate,
        first_token_delay_s=first_token_delay_s,
        request_log_size=request_log_size,
    )
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/_dev/faults", faults_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/_dev/requests", requests_endpoint, methods=["GET", "DELETE"]),
        ],
        middleware=[Middleware(DevModelHeaderMiddleware)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.devllm = state
    return app


class DevModelHeaderMiddleware:
    """Marks every response as coming from the scripted dev model."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name != HEADER_NAME for name, _ in headers):
                    headers.append((HEADER_NAME, HEADER_VALUE))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_marked)


# -- chat completions --------------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    state: DevModelState = request.app.state.devllm
    api_key = _bearer_key(request)
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        state.record(api_key, raw.decode("utf-8", "replace"))
        return _error(
            400,
            "We could not parse the JSON body of your request: it is not valid JSON.",
            type="invalid_request_error",
        )
    state.record(api_key, body)
    if (problem := _invalid_request(body)) is not None:
        return problem

    conversation = conversation_from_messages(body["messages"], body.get("tools") or [])
    inline: list[FaultRule] = []
    if not conversation.tool_results:
        # Markers act on the request that answers the user's message, not on later rounds.
        user_text, inline = take_markers(conversation.user_text)
        conversation = dataclasses.replace(conversation, user_text=user_text)
    plan = state.plan(inline, api_key)
    if plan.reject is not None:
        return _fault_error(plan.reject)

    reply = state.script.reply(conversation)
    if not tokens.ready():
        await asyncio.to_thread(tokens.warm_up)  # loading the encoding blocks for a moment
    calls = tuple(ToolCall(new_tool_call_id(), call.name, call.arguments) for call in reply.calls)
    completion = Completion(
        id=new_completion_id(),
        created=now(),
        model=body["model"],
        text=reply.text,
        tool_calls=calls,
        prompt_tokens=tokens.count_prompt(body["messages"], body.get("tools") or []),
        completion_tokens=tokens.count_completion(
            reply.text, [(call.name, call.arguments) for call in calls]
        ),
    )
    first_token_delay_s = (
        plan.first_token_delay_s
        if plan.first_token_delay_s is not None
        else state.first_token_delay_s
    )
    if body.get("stream"):
        stream_options = body.get("stream_options") or {}
        include_usage = bool(stream_options.get("include_usage")) and not plan.omit_usage
        return EventStreamResponse(
            stream_events(completion, include_usage=include_usage),
            first_token_delay_s=first_token_delay_s,
            token_rate=plan.token_rate if plan.token_rate is not None else state.token_rate,
            drop_after_chunks=plan.drop_after_chunks,
        )
    if first_token_delay_s > 0:
        await asyncio.sleep(first_token_delay_s)
    result = completion_object(completion)
    if plan.omit_usage:
        result["usage"] = None
    if plan.drop_after_chunks is not None:
        return BrokenResponse(orjson.dumps(result))
    return JSONResponse(result)


def _invalid_request(body: Any) -> Response | None:
    """An OpenAI-shaped 400 for a request the API would refuse, or None."""
    if not isinstance(body, Mapping):
        return _invalid("Invalid request body: expected a JSON object.")
    for name in ("model", "messages"):
        if name not in body:
            return _invalid(
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
    if not isinstance(body["model"], str):
        return _invalid_type("model", "a string", body["model"])
    messages = body["messages"]
    if not isinstance(messages, list):
        return _invalid_type("messages", "an array", messages)
    if not messages:
        return _invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            return _invalid_type(f"messages[{index}]", "an object", message)
        if "role" not in message:
            return _invalid(
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="missing_required_parameter",
            )
    if "tools" in body and not isinstance(body["tools"], list):
        return _invalid_type("tools", "an array", body["tools"])
    if "stream" in body and not isinstance(body["stream"], bool | None):
        return _invalid_type("stream", "a boolean", body["stream"])
    if body.get("stream_options") is not None:
        if not body.get("stream"):
            return _invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        if not isinstance(body["stream_options"], Mapping):
            return _invalid_type("stream_options", "an object", body["stream_options"])
    return None


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> Response:
    return _error(400, message, type="invalid_request_error", param=param, code=code)


def _invalid_type(param: str, expected: str, value: Any) -> Response:
    got = {str: "a string", list: "an array", dict: "an object", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
    return _invalid(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def _fault_error(rule: FaultRule) -> Response:
    """The error response a rejecting fault asks for."""
    if rule.kind is FaultKind.RATE_LIMIT:
        seconds = rule.value
        return _error(
            429,
            f"Rate limit reached for {MODEL_NAME} (injected fault). "
            f"Please try again in {seconds:g}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                # Retry-After carries whole seconds; the SDK prefers the precise one in ms.
                "retry-after": str(math.ceil(seconds)),
                "retry-after-ms": str(round(seconds * 1000)),
            },
        )
    return _error(
        500,
        "The server had an error while processing your request (injected fault).",
        type="server_error",
        code="server_error",
    )


def _bearer_key(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def _error(
    status: int,
    message: str,
    *,
    type: str,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = error_body(message, type=type, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return _error(exc.status_code, str(exc.detail), type=kind, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # This runs outside the header middleware, so it marks its response itself.
    response = _error(500, "The dev model failed on this request.", type="server_error")
    response.headers[HEADER_NAME.decode()] = HEADER_VALUE.decode()
    return response


# -- models --------------------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    """``GET /v1/models``."""
    return JSONResponse(models_list())


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{model}``: any name is answered, as the dev model answers to any."""
    return JSONResponse(model_object(request.path_params["model"]))


# -- control -------------------------------------------------------------------------------------


async def faults_endpoint(request: Request) -> Response:
    """``/_dev/faults``: GET lists the rules, POST replaces them, DELETE clears them."""
    state: DevModelState = request.app.state.devllm
    if request.method == "POST":
        try:
            rules = parse_fault_rules(orjson.loads(await request.body()))
        except orjson.JSONDecodeError:
            return _invalid("The body must be a JSON list of fault rules.")
        except FaultSpecError as exc:
            return _invalid(str(exc))
        state.set_faults(rules)
    elif request.method == "DELETE":
        state.clear_faults()
    return JSONResponse({"faults": [rule.to_json() for rule in state.faults()]})


async def requests_endpoint(request: Request) -> Response:
    """``/_dev/requests``: GET lists the last requests (``?limit=N``), DELETE forgets them."""
    state: DevModelState = request.app.state.devllm
    if request.method == "DELETE":
        state.clear_requests()
        return JSONResponse({"requests": []})
    logged = state.requests()
    limit = request.query_params.get("limit")
    if limit is not None:
        if not limit.isdigit():
            return _invalid("'limit' must be a whole number.", param="limit")
        logged = logged[len(logged) - int(limit) :] if int(limit) else []
    return JSONResponse({"requests": [entry.to_json() for entry in logged]})
