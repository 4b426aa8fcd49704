"""OpenAPI sources: each operation of a host's OpenAPI 3.x document becomes a tool.

- The tool is named ``<source>__<operationId>``; its description is the operation's summary and
  description. Operations without an ``operationId`` are skipped (and logged).
- Its parameters are the path and query parameters plus the properties of a JSON object request
  body; a name used twice is a load error naming the operation.
- GET and HEAD are queries; every other method is an action, which runs only after the user
  approves it. An ``x-parley`` object on the operation may set ``kind`` ("query"/"action"),
  ``roles`` (a list) and ``summary`` (the confirmation card's line, a template over the
  arguments: ``"Approve purchase order {po_number}"``); the sources file overrides all three.
- An action's ``x-parley`` may also name a ``preview`` path (a template over the operation's
  path parameters). Before the card is shown, Parley sends the action's request there, as the
  user but without a confirmation: the host checks it without changing anything and answers
  ``{"summary": "..."}`` for the card, or refuses (4xx) so the model is told before the user is
  asked. An answer without a summary leaves the template's line.
- Calls go to ``servers[0].url`` resolved against the document's URL (its variables take their
  defaults), or to the document's origin when it lists no server.

Local ``$ref``s (``#/components/...``) are resolved; other references and recursive schemas are
load errors, since a function's parameters must be one self-contained schema. OpenAPI 3.0's
``nullable`` becomes a ``"null"`` type, so both 3.0 and 3.1 documents check as JSON Schema.
Only JSON documents are read.

The translation (`operations`, `tool_specs`) is pure, so its rules are tested without a host.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import jsonschema

from server.tools.arguments import SchemaArguments
from server.tools.context import ToolContext
from server.tools.registry import ToolKind, ToolSpec, template_summarizer
from server.tools.sources.base import SourceLimits, ToolSource
from server.tools.sources.config import SourceConfig
from server.tools.sources.errors import SourceLoadError
from server.tools.sources.http_calls import HttpRequest, call_host, read_capped
from server.tools.sources.user_token import CallAuth

__all__ = ["OpenApiSource", "Operation", "operations", "tool_specs"]

logger = logging.getLogger(__name__)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
QUERY_METHODS = frozenset({"get", "head"})
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DESCRIPTION_MAX_CHARS = 1_000
SUMMARY_MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, as a tool will call it.

    Attributes:
        operation_id: its ``operationId`` (the tool's name without the source prefix).
        method: the HTTP method, lowercase.
        path: the path template (``/orders/{po_number}``).
        base_url: where calls go, without a trailing slash.
        description: for the model.
        kind: query or action, after ``x-parley`` (the sources file comes later).
        roles: from ``x-parley``, or None.
        summary: the ``x-parley`` summary template, or None.
        preview: the ``x-parley`` preview path template, or None.
        path_params: names of the path parameters.
        query_params: names of the query parameters.
        body_params: names of the body's properties; None when the operation takes no body.
        body_required: whether the body must be sent.
        parameters: the JSON Schema of all arguments together.
    """

    operation_id: str
    method: str
    path: str
    base_url: str
    description: str
    kind: ToolKind
    roles: frozenset[str] | None
    summary: str | None
    preview: str | None
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_params: tuple[str, ...] | None
    body_required: bool
    parameters: dict[str, Any]

    @property
    def label(self) -> str:
        """``GET /things/{id}``, for errors and logs."""
        return f"{self.method.upper()} {self.path}"


def operations(source: str, document: Any, document_url: str) -> list[Operation]:
    """Every usable operation of an OpenAPI 3.x document.

    Raises:
        SourceLoadError: the document is not OpenAPI 3.x, a reference cannot be resolved, two
            arguments of one operation share a name, or an ``x-parley`` value is wrong; the
            message names the operation (or the key) and what is wrong.
    """
    if not isinstance(document, dict):
        raise SourceLoadError(source, document_url, "the document is not a JSON object")
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise SourceLoadError(
            source, "openapi", f"expected an OpenAPI 3.x document, got {version!r}"
        )
    paths = document.get("paths", {})
    if not isinstance(paths, dict):
        raise SourceLoadError(source, "paths", "must be an object")
    resolver = _Resolver(source, document, nullable=version.startswith("3.0"))
    base_url = _base_url(source, document, document_url)
    found: list[Operation] = []
    for path, item in paths.items():
        if not isinstance(item, dict):
            raise SourceLoadError(source, f"paths.{path}", "must be an object")
        item = resolver.resolve(item, f"paths.{path}")
        shared = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"paths.{path}.{method}"
            if not isinstance(operation, dict):
                raise SourceLoadError(source, where, "must be an object")
            operation_id = operation.get("operationId")
            if not isinstance(operation_id, str) or not operation_id:
                logger.warning("tool source %r: %s has no operationId; skipped", source, where)
                continue
            found.append(
                _operation(resolver, base_url, path, method, operation, shared, operation_id, where)
            )
    return found


def tool_specs(
    config: SourceConfig,
    found: list[Operation],
    limits: SourceLimits,
    caller: Any,
    previewer: Any = None,
) -> dict[str, ToolSpec]:
    """The tools of ``found`` that the sources file lets through, with its overrides applied.

    ``caller(operation, kind)`` gives the tool's function: ``async (ctx, /, **arguments)``;
    ``previewer(operation, fallback)`` the summarizer of an action with a ``preview`` path,
    given the summarizer to use when the host's answer names no summary.

    Raises:
        SourceLoadError: a tool name is not usable for a model, two operations share an
            ``operationId``, or a summary template names an unknown argument.
    """
    specs: dict[str, ToolSpec] = {}
    known = {operation.operation_id for operation in found}
    for tool in sorted(set(config.tools) - known):
        logger.warning("tool source %r: override of %r names no operation", config.name, tool)
    for operation in found:
        if not config.offers(operation.operation_id):
            continue
        name = config.tool_name(operation.operation_id)
        if not TOOL_NAME.match(name):
            raise SourceLoadError(
                config.name,
                operation.label,
                f"operationId {operation.operation_id!r} does not make a usable tool name "
                f"({name!r}: letters, digits, '_' and '-', at most 64 characters)",
            )
        if name in specs:
            raise SourceLoadError(
                config.name,
                operation.label,
                f"operationId {operation.operation_id!r} is used twice",
            )
        override = config.override(operation.operation_id)
        kind: ToolKind = override.kind or operation.kind
        roles = override.roles if override.roles is not None else operation.roles
        template = override.summary or operation.summary
        try:
            arguments = SchemaArguments(operation.parameters)
        except jsonschema.SchemaError as exc:
            raise SourceLoadError(
                config.name,
                operation.label,
                f"parameters are not a valid JSON Schema ({exc.message})",
            ) from None
        summarize = None
        if kind == "action":
            try:
                summarize = (
                    template_summarizer(name, template, arguments.names)
                    if template
                    else _default_summarizer(operation)
                )
            except ValueError as exc:
                raise SourceLoadError(config.name, operation.label, str(exc)) from None
            if operation.preview is not None and previewer is not None:
                summarize = previewer(operation, summarize)
        attempts = limits.action_attempts if kind == "action" else limits.query_attempts
        specs[name] = ToolSpec(
            name=name,
            description=operation.description,
            kind=kind,
            roles=roles or frozenset(),
            # The call keeps its own deadline (and reports an action's unknown outcome
            # honestly); the registry's is a backstop behind it.
            timeout_s=call_budget_s(limits, attempts) + 5.0,
            parameters=operation.parameters,
            func=caller(operation, kind),
            summarize=summarize,
            arguments=arguments,
            source=config.name,
            source_roles=config.roles,
        )
    return specs


def call_budget_s(limits: SourceLimits, attempts: int) -> float:
    """The longest one call may take: every attempt's timeout and the pauses between them."""
    pauses: float = sum(limits.retry_base_s * 2**n for n in range(attempts - 1))
    return limits.timeout_s * attempts + pauses


def _default_summarizer(operation: Operation) -> Any:
    title = operation.description.split("\n", 1)[0] or operation.operation_id

    async def summarize(ctx: ToolContext, params: dict[str, Any]) -> str:
        shown = ", ".join(f"{key}={_short(value)}" for key, value in params.items())
        text = f"{title} ({shown})" if shown else title
        return text[:SUMMARY_MAX_CHARS]

    return summarize


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


# -- reading the document --------------------------------------------------------------------


def _base_url(source: str, document: dict[str, Any], document_url: str) -> str:
    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        server = servers[0]
        url = server.get("url")
        if not isinstance(url, str):
            raise SourceLoadError(source, "servers[0].url", "must be a string")
        variables = server.get("variables", {})
        for name in re.findall(r"\{([^}]+)\}", url):
            default = (
                variables.get(name, {}).get("default") if isinstance(variables, dict) else None
            )
            if not isinstance(default, str):
                raise SourceLoadError(
                    source, f"servers[0].variables.{name}", "needs a string default"
                )
            url = url.replace("{" + name + "}", default)
        resolved = urljoin(document_url, url)
    else:
        parts = urlsplit(document_url)
        resolved = f"{parts.scheme}://{parts.netloc}"
    if urlsplit(resolved).scheme not in ("http", "https"):
        raise SourceLoadError(source, "servers[0].url", f"{resolved!r} is not an http(s) URL")
    return resolved.rstrip("/")


def _operation(
    resolver: _Resolver,
    base_url: str,
    path: str,
    method: str,
    operation: dict[str, Any],
    shared: Any,
    operation_id: str,
    where: str,
) -> Operation:
    source = resolver.source
    label = f"{method.upper()} {path} ({operation_id})"
    properties: dict[str, Any] = {}
    required: list[str] = []
    located: dict[tuple[str, str], dict[str, Any]] = {}
    # Operation parameters override the path item's of the same name and location.
    for index, raw in enumerate([*_as_list(shared), *_as_list(operation.get("parameters"))]):
        parameter = resolver.resolve(raw, f"{where}.parameters[{index}]")
        name, location = parameter.get("name"), parameter.get("in")
        if not isinstance(name, str) or location not in ("path", "query", "header", "cookie"):
            raise SourceLoadError(
                source, f"{where}.parameters[{index}]", "needs a string 'name' and a valid 'in'"
            )
        located[(location, name)] = parameter
    path_params: list[str] = []
    query_params: list[str] = []
    for (location, name), parameter in located.items():
        if location not in ("path", "query"):
            continue  # header and cookie parameters are the host's business, not the model's
        if name in properties:
            raise SourceLoadError(source, label, f"two arguments are named {name!r}")
        schema = resolver.schema(parameter.get("schema", {}), f"{where}.parameters.{name}")
        if isinstance(parameter.get("description"), str):
            schema = {**schema, "description": parameter["description"]}
        properties[name] = schema
        if location == "path" or parameter.get("required") is True:
            required.append(name)
        (path_params if location == "path" else query_params).append(name)
    body_params, body_required = _body(resolver, operation, where, label, properties, required)
    x_parley = _x_parley(source, operation.get("x-parley"), f"{where}.x-parley")
    kind: ToolKind = "query" if method in QUERY_METHODS else "action"
    return Operation(
        operation_id=operation_id,
        method=method,
        path=path,
        base_url=base_url,
        description=_description(operation, method, path),
        kind=x_parley.get("kind", kind),
        roles=x_parley.get("roles"),
        summary=x_parley.get("summary"),
        preview=_preview_path(source, x_parley.get("preview"), path_params, where),
        path_params=tuple(path_params),
        query_params=tuple(query_params),
        body_params=body_params,
        body_required=body_required,
        parameters={
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    )


def _body(
    resolver: _Resolver,
    operation: dict[str, Any],
    where: str,
    label: str,
    properties: dict[str, Any],
    required: list[str],
) -> tuple[tuple[str, ...] | None, bool]:
    raw = operation.get("requestBody")
    if raw is None:
        return None, False
    body = resolver.resolve(raw, f"{where}.requestBody")
    content = body.get("content", {})
    media = content.get("application/json") if isinstance(content, dict) else None
    if not isinstance(media, dict):
        raise SourceLoadError(resolver.source, label, "the request body is not application/json")
    schema = resolver.schema(media.get("schema", {}), f"{where}.requestBody")
    if schema.get("type") not in ("object", None) or not isinstance(
        schema.get("properties", {}), dict
    ):
        raise SourceLoadError(resolver.source, label, "the request body is not a JSON object")
    body_required = body.get("required") is True
    names: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        if name in properties:
            raise SourceLoadError(resolver.source, label, f"two arguments are named {name!r}")
        properties[name] = prop
        names.append(name)
        if body_required and name in schema.get("required", []):
            required.append(name)
    return tuple(names), body_required


def _x_parley(source: str, raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SourceLoadError(source, where, "must be an object")
    unknown = sorted(set(raw) - {"kind", "roles", "summary", "preview"})
    if unknown:
        raise SourceLoadError(
            source, f"{where}.{unknown[0]}", "unknown key (kind, roles, summary, preview)"
        )
    found: dict[str, Any] = {}
    if "kind" in raw:
        if raw["kind"] not in ("query", "action"):
            raise SourceLoadError(source, f"{where}.kind", 'must be "query" or "action"')
        found["kind"] = raw["kind"]
    if "roles" in raw:
        roles = raw["roles"]
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise SourceLoadError(source, f"{where}.roles", "must be a list of strings")
        found["roles"] = frozenset(roles)
    if "summary" in raw:
        if not isinstance(raw["summary"], str) or not raw["summary"]:
            raise SourceLoadError(source, f"{where}.summary", "must be a non-empty string")
        found["summary"] = raw["summary"]
    if "preview" in raw:
        if not isinstance(raw["preview"], str) or not raw["preview"].startswith("/"):
            raise SourceLoadError(source, f"{where}.preview", "must be a path starting with '/'")
        found["preview"] = raw["preview"]
    return found


def _preview_path(source: str, path: str | None, path_params: list[str], where: str) -> str | None:
    if path is None:
        return None
    unknown = sorted(set(re.findall(r"\{([^}]+)\}", path)) - set(path_params))
    if unknown:
        raise SourceLoadError(
            source, f"{where}.x-parley.preview", f"{unknown[0]!r} is not a path parameter"
        )
    return path


def _description(operation: dict[str, Any], method: str, path: str) -> str:
    parts = [
        text.strip()
        for text in (operation.get("summary"), operation.get("description"))
        if isinstance(text, str) and text.strip()
    ]
    text = "\n\n".join(parts) or f"{method.upper()} {path}"
    return text[:DESCRIPTION_MAX_CHARS]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _Resolver:
    """Inlines the document's local ``$ref``s."""

    def __init__(self, source: str, document: dict[str, Any], *, nullable: bool) -> None:
        self.source = source
        self.document = document
        self.nullable = nullable

    def resolve(self, node: Any, where: str) -> dict[str, Any]:
        """``node``, or what its ``$ref`` points at (one level)."""
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or ref in seen:
                raise SourceLoadError(self.source, where, f"reference {ref!r} cannot be followed")
            seen.add(ref)
            node = self._target(ref, where)
        if not isinstance(node, dict):
            raise SourceLoadError(self.source, where, "must be an object")
        return node

    def schema(self, node: Any, where: str) -> dict[str, Any]:
        """A schema with every reference inlined and 3.0's ``nullable`` made a type."""
        inlined = self._inline(node, where, ())
        if not isinstance(inlined, dict):
            raise SourceLoadError(self.source, where, "a schema must be an object")
        return inlined

    def _inline(self, node: Any, where: str, following: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self._inline(item, where, following) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in following:
                raise SourceLoadError(self.source, where, f"schema {ref!r} refers to itself")
            target = self._inline(self._target(ref, where), where, (*following, ref))
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return {**target, **self._inline(siblings, where, following)}
        cleaned: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                cleaned[key] = {
                    name: self._inline(item, where, following) for name, item in value.items()
                }
            elif key in ("example", "examples", "xml", "externalDocs", "discriminator"):
                continue
            else:
                cleaned[key] = self._inline(value, where, following)
        if self.nullable and cleaned.pop("nullable", False) is True:
            kind = cleaned.get("type")
            if isinstance(kind, str):
                cleaned["type"] = [kind, "null"]
        return cleaned

    def _target(self, ref: str, where: str) -> Any:
        if not ref.startswith("#/"):
            raise SourceLoadError(
                self.source, where, f"reference {ref!r} is not local to the document"
            )
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SourceLoadError(self.source, where, f"reference {ref!r} points at nothing")
            node = node[part]
        return node


# -- the source ------------------------------------------------------------------------------


class OpenApiSource(ToolSource):
    """A host app described by an OpenAPI document; each call is one HTTP request."""

    def __init__(self, config: SourceConfig, limits: SourceLimits, auth: CallAuth) -> None:
        super().__init__(config, limits, auth)
        assert config.url is not None  # the config requires it for this kind
        self.document_url = config.url
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(limits.timeout_s),
            limits=httpx.Limits(max_connections=limits.concurrency),
            follow_redirects=False,
        )

    async def load(self) -> dict[str, ToolSpec]:
        document = await self._fetch_document()
        try:
            found = operations(self.name, document, self.document_url)
            return tool_specs(self.config, found, self.limits, self._caller, self._previewer)
        except (AttributeError, TypeError, KeyError) as exc:
            # A shape the checks above did not foresee (a string where an object belongs).
            raise SourceLoadError(
                self.name, self.document_url, f"the document is malformed ({exc!r})"
            ) from exc

    async def close_transport(self) -> None:
        await self._client.aclose()

    async def _fetch_document(self) -> Any:
        url = self.document_url
        try:
            async with self._client.stream(
                "GET", url, headers={"Accept": "application/json", **self.config.headers}
            ) as response:
                body, truncated = await read_capped(response, self.limits.document_max_bytes)
        except httpx.HTTPError as exc:
            raise SourceLoadError(
                self.name, url, f"unreachable ({type(exc).__name__})", reachable=False
            ) from exc
        if response.status_code != 200:
            raise SourceLoadError(
                self.name, url, f"answered HTTP {response.status_code}", reachable=False
            )
        if truncated:
            raise SourceLoadError(
                self.name,
                url,
                f"the document is larger than {self.limits.document_max_bytes} bytes",
            )
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SourceLoadError(self.name, url, f"the document is not JSON ({exc})") from None

    def _caller(self, operation: Operation, kind: ToolKind) -> Any:
        async def call(ctx: ToolContext, /, **arguments: Any) -> Any:
            return await call_host(self, self._client, _request(operation, kind, arguments), ctx)

        return call

    def _previewer(self, operation: Operation, fallback: Any) -> Any:
        assert operation.preview is not None

        async def summarize(ctx: ToolContext, params: dict[str, Any]) -> str:
            # Sent like a query: as the user, retried on failures, without a confirmation or an
            # Idempotency-Key, since the host must change nothing. A refusal propagates.
            request = _request(operation, "query", params, path=operation.preview)
            answer = await call_host(self, self._client, request, ctx)
            summary = answer.get("summary") if isinstance(answer, dict) else None
            if isinstance(summary, str) and summary.strip():
                return " ".join(summary.split())[:SUMMARY_MAX_CHARS]
            return str(await fallback(ctx, params))

        return summarize


def _request(
    operation: Operation,
    kind: ToolKind,
    arguments: Mapping[str, Any],
    *,
    path: str | None = None,
) -> HttpRequest:
    """The request of one call; ``path`` replaces the operation's (a preview's)."""
    path = path or operation.path
    for name in operation.path_params:
        path = path.replace("{" + name + "}", _path_segment(arguments[name]))
    query = {
        name: _query_value(arguments[name])
        for name in operation.query_params
        if arguments.get(name) is not None
    }
    body: dict[str, Any] | None = None
    if operation.body_params is not None:
        body = {name: arguments[name] for name in operation.body_params if name in arguments}
        if not body and not operation.body_required:
            body = None
    return HttpRequest(
        tool=operation.operation_id,
        method=operation.method.upper(),
        url=operation.base_url + path,
        query=query,
        body=body,
        action=kind == "action",
    )


def _path_segment(value: Any) -> str:
    """A path segment: the value as text, with everything but unreserved characters escaped."""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text, safe="")


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_query_value(item) for item in value]
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return value
