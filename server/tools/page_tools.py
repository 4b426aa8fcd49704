"""Page tools: functions of the host page that the user's open tabs offer the assistant.

A tab registers its tools with a ``page_tools`` frame. The registration is kept in the shared
state store, keyed by user (``storage.page_tools``), so that a turn running on any worker
offers the model every page tool of the user's open tabs, as ``page__<name>``.

When the model calls one, it runs in the tab that sent the message if that tab registered it,
else in another tab of the user that did. The chosen tab alone gets a ``page_tool_call``; if it
hangs on another worker, the call travels there over the control channel, and the answer comes
back the same way. Every call ends with an outcome the model hears (invariant 6): the
handler's result, its error, the tab closing, or no answer within ``page_tool_timeout_s``.

To the tool runner a page tool looks like any other tool: :meth:`PageToolRouter.validate`
returns a :class:`~server.tools.registry.ValidatedCall` whose spec runs the call in the chosen
tab, a query unless the tab registered it with ``confirm: true`` (then it is an action and
goes through the confirmation card first, running in the tab that approved it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jsonschema
import orjson

from protocol import ErrorCode, PageToolCall, PageToolResult, PageToolSpec
from server.config import Settings
from server.errors import ClientError
from server.tools.arguments import SchemaArguments
from server.tools.context import ToolContext
from server.tools.errors import ToolArgumentsInvalid, ToolError, ToolNotInProfile
from server.tools.registry import ToolReturn, ToolScope, ToolSpec, ValidatedCall
from storage.control_messages import PageToolAnswered, RunPageTool
from storage.errors import StateUnavailable
from storage.keys import UserKey
from storage.page_tools import PageToolRegistrations
from storage.small_stores import ControlChannel

logger = logging.getLogger(__name__)

PAGE_PREFIX = "page__"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,48}$")

# Sends one frame to a tab of this worker (its connection's bounded send queue).
SendToTab = Callable[[PageToolCall], None]


@dataclass(frozen=True, slots=True)
class PageTool:
    """One registered page tool, as stored and as offered to the model."""

    name: str
    description: str
    parameters: dict[str, Any]
    confirm: bool = False

    @property
    def model_name(self) -> str:
        return PAGE_PREFIX + self.name

    def stored(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "confirm": self.confirm,
        }

    @classmethod
    def from_stored(cls, value: Mapping[str, Any]) -> PageTool:
        return cls(
            name=str(value["name"]),
            description=str(value["description"]),
            parameters=dict(value["parameters"]),
            confirm=bool(value.get("confirm")),
        )

    def openai_tool(self) -> dict[str, Any]:
        """The tool in the OpenAI chat-completions ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.model_name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def checked_page_tools(
    specs: Sequence[PageToolSpec], *, max_tools: int, max_bytes: int
) -> list[PageTool]:
    """The tools of a ``page_tools`` frame, each checked.

    Raises:
        ClientError: ``invalid_field`` naming the first offending tool: too many tools, too
            large a registration, a bad or repeated name, or ``parameters`` that are not a
            valid JSON Schema of type ``object``.
    """
    if len(specs) > max_tools:
        raise _invalid(f"tools: at most {max_tools} page tools per connection")
    tools: list[PageTool] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        where = f"tools[{index}]"
        if not NAME_PATTERN.fullmatch(spec.name):
            raise _invalid(f"{where}.name: must match {NAME_PATTERN.pattern}")
        if spec.name in seen:
            raise _invalid(f"{where}.name: {spec.name!r} is registered twice")
        seen.add(spec.name)
        parameters = dict(spec.parameters)
        if parameters.get("type") != "object":
            raise _invalid(f"{where}.parameters: must be a JSON Schema of type 'object'")
        try:
            jsonschema.Draft202012Validator.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            message = f"{where}.parameters: not a valid JSON Schema: {exc.message[:200]}"
            raise _invalid(message) from None
        tools.append(PageTool(spec.name, spec.description, parameters, bool(spec.confirm)))
    size = len(orjson.dumps([tool.stored() for tool in tools]))
    if size > max_bytes:
        raise _invalid(f"tools: registration of {size} bytes, at most {max_bytes}")
    return tools


def _invalid(message: str) -> ClientError:
    return ClientError(ErrorCode.INVALID_FIELD, message)


@dataclass(slots=True)
class _Tab:
    """A tab of this worker that registered page tools."""

    owner: UserKey
    send: SendToTab
    renewer: asyncio.Task[None] | None = None


class PageToolRouter:
    """One worker's side of page tools: its tabs' registrations, the calls its turns wait on,
    and the calls it delivered to its tabs."""

    def __init__(
        self, settings: Settings, registrations: PageToolRegistrations, control: ControlChannel
    ) -> None:
        self._settings = settings
        self._registrations = registrations
        self._control = control
        self._tabs: dict[str, _Tab] = {}
        # Calls this worker's turns wait on, by call id.
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # Calls delivered to a tab of this worker, by call id: which connection may answer.
        self._delivered: dict[str, str] = {}

    # -- the tabs' side ------------------------------------------------------------------------

    async def register(
        self, owner: UserKey, connection_id: str, send: SendToTab, specs: Sequence[PageToolSpec]
    ) -> None:
        """Make ``specs`` the page tools of the connection (replacing its earlier ones).

        Raises:
            ClientError: the tools are refused (see :func:`checked_page_tools`); the
                connection keeps its earlier set.
            StateUnavailable: Redis could not be reached.
        """
        tools = checked_page_tools(
            specs,
            max_tools=self._settings.page_tools_max,
            max_bytes=self._settings.page_tools_max_bytes,
        )
        stored = [tool.stored() for tool in tools]
        ttl_s = self._settings.connection_presence_ttl_s
        await self._registrations.put(owner, connection_id, stored, ttl_s)
        tab = self._tabs.get(connection_id)
        if tab is None:
            tab = self._tabs[connection_id] = _Tab(owner, send)
            tab.renewer = asyncio.create_task(
                self._renew(owner, connection_id), name=f"page tools {connection_id}"
            )
        logger.info("connection %s offers %d page tools", connection_id, len(tools))

    async def _renew(self, owner: UserKey, connection_id: str) -> None:
        ttl_s = self._settings.connection_presence_ttl_s
        while True:
            await asyncio.sleep(ttl_s / 3)
            try:
                live = await self._registrations.live(owner)
                if connection_id in live:
                    await self._registrations.put(owner, connection_id, live[connection_id], ttl_s)
            except Exception:
                logger.warning("connection %s: could not renew its page tools", connection_id)

    async def forget(self, owner: UserKey, connection_id: str) -> None:
        """The connection closed: withdraw its tools and end the calls it left unanswered.

        Never raises: the registration lapses on its own if the store is away.
        """
        tab = self._tabs.pop(connection_id, None)
        if tab is None:
            return
        if tab.renewer is not None:
            tab.renewer.cancel()
        with contextlib.suppress(Exception):
            await self._registrations.remove(owner, connection_id)
        orphans = [call for call, tab_id in self._delivered.items() if tab_id == connection_id]
        for call_id in orphans:
            del self._delivered[call_id]
            with contextlib.suppress(Exception):
                await self._settle(call_id, {"error": "the tab closed before it answered"})

    async def answer(self, connection_id: str, frame: PageToolResult) -> None:
        """A tab's ``page_tool_result``.

        Raises:
            ClientError: ``page_tool_call_not_found``: this connection was not asked to run
                that call (unknown, already answered, timed out, another tab's).
            StateUnavailable: the answer must cross to another worker and Redis is away.
        """
        if self._delivered.get(frame.call_id) != connection_id:
            raise ClientError(
                ErrorCode.PAGE_TOOL_CALL_NOT_FOUND,
                "no page tool call with that id is waiting for this tab",
                ref=frame.call_id,
            )
        del self._delivered[frame.call_id]
        outcome: dict[str, Any]
        if frame.error is not None:
            outcome = {"error": frame.error[: self._settings.tool_error_max_chars]}
        else:
            outcome = {"result": frame.result}
        await self._settle(frame.call_id, outcome)

    async def _settle(self, call_id: str, outcome: dict[str, Any]) -> None:
        """Hand a call's outcome to the turn waiting on it, here or on another worker."""
        waiting = self._waiting.get(call_id)
        if waiting is not None:
            if not waiting.done():
                waiting.set_result(outcome)
            return
        await self._control.publish(
            PageToolAnswered(call_id=call_id, outcome=orjson.dumps(outcome).decode())
        )

    # -- the control channel's side ------------------------------------------------------------

    def on_run(self, message: RunPageTool) -> None:
        """Another worker's turn asks a tab to run a call; only the tab's worker acts."""
        if message.connection_id not in self._tabs:
            return
        try:
            arguments = orjson.loads(message.arguments)
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            logger.warning("dropped a page tool call whose arguments are not a JSON object")
            return
        self._deliver(message.connection_id, message.call_id, message.name, arguments)

    def on_answered(self, message: PageToolAnswered) -> None:
        """A tab on another worker answered; only the worker whose turn waits acts."""
        waiting = self._waiting.get(message.call_id)
        if waiting is None or waiting.done():
            return
        try:
            outcome = orjson.loads(message.outcome)
        except orjson.JSONDecodeError:
            outcome = {"error": "the page tool's answer was lost on the way"}
        waiting.set_result(outcome if isinstance(outcome, dict) else {"result": outcome})

    def _deliver(
        self, connection_id: str, call_id: str, name: str, arguments: dict[str, Any]
    ) -> None:
        tab = self._tabs[connection_id]
        self._delivered[call_id] = connection_id
        # An unanswered call is forgotten when the turn stops waiting for it.
        asyncio.get_running_loop().call_later(
            self._settings.page_tool_timeout_s, self._delivered.pop, call_id, None
        )
        tab.send(PageToolCall(call_id=call_id, name=name, arguments=arguments))

    # -- the turns' side -----------------------------------------------------------------------

    def handles(self, model_name: str) -> bool:
        """Whether ``model_name`` names a page tool (``page__<name>``)."""
        return model_name.startswith(PAGE_PREFIX)

    async def offered(self, owner: UserKey, origin: str | None) -> list[dict[str, Any]]:
        """The page tools of the user's open tabs, in the model's ``tools`` format; where two
        tabs registered one name differently, the sending tab's (else the first) counts.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        tools: dict[str, PageTool] = {}
        for tool, _ in await self._candidates(owner, origin):
            tools.setdefault(tool.name, tool)
        return [tool.openai_tool() for tool in tools.values()]

    async def validate(
        self,
        owner: UserKey,
        origin: str | None,
        model_name: str,
        raw_arguments: str,
        scope: ToolScope | None = None,
    ) -> ValidatedCall:
        """A call of the page tool ``model_name``, to run in the tab chosen now: ``origin``
        if it offers the tool, else another tab of the user that does.

        Raises:
            ToolNotInProfile: ``scope`` (the conversation's profile) does not offer it.
            ToolError: no open tab of the user offers the tool.
            ToolArgumentsInvalid: the arguments do not fit the tool's parameters.
            ToolError: the state store is away, so no tab can be found.
        """
        if scope is not None and not scope.offers(model_name):
            raise ToolNotInProfile(model_name, scope.id)
        name = model_name.removeprefix(PAGE_PREFIX)
        try:
            candidates = await self._candidates(owner, origin)
        except StateUnavailable:
            raise ToolError(
                f"page tool {name!r} is not reachable at the moment; it was not called"
            ) from None
        for tool, connection_id in candidates:
            if tool.name == name:
                return self._validated(owner, connection_id, tool, raw_arguments)
        raise ToolError(
            f"no open tab offers the page tool {name!r} any more; it was not called",
            code="tool_not_found",
        )

    async def _candidates(self, owner: UserKey, origin: str | None) -> list[tuple[PageTool, str]]:
        """Every (tool, connection) pair of the user's tabs, the sending tab's first."""
        live = await self._registrations.live(owner)
        order = sorted(live, key=lambda connection_id: connection_id != origin)
        pairs = []
        for connection_id in order:
            for stored in live[connection_id]:
                try:
                    pairs.append((PageTool.from_stored(stored), connection_id))
                except (KeyError, TypeError, ValueError):
                    logger.warning("skipped a malformed page tool of %s", connection_id)
        return pairs

    def _validated(
        self, owner: UserKey, connection_id: str, tool: PageTool, raw_arguments: str
    ) -> ValidatedCall:
        checker = SchemaArguments(tool.parameters)
        arguments = checker.check(tool.model_name, _parse_arguments(tool, raw_arguments))

        async def run_in_tab(ctx: ToolContext, **params: Any) -> Any:
            return await self._call(owner, connection_id, tool, params)

        async def summarize(ctx: ToolContext, params: dict[str, Any]) -> str:
            shown = ", ".join(f"{key}: {value}" for key, value in params.items())
            return f"{tool.description or tool.name} ({shown})" if shown else tool.description

        spec = ToolSpec(
            name=tool.model_name,
            description=tool.description,
            kind="action" if tool.confirm else "query",
            roles=frozenset(),
            # The call's own deadline (page_tool_timeout_s) answers first, with a clearer
            # message than the registry's.
            timeout_s=self._settings.page_tool_timeout_s + 5.0,
            parameters=tool.parameters,
            func=run_in_tab,
            summarize=summarize,
            arguments=checker,
            source="page",
        )
        return ValidatedCall(spec, arguments)

    async def _call(
        self, owner: UserKey, connection_id: str, tool: PageTool, arguments: dict[str, Any]
    ) -> Any:
        """Run the call in the tab and return its result.

        Raises:
            ToolError: the handler failed, the tab closed, or no answer came in time.
        """
        call_id = f"pt_{secrets.token_hex(8)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        try:
            if connection_id in self._tabs:
                self._deliver(connection_id, call_id, tool.name, arguments)
            else:
                await self._control.publish(
                    RunPageTool(
                        connection_id=connection_id,
                        call_id=call_id,
                        name=tool.name,
                        arguments=orjson.dumps(arguments).decode(),
                    )
                )
            timeout_s = self._settings.page_tool_timeout_s
            try:
                outcome = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise ToolError(
                    f"page tool {tool.name!r}: the page did not answer within {timeout_s:g}s"
                ) from None
        finally:
            self._waiting.pop(call_id, None)
            self._delivered.pop(call_id, None)
        if "error" in outcome:
            raise ToolError(f"page tool {tool.name!r} failed: {outcome['error']}")
        result = outcome.get("result")
        return ToolReturn(result, summary=_said(result) or f"{tool.name} ran on the page")


def _said(result: Any) -> str | None:
    """What a handler said it did: its result if that is text, or the result's ``message``."""
    if isinstance(result, Mapping):
        result = result.get("message")
    return result.strip() if isinstance(result, str) and result.strip() else None


def _parse_arguments(tool: PageTool, raw: str) -> Any:
    if not raw.strip():
        return {}
    try:
        # As the registry does: numbers stay exact.
        return json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise ToolArgumentsInvalid(tool.model_name, ["arguments are not valid JSON"]) from exc
