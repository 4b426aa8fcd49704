"""Tool packs and the registry that shows, validates and runs their tools.

A host app describes what the assistant may do as a `ToolPack`: read-only *queries* that run at
once and side-effecting *actions* that run only after the user confirms them. The
`ToolRegistry` holds the packs of a deployment; the turn engine asks it which tools a user may
see (`openai_tools`), turns the model's raw arguments into a `ValidatedCall` (`validate`),
describes an action for the confirmation prompt (`summarize`) and runs a call (`run`), always
getting a `ToolOutcome` back instead of an exception.
"""

import asyncio
import importlib
import inspect
import json
import logging
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, Self, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncEngine

from server.tools.arguments import ArgumentsValidator, ModelArguments
from server.tools.context import TenantSettings, ToolContext
from server.tools.errors import (
    ToolArgumentsInvalid,
    ToolError,
    ToolForbidden,
    ToolNotFound,
    ToolNotInProfile,
    ToolTimeout,
)
from server.tools.schema import arguments_model, parameters_schema, parse_docstring

__all__ = [
    "SetupHook",
    "Summarizer",
    "TenantInfo",
    "ToolKind",
    "ToolOutcome",
    "ToolPack",
    "ToolProvider",
    "ToolRegistry",
    "ToolReturn",
    "ToolScope",
    "ToolSpec",
    "ValidatedCall",
    "template_summarizer",
]

logger = logging.getLogger(__name__)

ToolKind = Literal["query", "action"]
ToolFunc = Callable[..., Awaitable[Any]]
Summarizer = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]
SetupHook = Callable[[AsyncEngine, bool], Awaitable[None]]
TenantInfo = Callable[[str], TenantSettings]
F = TypeVar("F", bound=ToolFunc)

_SUMMARY_LIMIT = 160


@dataclass(frozen=True, slots=True)
class ToolReturn:
    """What a tool may return to give its result a one-line summary of its own choosing."""

    result: Any
    summary: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: how the model sees it, who may use it, and the code that runs it.

    Attributes:
        name: the function name the model calls.
        description: what the tool does, for the model.
        kind: ``"query"`` runs at once; ``"action"`` needs the user's confirmation first.
        roles: roles of which the user needs at least one; empty means everyone.
        timeout_s: how long one run may take.
        parameters: JSON Schema of the arguments (an object), for OpenAI ``function.parameters``.
        func: ``async (ctx, **arguments) -> result | ToolReturn``.
        summarize: for actions, ``async (ctx, params) -> str``: the line the user confirms.
        arguments: what checks the arguments (a pydantic model, or a JSON Schema).
        source: the tool source (host app) it comes from; None for a Python pack's tool.
        source_roles: roles of which the user also needs one: the source's own gate.
        destructive: for an action, whether the host says it may delete or overwrite data
            (MCP ``destructiveHint``), for the confirmation card; None when nobody said.
    """

    name: str
    description: str
    kind: ToolKind
    roles: frozenset[str]
    timeout_s: float
    parameters: dict[str, Any]
    func: ToolFunc
    summarize: Summarizer | None
    arguments: ArgumentsValidator
    source: str | None = None
    source_roles: frozenset[str] = frozenset()
    destructive: bool | None = None

    def allowed(self, roles: frozenset[str]) -> bool:
        """Whether a user holding `roles` may see and run this tool."""
        if self.source_roles and self.source_roles.isdisjoint(roles):
            return False
        return not self.roles or not self.roles.isdisjoint(roles)

    def openai_tool(self) -> dict[str, Any]:
        """The tool in the OpenAI chat-completions ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolPack:
    """A named set of tools a host app provides; module attribute `pack` in a pack module.

    Tools are declared with the `query` and `action` decorators; the decorated function is
    returned unchanged. A pack may also own database tables: `on_setup` registers the hook that
    creates them (and seeds demo data in dev mode), and `tenant_info` the function that tells
    each tenant's currency and locale.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.tools: dict[str, ToolSpec] = {}
        self.setup: SetupHook | None = None
        self.tenant_settings: TenantInfo | None = None

    # -- declaring tools -------------------------------------------------------------------

    def query(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        roles: Iterable[str] = (),
        timeout_s: float = 10.0,
    ) -> Callable[[F], F]:
        """Declare a read-only tool that runs as soon as the model calls it.

        Raises:
            ValueError: the name is taken in this pack, or there is no description.
            TypeError: the function is not ``async`` or its parameters cannot be described.
        """

        def register(func: F) -> F:
            self._add(func, "query", name, description, roles, timeout_s, None)
            return func

        return register

    def action(
        self,
        *,
        summary: Summarizer | str,
        name: str | None = None,
        description: str | None = None,
        roles: Iterable[str] = (),
        timeout_s: float = 30.0,
    ) -> Callable[[F], F]:
        """Declare a side-effecting tool that runs only after the user approves its summary.

        Args:
            summary: the line the user confirms: a format string over the arguments
                (``"Approve purchase order {po_number}"``) or ``async (ctx, params) -> str`` for
                summaries that need a lookup. It may raise `ToolError` to refuse the action
                before the user is asked.

        Raises:
            ValueError: the name is taken, there is no description, or the format string uses
                a name that is not an argument.
            TypeError: the function is not ``async`` or its parameters cannot be described.
        """

        def register(func: F) -> F:
            self._add(func, "action", name, description, roles, timeout_s, summary)
            return func

        return register

    def on_setup(self, hook: SetupHook) -> SetupHook:
        """Register ``async (engine, dev_mode) -> None``, run once when the server starts."""
        self.setup = hook
        return hook

    def tenant_info(self, info: TenantInfo) -> TenantInfo:
        """Register ``(tenant) -> TenantSettings`` telling each tenant's currency and locale."""
        self.tenant_settings = info
        return info

    def _add(
        self,
        func: ToolFunc,
        kind: ToolKind,
        name: str | None,
        description: str | None,
        roles: Iterable[str],
        timeout_s: float,
        summary: Summarizer | str | None,
    ) -> None:
        tool_name = name or func.__name__
        if tool_name in self.tools:
            raise ValueError(f"pack {self.name!r} already has a tool named {tool_name!r}")
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"tool {tool_name!r} must be an async function")
        if timeout_s <= 0:
            raise ValueError(f"tool {tool_name!r}: timeout_s must be positive")
        text = description or parse_docstring(func)[0]
        if not text:
            raise ValueError(f"tool {tool_name!r} needs a description or a docstring")
        model = arguments_model(func, tool_name)
        names = frozenset(model.model_fields)
        summarize = _summarizer(tool_name, summary, names) if summary is not None else None
        self.tools[tool_name] = ToolSpec(
            name=tool_name,
            description=text,
            kind=kind,
            roles=frozenset(roles),
            timeout_s=timeout_s,
            parameters=parameters_schema(model),
            func=func,
            summarize=summarize,
            arguments=ModelArguments(model),
        )


def _summarizer(tool_name: str, summary: Summarizer | str, names: frozenset[str]) -> Summarizer:
    if not isinstance(summary, str):
        return summary
    return template_summarizer(tool_name, summary, names)


def template_summarizer(tool_name: str, template: str, names: frozenset[str]) -> Summarizer:
    """A summarizer that fills ``template`` (``"Approve purchase order {po_number}"``) with the
    call's arguments.

    Raises:
        ValueError: the template is malformed or uses a name that is not an argument.
    """
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError as exc:
        raise ValueError(f"tool {tool_name!r}: summary template is malformed ({exc})") from None
    unknown = sorted(used - names)
    if unknown:
        raise ValueError(f"tool {tool_name!r}: summary uses unknown argument {unknown[0]!r}")

    async def format_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        # Optional arguments left out of the call read as empty rather than failing the prompt.
        values = {name: "" for name in names} | params
        return template.format_map(values)

    return format_summary


class ToolProvider(Protocol):
    """Tools that come and go at run time: a host app's tool source.

    Its tools are named ``<name>__<tool>``; the registry offers them only while the provider is
    `available` (its host answers), and looks them up afresh on every call, so a source that
    reloads its list (an OpenAPI document that changed, an MCP ``tools/list_changed``) is seen
    on the next turn.
    """

    @property
    def name(self) -> str:
        """The source's name, the prefix of its tools' names."""
        ...

    @property
    def available(self) -> bool:
        """Whether its tools should be offered now."""
        ...

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        """Its current tools by full name (``<name>__<tool>``)."""
        ...

    @property
    def problem(self) -> str | None:
        """Why it is degraded (down, circuit open), or None when it is fine."""
        ...


class ToolScope(Protocol):
    """Which tools a conversation may use beyond the user's roles: its profile."""

    @property
    def id(self) -> str:
        """The scope's name, for refusals."""
        ...

    def offers(self, tool: str) -> bool:
        """Whether the tool named `tool` is in the scope."""
        ...


@dataclass(frozen=True, slots=True)
class ValidatedCall:
    """A tool call whose arguments passed validation.

    `arguments` is JSON-able (Decimals as strings, nested models as objects, arguments that
    were left out omitted), so it can be stored with a confirmation and shown to the user.
    """

    spec: ToolSpec
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The result of running a call, success or not; `run` never raises for a tool's failure.

    Attributes:
        ok: whether the tool succeeded.
        result: JSON-able value for the model; ``{"error": message}`` when not ok.
        summary: one line for the `tool_result` frame and the UI.
    """

    ok: bool
    result: Any
    summary: str


class ToolRegistry:
    """All tools of a deployment, from one or more packs, with unique names."""

    def __init__(self) -> None:
        self.packs: list[ToolPack] = []
        self.providers: list[ToolProvider] = []
        self._tools: dict[str, ToolSpec] = {}

    def add_pack(self, pack: ToolPack) -> None:
        """Add every tool of `pack`.

        Raises:
            ValueError: a tool name is already taken by another pack.
        """
        clashes = sorted(set(pack.tools) & set(self._tools))
        if clashes:
            raise ValueError(f"tool {clashes[0]!r} of pack {pack.name!r} is already registered")
        prefixed = sorted(name for name in pack.tools if self._provider_of(name) is not None)
        if prefixed:
            raise ValueError(f"tool {prefixed[0]!r} of pack {pack.name!r} uses a source's prefix")
        self.packs.append(pack)
        self._tools.update(pack.tools)

    def add_provider(self, provider: ToolProvider) -> None:
        """Add a tool source whose tools are named ``<provider.name>__<tool>``.

        Raises:
            ValueError: another source has that name, or a pack tool uses its prefix.
        """
        if any(known.name == provider.name for known in self.providers):
            raise ValueError(f"tool source {provider.name!r} is already registered")
        prefix = f"{provider.name}__"
        clashes = sorted(name for name in self._tools if name.startswith(prefix))
        if clashes:
            raise ValueError(f"tool {clashes[0]!r} of a pack uses the prefix of {provider.name!r}")
        self.providers.append(provider)

    def _provider_of(self, name: str) -> ToolProvider | None:
        source, separator, _ = name.partition("__")
        if not separator:
            return None
        return next((known for known in self.providers if known.name == source), None)

    def degraded_sources(self) -> dict[str, str]:
        """Tool sources not fully usable now, by name, with the reason (for ``/readyz``)."""
        return {
            provider.name: provider.problem
            for provider in self.providers
            if provider.problem is not None
        }

    def source_of(self, name: str) -> str | None:
        """The tool source that offers (or offered) the tool ``name``; None for a pack's tool."""
        provider = self._provider_of(name)
        return provider.name if provider is not None else None

    @classmethod
    def from_import_paths(cls, paths: Sequence[str]) -> Self:
        """Build a registry from ``"module.path:attr"`` or ``"module.path"`` (attr ``pack``).

        Raises:
            ImportError: a module cannot be imported.
            TypeError: the attribute is not a `ToolPack`.
            ValueError: two packs define the same tool name.
        """
        registry = cls()
        for path in paths:
            module_name, _, attr = path.partition(":")
            module = importlib.import_module(module_name)
            pack = getattr(module, attr or "pack", None)
            if not isinstance(pack, ToolPack):
                raise TypeError(f"{path!r} is not a ToolPack")
            registry.add_pack(pack)
        return registry

    # -- what the model sees ---------------------------------------------------------------

    def get(self, name: str) -> ToolSpec | None:
        """The tool called `name`, if any (a source's tool also while its source is down)."""
        provider = self._provider_of(name)
        if provider is not None:
            return provider.tools.get(name)
        return self._tools.get(name)

    def visible_to(self, roles: frozenset[str], scope: ToolScope | None = None) -> list[ToolSpec]:
        """The tools a user holding `roles` may use: packs' first, then each available
        source's; with a `scope` (a conversation's profile), only the tools it includes."""
        specs = list(self._tools.values())
        for provider in self.providers:
            if provider.available:
                specs.extend(provider.tools.values())
        return [
            spec
            for spec in specs
            if spec.allowed(roles) and (scope is None or scope.offers(spec.name))
        ]

    def openai_tools(
        self, roles: frozenset[str], scope: ToolScope | None = None
    ) -> list[dict[str, Any]]:
        """The ``tools`` list for a chat-completions request on behalf of such a user."""
        return [spec.openai_tool() for spec in self.visible_to(roles, scope)]

    def tenant_settings(self, tenant: str) -> TenantSettings:
        """Currency and locale of `tenant`: from the first pack that knows, else USD / en-US."""
        for pack in self.packs:
            if pack.tenant_settings is not None:
                return pack.tenant_settings(tenant)
        return TenantSettings()

    async def setup_packs(self, engine: AsyncEngine, dev: bool) -> None:
        """Run every pack's setup hook (create its tables; seed demo data when `dev`)."""
        for pack in self.packs:
            if pack.setup is not None:
                await pack.setup(engine, dev)

    # -- validating and running ------------------------------------------------------------

    def validate(
        self,
        name: str,
        raw_arguments: str | Mapping[str, Any],
        roles: frozenset[str],
        scope: ToolScope | None = None,
    ) -> ValidatedCall:
        """Check that the user may call `name` (within `scope`, when given) and that the
        arguments fit its parameters.

        Validate again with the stored arguments before running a confirmed action: roles may
        have changed in between.

        Raises:
            ToolNotFound: no such tool.
            ToolError: the tool's source is down and its tools are not known now.
            ToolForbidden: the user's roles do not allow it.
            ToolNotInProfile: `scope` does not include it.
            ToolArgumentsInvalid: the arguments are not JSON, not an object, or do not fit;
                the message names each offending argument.
        """
        spec = self.get(name)
        if spec is None:
            provider = self._provider_of(name)
            if provider is not None and not provider.available:
                # Its list is unknown while the host is down: say so rather than "unknown".
                raise ToolError(
                    f"tool source {provider.name!r} is not available at the moment; "
                    f"{name!r} was not called",
                    code="source_unavailable",
                )
            raise ToolNotFound(name)
        if not spec.allowed(roles):
            raise ToolForbidden(name)
        if scope is not None and not scope.offers(name):
            raise ToolNotInProfile(name, scope.id)
        arguments = _parse_arguments(name, raw_arguments)
        return ValidatedCall(spec, spec.arguments.check(name, arguments))

    async def summarize(self, call: ValidatedCall, ctx: ToolContext) -> str:
        """The human line the user is asked to confirm, e.g. "Approve purchase order PO-1001 …".

        Raises:
            ToolError: the action is refused before the user is asked (for example, the
                purchase order is not awaiting approval); answer the model with it.
            ToolTimeout: the summary took longer than the tool's timeout.
        """
        spec = call.spec
        if spec.summarize is None:
            return f"Run {spec.name}"
        deadline = asyncio.timeout(spec.timeout_s)
        try:
            async with deadline:
                return await spec.summarize(ctx, dict(call.arguments))
        except ToolError:
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise ToolTimeout(spec.name, spec.timeout_s) from exc
            logger.exception("summary of tool %r failed", spec.name)
            raise ToolError(f"could not prepare action {spec.name!r}") from exc

    async def run(self, call: ValidatedCall, ctx: ToolContext) -> ToolOutcome:
        """Run a validated call within its timeout and report how it went.

        A `ToolError` becomes ``ok=False`` with its message; a timeout becomes ``ok=False``
        with "tool 'x' timed out after Ns"; any other exception is logged and becomes ``ok=False``
        with a generic message, so internals never reach the model. Cancellation propagates.
        """
        spec = call.spec
        try:
            kwargs = spec.arguments.keywords(spec.name, dict(call.arguments))
        except ToolArgumentsInvalid as exc:
            # Stored arguments of a confirmed action may no longer fit a changed tool.
            return _failure(exc.message)
        deadline = asyncio.timeout(spec.timeout_s)
        try:
            async with deadline:
                value = await spec.func(ctx, **kwargs)
            if isinstance(value, ToolReturn):
                return ToolOutcome(True, to_jsonable_python(value.result), value.summary)
            result = to_jsonable_python(value)
            return ToolOutcome(True, result, _derive_summary(spec.name, result))
        except ToolError as exc:
            return _failure(exc.message)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                return _failure(ToolTimeout(spec.name, spec.timeout_s).message)
            logger.exception("tool %r failed", spec.name)
            return _failure(f"tool {spec.name!r} failed unexpectedly")


def _parse_arguments(name: str, raw: str | Mapping[str, Any]) -> Any:
    if not isinstance(raw, str):
        return dict(raw)
    if not raw.strip():
        return {}  # Some endpoints send "" for a call without arguments.
    try:
        # Numbers stay exact: 0.1 arrives as Decimal("0.1"), never as a binary float.
        return json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise ToolArgumentsInvalid(name, ["arguments are not valid JSON"]) from exc


def _failure(message: str) -> ToolOutcome:
    return ToolOutcome(False, {"error": message}, message)


def _derive_summary(name: str, result: Any) -> str:
    if isinstance(result, list):
        return f"{len(result)} result{'s' if len(result) != 1 else ''}"
    if isinstance(result, str) and result:
        text = " ".join(result.split())
        return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"
    return f"{name} done"
