"""The tool sources file (``PARLEY_TOOL_SOURCES``): which host apps lend Parley their tools.

A TOML file of ``[[source]]`` tables::

    [[source]]
    name = "erp"                       # tools are offered as erp__<operationId>
    kind = "openapi"                   # or "mcp"
    url = "https://erp.example.com/openapi.json"
    auth = "user-jwt"                  # default; or "passthrough", "none"
    secret = "${ERP_PARLEY_SECRET}"    # HS256 secret; unset: Parley's own key (JWKS)
    headers = { "X-Api-Key" = "${ERP_API_KEY}" }
    include = ["list_invoices", "approve_po"]
    exclude = []
    roles = ["finance", "buyer"]       # who may use its tools; empty: everyone
    timeout_s = 10

    [source.tools.approve_po]          # per-tool overrides
    kind = "action"
    roles = ["manager"]
    summary = "Approve purchase order {po_number}"

Values of ``secret`` and ``headers`` may name environment variables as ``${NAME}``, alone or
inside other text (``"Bearer ${TOKEN}"``); ``$$`` stands for a literal ``$``. A variable that is
not set is an error, never an empty header. Unknown keys are errors too, so a misspelt key cannot
silently turn a rule off. Every error names the file, the source and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from server.toml_file import read_toml_file
from server.tools.sources.errors import SourceConfigError

__all__ = [
    "SOURCE_KINDS",
    "AuthMode",
    "SourceConfig",
    "SourceKind",
    "ToolOverride",
    "expand_env",
    "load_sources_file",
    "parse_sources",
]

SourceKind = Literal["openapi", "mcp"]
AuthMode = Literal["user-jwt", "passthrough", "none"]
ToolKindOverride = Literal["query", "action"]

SOURCE_KINDS: tuple[SourceKind, ...] = ("openapi", "mcp")
AUTH_MODES: tuple[AuthMode, ...] = ("user-jwt", "passthrough", "none")
# Tool names are "<source>__<tool>" and function names may be 64 characters: a short source
# name without "__" keeps the split unambiguous and leaves room for the tool's own name.
SOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$")
SOURCE_NAME_MAX = 24
TIMEOUT_MAX_S = 600.0
_ENV_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\})")
_SOURCE_KEYS = frozenset(
    {
        "name",
        "kind",
        "url",
        "command",
        "auth",
        "secret",
        "headers",
        "include",
        "exclude",
        "roles",
        "timeout_s",
        "tools",
    }
)
_OVERRIDE_KEYS = frozenset({"kind", "roles", "summary"})


@dataclass(frozen=True, slots=True)
class ToolOverride:
    """What the operator says about one tool, over what the source itself says.

    Attributes:
        kind: ``"query"`` or ``"action"``, or None to keep the source's choice.
        roles: roles of which the user needs one to use this tool, or None to keep the source's.
        summary: the confirmation card's line as a template over the arguments, or None.
    """

    kind: ToolKindOverride | None = None
    roles: frozenset[str] | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[source]]`` table, checked and with its environment references resolved.

    Attributes:
        name: prefix of its tools' names (``<name>__<tool>``) and the ``aud`` of its tokens.
        kind: ``"openapi"`` or ``"mcp"``.
        url: the OpenAPI document, or the MCP streamable-HTTP endpoint.
        command: argv of an MCP server run over stdio (instead of ``url``).
        auth: how calls say who the user is: a JWT Parley signs, the user's own token, nothing.
        secret: the HS256 secret of ``user-jwt`` tokens; None signs with Parley's own key.
        headers: static headers sent with every request (API keys), resolved.
        include: tool names (without the prefix) to offer; empty offers all.
        exclude: tool names never to offer.
        roles: roles of which a user needs one to use any tool of the source; empty: everyone.
        timeout_s: the source's own timeout for one call, or None for PARLEY_TOOL_TIMEOUT_S.
        tools: per-tool overrides by tool name (without the prefix).
    """

    name: str
    kind: SourceKind
    url: str | None = None
    command: tuple[str, ...] = ()
    auth: AuthMode = "user-jwt"
    secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    timeout_s: float | None = None
    tools: Mapping[str, ToolOverride] = field(default_factory=dict)

    def offers(self, tool: str) -> bool:
        """Whether the operator lets the source's tool ``tool`` (no prefix) be offered."""
        if self.include and tool not in self.include:
            return False
        return tool not in self.exclude

    def tool_name(self, tool: str) -> str:
        """The name the model calls: ``<source>__<tool>``."""
        return f"{self.name}__{tool}"

    def override(self, tool: str) -> ToolOverride:
        """The operator's overrides of ``tool`` (empty when there are none)."""
        return self.tools.get(tool, _NO_OVERRIDE)


_NO_OVERRIDE = ToolOverride()


def load_sources_file(
    path: str, environ: Mapping[str, str] | None = None
) -> tuple[SourceConfig, ...]:
    """Read and check the tool sources file at ``path``.

    Raises:
        SourceConfigError: the file cannot be read, is not TOML, or a source is wrong; the
            message names the file, the source and the key.
    """
    document = read_toml_file(path, lambda reason: SourceConfigError(path, None, None, reason))
    return parse_sources(document, path, os.environ if environ is None else environ)


def parse_sources(
    document: Mapping[str, Any], path: str, environ: Mapping[str, str]
) -> tuple[SourceConfig, ...]:
    """Check a parsed sources document; ``path`` only names the file in errors.

    Raises:
        SourceConfigError: see `load_sources_file`.
    """
    unknown = sorted(set(document) - {"source"})
    if unknown:
        raise SourceConfigError(path, None, unknown[0], "unknown key (expected [[source]] tables)")
    tables = document.get("source", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SourceConfigError(path, None, "source", "must be an array of tables ([[source]])")
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        source = _parse_source(table, path, index, environ)
        if source.name in seen:
            raise SourceConfigError(path, source.name, "name", "is used by two sources")
        seen.add(source.name)
        sources.append(source)
    return tuple(sources)


def expand_env(value: str, environ: Mapping[str, str]) -> str:
    """Replace each ``${NAME}`` with that environment variable, and ``$$`` with ``$``.

    Raises:
        KeyError: a named variable is not set (its name is the argument).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in environ:
            raise KeyError(name)
        return environ[name]

    return _ENV_REFERENCE.sub(replace, value)


class _Table:
    """Reads the keys of one table, raising errors that name the file, source and key."""

    def __init__(self, table: Mapping[str, Any], path: str, source: str, prefix: str = "") -> None:
        self.table = table
        self.path = path
        self.source = source
        self.prefix = prefix

    def error(self, key: str | None, reason: str) -> SourceConfigError:
        full = f"{self.prefix}{key}" if key is not None else (self.prefix.rstrip(".") or None)
        return SourceConfigError(self.path, self.source, full, reason)

    def check_keys(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> str | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return cast(str, value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(value)


def _parse_source(
    raw: Mapping[str, Any], path: str, index: int, environ: Mapping[str, str]
) -> SourceConfig:
    name_value = raw.get("name")
    label = name_value if isinstance(name_value, str) and name_value else f"source[{index}]"
    table = _Table(raw, path, label)
    table.check_keys(_SOURCE_KEYS)
    name = table.string("name", required=True)
    assert name is not None
    if not SOURCE_NAME.match(name) or len(name) > SOURCE_NAME_MAX:
        raise table.error(
            "name",
            f"must be letters, digits, '-' and single '_', start with a letter and be at most "
            f"{SOURCE_NAME_MAX} characters",
        )
    kind = cast(SourceKind, table.choice("kind", SOURCE_KINDS, None))
    if kind is None:
        raise table.error("kind", "is required")
    url = table.string("url")
    command = table.strings("command") if "command" in raw else ()
    if "command" in raw and not command:
        raise table.error("command", "must name a program")
    if url is not None and command:
        raise table.error("command", "give either url or command, not both")
    if kind == "openapi" and url is None:
        raise table.error("url", "is required for an openapi source (the document's URL)")
    if kind == "openapi" and command:
        raise table.error("command", "only an mcp source runs a command")
    if kind == "mcp" and url is None and not command:
        raise table.error("url", "an mcp source needs url (streamable HTTP) or command (stdio)")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise table.error("url", "must be an http:// or https:// URL")
    auth = cast(AuthMode, table.choice("auth", AUTH_MODES, "user-jwt"))
    secret = _expanded(table, "secret", table.string("secret"), environ)
    if secret is not None and auth != "user-jwt":
        raise table.error("secret", 'only signs tokens of auth = "user-jwt"')
    headers = _headers(table, raw.get("headers", {}), auth, environ)
    timeout_s = _timeout(table, raw.get("timeout_s"))
    return SourceConfig(
        name=name,
        kind=kind,
        url=url,
        command=command,
        auth=auth,
        secret=secret,
        headers=headers,
        include=frozenset(table.strings("include")),
        exclude=frozenset(table.strings("exclude")),
        roles=frozenset(table.strings("roles")),
        timeout_s=timeout_s,
        tools=_overrides(table, raw.get("tools", {})),
    )


def _expanded(table: _Table, key: str, value: str | None, environ: Mapping[str, str]) -> str | None:
    if value is None:
        return None
    try:
        return expand_env(value, environ)
    except KeyError as exc:
        raise table.error(key, f"environment variable {exc.args[0]!r} is not set") from None


def _headers(table: _Table, raw: Any, auth: AuthMode, environ: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise table.error("headers", "must be a table of header names to strings")
    headers: dict[str, str] = {}
    for header, value in raw.items():
        key = f"headers.{header}"
        if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", header):
            raise table.error(key, "is not a valid header name")
        if not isinstance(value, str):
            raise table.error(key, "must be a string")
        if header.lower() == "authorization" and auth != "none":
            raise table.error(key, f'clashes with auth = {auth!r}; set auth = "none" to send it')
        if header.lower() == "idempotency-key":
            raise table.error(key, "is set by Parley itself on every action")
        resolved = _expanded(table, key, value, environ)
        assert resolved is not None
        if "\n" in resolved or "\r" in resolved:
            raise table.error(key, "must not contain line breaks")
        headers[header] = resolved
    return headers


def _timeout(table: _Table, raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise table.error("timeout_s", "must be a number of seconds")
    if not 0 < raw <= TIMEOUT_MAX_S:
        raise table.error("timeout_s", f"must be above 0 and at most {TIMEOUT_MAX_S:g}")
    return float(raw)


def _overrides(table: _Table, raw: Any) -> dict[str, ToolOverride]:
    if not isinstance(raw, dict):
        raise table.error("tools", "must be a table of per-tool tables ([source.tools.<name>])")
    overrides: dict[str, ToolOverride] = {}
    for tool, settings in raw.items():
        inner = _Table(settings, table.path, table.source, f"tools.{tool}.")
        if not isinstance(settings, dict):
            raise inner.error(None, "must be a table")
        inner.check_keys(_OVERRIDE_KEYS)
        kind = cast(ToolKindOverride | None, inner.choice("kind", ("query", "action"), None))
        roles = frozenset(inner.strings("roles")) if "roles" in settings else None
        overrides[tool] = ToolOverride(kind=kind, roles=roles, summary=inner.string("summary"))
    return overrides
