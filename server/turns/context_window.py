"""The conversation window sent to the model: the transcript in OpenAI's message shape, trimmed
to the model's context budget.

The system prompt always stays; then whole exchanges are kept newest first until the budget is
spent. An assistant reply that used tools expands into its rounds (assistant message with
``tool_calls``, one ``tool`` message per result) and is kept or dropped as a unit, so the model
never sees a tool call without its result (invariant 6) or a result without its call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from server.turns.token_counting import TokenCounter
from storage.models import Message
from storage.transcripts import NOTE_ROLE

ChatMessage = dict[str, Any]


def transcript_to_chat(message: Message) -> list[ChatMessage]:
    """One stored message as the chat messages the model saw or said (none for a note, which
    was written for the user: the model saw the hand-off as its own tool call)."""
    if message.role == NOTE_ROLE:
        return []
    if message.role == "user":
        return [{"role": "user", "content": message.text}]
    chat: list[ChatMessage] = []
    consumed = 0
    for round_ in message.tool_rounds or ():
        text = round_.get("text") or ""
        consumed += len(text)
        chat.append({"role": "assistant", "content": text or None, "tool_calls": round_["calls"]})
        chat.extend(
            {"role": "tool", "tool_call_id": result["tool_call_id"], "content": result["content"]}
            for result in round_["results"]
        )
    final_text = message.text[consumed:]
    if final_text or not chat:
        chat.append({"role": "assistant", "content": final_text})
    return chat


def context_note(context: Mapping[str, Any]) -> ChatMessage:
    """What the host page told us about where the user is (the record on screen, say)."""
    payload = orjson.dumps(context, option=orjson.OPT_SORT_KEYS).decode()
    return {"role": "system", "content": f"Context from the host application: {payload}"}


def build_window(
    *,
    system_prompt: str,
    history: Sequence[Message],
    counter: TokenCounter,
    budget_tokens: int,
    tools: Sequence[Mapping[str, Any]] = (),
    context: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> list[ChatMessage]:
    """The messages for the next model call.

    ``history`` is oldest first and ends with the user message being answered; messages still
    streaming (this turn's own reply) are left out. The newest exchange is always kept, even
    when it alone exceeds the budget: the endpoint then says so, which is clearer than sending
    the model a question it cannot see. ``notes`` (system notes for this turn, such as the
    approvals still open) go just before the message being answered, with the page context.
    """
    system = {"role": "system", "content": system_prompt}
    groups = [transcript_to_chat(message) for message in history if message.status != "streaming"]
    groups = [group for group in groups if group]
    leading = [{"role": "system", "content": note} for note in notes]
    if context:
        leading.append(context_note(context))
    if leading:
        groups[-1:] = [[*leading, *groups[-1]]] if groups else [leading]
    spent = counter.count_messages([system]) + counter.count_tools(tools)
    kept: list[list[ChatMessage]] = []
    for group in reversed(groups):
        cost = sum(counter.count_message(message) for message in group)
        if kept and spent + cost > budget_tokens:
            break
        kept.append(group)
        spent += cost
    window = [system]
    for group in reversed(kept):
        window.extend(group)
    return window
