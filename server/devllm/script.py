"""Scripts: ordered rules that decide what the dev model says.

A ``Rule`` has a regular expression matched against the last user message (or, with
``on="tool"``, against the last tool result; with ``on="note"``, against each system note the
server added after the model last spoke: an approval's outcome, the approvals still open) and
produces text and/or tool calls. Text, tool names
and string argument values are templates that may reference the match's groups the way
``re.Match.expand`` does (``\\1``, ``\\g<name>``); callables receive the match for anything more.

The first matching rule answers. A rule marked ``combine=True`` also pulls in every later
``combine`` rule that matches the same message, so "dashboard and cash balance" can call two
tools in one reply.

A rule only calls a tool the request offers, under its own name or as the one
``<source>__<name>`` of a tool source (``erp__cash_balance`` for ``cash_balance``); for a tool
that is not offered it says plainly that it has no tool for that. This is how tools hidden by
the user's roles become visible in the conversation. ``ignore_offered_tools=True`` turns that
check off (tests use it to force calls a real model might make by mistake).

After tool results (the last message has role ``tool``) and no ``on="tool"`` rule matching, the
script answers from the results themselves (see ``answers``). Otherwise a matching ``on="note"``
rule answers before the ``on="user"`` rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from server.devllm.answers import ToolResult, answer_tool_results
from server.devllm.wire import message_text

# Tools of a tool source are offered as "<source>__<tool>" (server/tools/sources/config.py).
SOURCE_SEPARATOR = "__"

TextTemplate = str | Callable[[re.Match[str]], str]
ArgumentsTemplate = Mapping[str, Any] | Callable[[re.Match[str]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class CallTemplate:
    """A tool call a rule makes.

    ``name`` is a template. ``arguments`` is a mapping (its string values, also nested ones, are
    templates) or a callable building the mapping from the match; ``raw_arguments``, when set, is
    a template sent verbatim instead, valid JSON or not. ``purpose`` completes the sentence
    "I can't ..." when the tool is not offered, e.g. ``"approve purchase order \\g<po>"``.
    """

    name: str
    arguments: ArgumentsTemplate = field(default_factory=dict)
    raw_arguments: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a script: a pattern and what to reply when it matches.

    ``pattern`` given as a string is compiled case-insensitively. ``on`` chooses what it is
    matched against: the last user message (``"user"``), the last tool result (``"tool"``) or
    a system note after the model last spoke (``"note"``).
    ``only_if_offered`` skips the rule, as if it did not match, when a tool it calls is not
    offered (rather than saying that tool is unavailable).
    """

    pattern: str | re.Pattern[str]
    text: TextTemplate | None = None
    calls: Sequence[CallTemplate] = ()
    on: Literal["user", "tool", "note"] = "user"
    combine: bool = False
    ignore_offered_tools: bool = False
    only_if_offered: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = (
            self.pattern
            if isinstance(self.pattern, re.Pattern)
            else re.compile(self.pattern, re.IGNORECASE)
        )
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "calls", tuple(self.calls))


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A tool call the reply makes: the tool's name and its arguments text."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the model says: text, tool calls, or both."""

    text: str = ""
    calls: tuple[PlannedCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parts of a chat completions request a script looks at."""

    user_text: str
    tool_results: tuple[ToolResult, ...]
    offered_tools: frozenset[str]
    # System notes after the model last spoke (not the system prompt), oldest first.
    notes: tuple[str, ...] = ()


class Script:
    """An ordered list of rules plus the reply for a message no rule matches."""

    def __init__(
        self, rules: Sequence[Rule], *, fallback: str, fallback_search: str | None = None
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.fallback = fallback
        # A tool that takes {"query": <the message>}, called for a message no rule matches
        # whenever the request offers it (the knowledge search); else the fallback text.
        self.fallback_search = fallback_search

    def reply(self, conversation: Conversation) -> Reply:
        """Decide the reply to ``conversation``."""
        if conversation.tool_results:
            last = conversation.tool_results[-1]
            reply = self._reply_from_rules("tool", last.content, conversation.offered_tools)
            return reply or Reply(text=answer_tool_results(conversation.tool_results))
        for note in conversation.notes:
            reply = self._reply_from_rules("note", note, conversation.offered_tools)
            if reply is not None:
                return reply
        reply = self._reply_from_rules("user", conversation.user_text, conversation.offered_tools)
        if reply is None and self.fallback_search in conversation.offered_tools:
            query = orjson.dumps({"query": conversation.user_text}).decode()
            return Reply(calls=(PlannedCall(name=self.fallback_search, arguments=query),))
        return reply or Reply(text=self.fallback)

    def _reply_from_rules(
        self, on: Literal["user", "tool", "note"], subject: str, offered: frozenset[str]
    ) -> Reply | None:
        matched: list[tuple[Rule, re.Match[str]]] = []
        for rule in self.rules:
            if rule.on != on:
                continue
            match = rule.regex.search(subject)
            if match is None or (rule.only_if_offered and not _calls_offered(rule, offered)):
                continue
            if not matched:
                matched.append((rule, match))
                if not rule.combine:
                    break
            elif rule.combine:
                matched.append((rule, match))
        if not matched:
            return None
        return _render(matched, offered)


def _render(matched: list[tuple[Rule, re.Match[str]]], offered: frozenset[str]) -> Reply:
    """Turn the matching rules into one reply, explaining each tool that is not offered."""
    texts: list[str] = []
    calls: list[PlannedCall] = []
    for rule, match in matched:
        if rule.text is not None:
            texts.append(_expand_text(rule.text, match))
        for template in rule.calls:
            name = match.expand(template.name)
            if not rule.ignore_offered_tools:
                name = offered_name(name, offered)
            call = PlannedCall(name=name, arguments=_render_arguments(template, match))
            if rule.ignore_offered_tools or call.name in offered:
                if call not in calls:
                    calls.append(call)
            else:
                purpose = match.expand(template.purpose) if template.purpose else None
                sentence = no_tool_sentence(call.name, purpose)
                if sentence not in texts:
                    texts.append(sentence)
    return Reply(text=" ".join(text for text in texts if text), calls=tuple(calls))


def _calls_offered(rule: Rule, offered: frozenset[str]) -> bool:
    return all(offered_name(template.name, offered) in offered for template in rule.calls)


def offered_name(tool: str, offered: frozenset[str]) -> str:
    """The offered name of ``tool``: itself, or the one ``<source>__<tool>`` of a tool source.

    A host app's tools are offered with their source's name in front (``erp__cash_balance``),
    so rules written for a pack's ``cash_balance`` also work against the same tools served by
    a host app. Two sources offering the tool leave it ambiguous: the name stays as written.
    """
    if tool in offered:
        return tool
    suffix = f"{SOURCE_SEPARATOR}{tool}"
    candidates = [name for name in offered if name.endswith(suffix)]
    return candidates[0] if len(candidates) == 1 else tool


def no_tool_sentence(tool: str, purpose: str | None) -> str:
    """The plain explanation given when a rule wants a tool the request does not offer."""
    action = purpose or "do that"
    return (
        f"I can't {action} here: no {tool} tool is available to me in this conversation, "
        "possibly because your role doesn't allow it."
    )


def _expand_text(template: TextTemplate, match: re.Match[str]) -> str:
    return template(match) if callable(template) else match.expand(template)


def _render_arguments(template: CallTemplate, match: re.Match[str]) -> str:
    if template.raw_arguments is not None:
        return match.expand(template.raw_arguments)
    arguments = (
        template.arguments(match)
        if callable(template.arguments)
        else _expand_value(template.arguments, match)
    )
    return orjson.dumps(arguments).decode()


def _expand_value(value: Any, match: re.Match[str]) -> Any:
    """Expand group references in every string inside a JSON-like value."""
    if isinstance(value, str):
        return match.expand(value)
    if isinstance(value, Mapping):
        return {key: _expand_value(item, match) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_expand_value(item, match) for item in value]
    return value


def conversation_from_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Any]
) -> Conversation:
    """Read the last user message, the trailing tool results and the offered tool names.

    Tool results are the ``tool`` messages after the last assistant message; each gets its
    tool's name from that assistant message's ``tool_calls`` (matched by ``tool_call_id``).
    """
    offered = frozenset(
        str(tool["function"]["name"])
        for tool in tools
        if isinstance(tool, Mapping)
        and isinstance(tool.get("function"), Mapping)
        and "name" in tool["function"]
    )
    trailing: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.append(message)
    trailing.reverse()
    results: tuple[ToolResult, ...] = ()
    if trailing:
        before = len(messages) - len(trailing) - 1
        names = _call_names(messages[before]) if before >= 0 else {}
        results = tuple(
            ToolResult(
                name=names.get(str(message.get("tool_call_id", ""))),
                content=message_text(message),
            )
            for message in trailing
        )
    user_text = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    return Conversation(
        user_text=user_text,
        tool_results=results,
        offered_tools=offered,
        notes=_trailing_notes(messages),
    )


def _trailing_notes(messages: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The system messages after the model last spoke (or a tool answered it), leaving out
    the system prompt that opens the conversation."""
    notes: list[str] = []
    for index in range(len(messages) - 1, 0, -1):
        role = messages[index].get("role")
        if role in ("assistant", "tool"):
            break
        if role == "system":
            notes.append(message_text(messages[index]))
    notes.reverse()
    return tuple(notes)


def _call_names(message: Mapping[str, Any]) -> dict[str, str]:
    """Tool call id → tool name, from the assistant message just before the tool results."""
    names: dict[str, str] = {}
    if message.get("role") == "assistant":
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                names[str(call.get("id"))] = str(call["function"].get("name", ""))
    return names
