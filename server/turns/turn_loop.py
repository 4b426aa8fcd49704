"""The inside of one turn: model rounds and tool rounds until the model answers, then the
saved reply.

:class:`TurnLoop` knows nothing of leases, queues or how the turn was started or stopped; the
engine (``server/turns/engine.py``) runs it under the conversation's lease and ends the turn.
Every frame it makes goes into the user's frame stream, so any tab on any worker sees it.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import orjson

from protocol import ErrorCode, Response, Thinking, TurnStatus, Usage, encode
from server.config import Settings
from server.errors import Failure
from server.knowledge.citations import citations_for, wire_citations
from server.knowledge.search_tool import KnowledgeSearch
from server.ops import metrics
from server.profiles.catalog import Profile, ProfileCatalog
from server.security.redaction import redact_for_model
from server.stream.hub import FrameHub
from server.stream.notices import Notices
from server.tools.page_tools import PageToolRouter
from server.tools.registry import ToolRegistry
from server.turns.approvals import DecisionWords, awaiting_result, pending_note
from server.turns.budgets import Budgets
from server.turns.context_window import build_window
from server.turns.delta_batcher import DeltaBatcher
from server.turns.handoff import Handoffs
from server.turns.history_cache import HistoryCache
from server.turns.llm import ModelClient, ModelReply, ModelUsage
from server.turns.tool_runner import ToolRunner
from server.turns.turn_state import RunningTurn
from storage.errors import StateUnavailable
from storage.keys import UserKey
from storage.leases import TurnLeases
from storage.models import UsageRecord
from storage.transcripts import TranscriptStore

logger = logging.getLogger(__name__)


class TurnLoop:
    """Talks to the model for one turn, runs its tool calls, and saves what it produced."""

    def __init__(
        self,
        settings: Settings,
        model: ModelClient,
        history: HistoryCache,
        transcripts: TranscriptStore,
        tools: ToolRegistry | None,
        tool_runner: ToolRunner,
        budgets: Budgets,
        hub: FrameHub,
        leases: TurnLeases,
        notices: Notices,
        profiles: ProfileCatalog,
        handoffs: Handoffs,
        knowledge: KnowledgeSearch | None = None,
        page_tools: PageToolRouter | None = None,
    ) -> None:
        self._settings = settings
        self._model = model
        self._history = history
        self._transcripts = transcripts
        self._tools = tools
        self._tool_runner = tool_runner
        self._budgets = budgets
        self._hub = hub
        self._leases = leases
        self._notices = notices
        self._profiles = profiles
        self._handoffs = handoffs
        self._knowledge = knowledge
        self._page_tools = page_tools
        self._decision_words = DecisionWords(settings.confirm_yes_words, settings.confirm_no_words)

    async def converse(self, turn: RunningTurn) -> None:
        """Run the turn's model and tool rounds until the model answers without tools."""
        request = turn.request
        owner = request.owner
        seqs = await self.publish(
            owner,
            Thinking(
                conversation_id=request.conversation_id,
                turn_id=turn.turn_id,
                continuation=True if request.note else None,
            ),
        )
        # Saved before any delta, so a snapshot that finds no saved text knows there is none.
        await self.save_text(turn, seqs[-1])
        await self._transcripts.start_assistant_message(
            owner, request.conversation_id, turn.turn_id, turn.message_id
        )
        # The conversation's profile as it is now: a hand-off while this turn was queued counts.
        conversation = await self._transcripts.conversation(owner, request.conversation_id)
        profile = turn.profile = self._profiles.of_conversation(conversation.profile)
        history = await self._history.recent(owner, request.conversation_id)
        history = _up_to(history, request.user_message_id)
        tools = await self._searchable_tools(turn, profile)
        # The host page's context may carry sensitive fields: the model never sees them.
        context = (
            redact_for_model(request.context, self._settings, source="context")
            if request.context
            else None
        )
        pending = await self._pending_note(turn, history)
        messages = build_window(
            system_prompt=profile.system_prompt,
            history=history,
            counter=self._model.counter,
            budget_tokens=self._settings.model_context_tokens
            - self._settings.model_max_output_tokens,
            tools=tools,
            context=context,
            notes=() if request.note or pending is None else (pending,),
        )
        if request.note:
            # A continuation answers its note, after everything said so far.
            note = redact_for_model(request.note, self._settings, source="action outcome")
            messages.append({"role": "system", "content": note})
            if pending is not None:
                messages.append({"role": "system", "content": pending})
        warned = False
        for _round in range(self._settings.tool_rounds_max + 1):
            if turn.profile is not None and turn.profile is not profile:
                # A hand-off in the last round: the rest of the turn runs under the new profile.
                profile = turn.profile
                tools = await self._searchable_tools(turn, profile)
                messages[0] = {"role": "system", "content": profile.system_prompt}
            # Budgets are checked on the exact prompt before every model call, with what the
            # turn's earlier rounds spent: a refused call costs nothing, and tool rounds
            # cannot run a turn past its budget.
            warning = await self._budgets.admit(
                owner,
                request.conversation_id,
                messages,
                tools,
                ref=request.client_msg_id or None,
                spent_in_turn=sum_usage(turn.usage),
                profile=profile,
            )
            if warning is not None and not warned:
                warned = True
                self._notices.turn_failed(
                    owner,
                    Failure.of(ErrorCode.BUDGET_WARNING, warning),
                    ref=request.client_msg_id,
                )
            reply = await self._model_round(turn, messages, tools, profile)
            if not reply.tool_calls:
                break
            asked = len(turn.awaiting)
            await self._tool_runner.run_round(turn, reply, messages)
            if len(turn.awaiting) > asked:
                # A card now waits for the user: the turn ends here, the conversation is free
                # (invariant 12), and the decision's continuation turn gives the model the
                # outcome to report.
                break
        else:
            # The model kept calling tools past the limit; it gets no more rounds.
            await self._stream_note(turn, "\n\n(Stopped: too many tool steps in one answer.)")

    async def _pending_note(self, turn: RunningTurn, history: list[Any]) -> str | None:
        """The note naming the conversation's open approvals for this turn, if any; it asks
        the model to find out which one is meant when the user's message is a yes or a no
        that could decide several (with one open, the engine decided it already)."""
        request = turn.request
        limit = self._settings.pending_note_max
        pending = await self._tool_runner.confirmations.pending_in(
            request.owner, request.conversation_id, limit=limit + 1
        )
        if not pending:
            return None
        last = history[-1] if history and not request.note else None
        answers = last is not None and last.role == "user" and len(pending) > 1
        ambiguous = (
            last.text
            if answers and last is not None and self._decision_words.decision(last.text)
            else None
        )
        note = pending_note(pending, limit, ambiguous=ambiguous)
        return str(redact_for_model(note, self._settings, source="pending approvals"))

    async def _searchable_tools(self, turn: RunningTurn, profile: Profile) -> list[dict[str, Any]]:
        """`_offered_tools`, without ``search_knowledge`` when the conversation has nothing to
        search (server/knowledge/scope.py decides what it searches), with the page tools of
        the user's open tabs."""
        tools = self._offered_tools(turn, profile)
        request = turn.request
        if self._knowledge is not None:
            tools = await self._knowledge.offered(
                tools, request.tenant, frozenset(request.roles), profile.knowledge
            )
        return tools + await self._page_tools_offered(turn, profile)

    async def _page_tools_offered(
        self, turn: RunningTurn, profile: Profile
    ) -> list[dict[str, Any]]:
        """The page tools of the user's open tabs that the profile offers (``page__*`` in its
        ``tools``, or a profile without a tool list)."""
        if self._page_tools is None:
            return []
        request = turn.request
        try:
            offered = await self._page_tools.offered(request.owner, request.connection_id)
            return [tool for tool in offered if profile.offers(tool["function"]["name"])]
        except StateUnavailable:
            # The page's functions are a convenience: the turn goes on without them.
            logger.warning("turn %s: page tools unknown, the state store is away", turn.turn_id)
            return []

    def _offered_tools(self, turn: RunningTurn, profile: Profile) -> list[dict[str, Any]]:
        """The tools the model is offered: the user's roles and the profile both allow them
        (the first wall; the tool runner is the second), and the hand-off tool if it has
        somewhere to hand over to."""
        roles = frozenset(turn.request.roles)
        tools = self._tools.openai_tools(roles, profile) if self._tools else []
        handoff = self._handoffs.tool_for(profile, roles)
        if handoff is not None:
            tools = [
                *(
                    tool
                    for tool in tools
                    if tool["function"]["name"] != handoff["function"]["name"]
                ),
                handoff,
            ]
        return tools

    async def _model_round(
        self,
        turn: RunningTurn,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        profile: Profile,
    ) -> ModelReply:
        batcher = DeltaBatcher(turn, self._settings, self.publish, self.save_text)
        try:
            reply = await self._model.stream(
                messages,
                tools,
                batcher.add,
                model=self._model.model_for(profile.model),
                temperature=profile.temperature,
            )
        finally:
            await asyncio.shield(batcher.flush())
        if reply.usage is not None:
            turn.usage.append(reply.usage)
        return reply

    async def _stream_note(self, turn: RunningTurn, text: str) -> None:
        batcher = DeltaBatcher(turn, self._settings, self.publish, self.save_text)
        await batcher.add(text)
        await batcher.flush()

    async def save_reply(self, turn: RunningTurn, status: TurnStatus) -> Response | None:
        """Save the turn's reply and usage in SQL; the ``response`` frame of a completed turn.

        Raises:
            Exception: whatever the database raised; the caller ends the turn all the same.
        """
        request = turn.request
        usage = sum_usage(turn.usage)
        _close_open_calls(turn, status)
        profile = turn.profile or self._profiles.default
        metrics.profile_turn(profile.id, status.value)
        model = self._model.model_for(profile.model)
        wire_usage = None
        if usage is not None:
            wire_usage = Usage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
                cost=self._model.cost_usd(usage, model),
                model=model,
                estimated=usage.estimated,
            )
        # The sources of the [n] markers the answer uses, from the turn's own searches.
        citations = citations_for(
            turn.text, turn.tool_rounds, self._settings.knowledge_snippet_chars
        )
        await self._transcripts.finish_assistant_message(
            turn.message_id,
            text=turn.text,
            status=status.value,
            tool_rounds=turn.tool_rounds,
            usage=_usage_dict(wire_usage),
            citations=citations,
        )
        if usage is None or wire_usage is None:
            return None
        metrics.model_usage(
            wire_usage.model, usage.prompt_tokens, usage.completion_tokens, wire_usage.cost
        )
        metrics.profile_usage(
            profile.id, usage.prompt_tokens, usage.completion_tokens, wire_usage.cost
        )
        await self._transcripts.record_usage(
            UsageRecord(
                tenant=request.tenant,
                user_id=request.user,
                conversation_id=request.conversation_id,
                turn_id=turn.turn_id,
                message_id=turn.message_id,
                model=wire_usage.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
                cost_usd=Decimal(str(wire_usage.cost)),
                estimated=usage.estimated,
                profile=profile.id,
            )
        )
        if status != TurnStatus.COMPLETED:
            return None
        return Response(
            conversation_id=request.conversation_id,
            turn_id=turn.turn_id,
            message_id=turn.message_id,
            text=turn.text,
            usage=wire_usage,
            citations=wire_citations(citations),
        )

    async def save_text(self, turn: RunningTurn, seq: int) -> None:
        """Save the turn's text so far, which ends with the frame ``seq`` (see snapshot.py)."""
        await self._leases.save_partial(
            turn.request.owner,
            turn.turn_id,
            orjson.dumps({"text": turn.text, "seq": seq}).decode(),
            self._settings.turn_lease_ttl_s * 4,
        )
        if self._settings.embedded_state and turn.text:
            await self._transcripts.save_partial_text(turn.message_id, turn.text)

    async def publish(self, owner: UserKey, *frames: object, call: int | None = None) -> list[int]:
        encoded = [encode(frame) for frame in frames]  # type: ignore[arg-type]
        logged = await self._hub.publish(owner, encoded, call=call)
        return [frame.seq for frame in logged]


def _up_to(history: list[Any], message_id: str) -> list[Any]:
    """The history up to and including ``message_id`` (later queued messages wait their turn)."""
    for index, message in enumerate(history):
        if message.id == message_id:
            return history[: index + 1]
    return history


def _close_open_calls(turn: RunningTurn, status: TurnStatus) -> None:
    """Give every tool call without a result one saying why (invariant 6)."""
    for round_ in turn.tool_rounds:
        answered = {result["tool_call_id"] for result in round_["results"]}
        for call in round_["calls"]:
            if call["id"] not in answered:
                token = turn.awaiting.get(call["id"])
                outcome = (
                    awaiting_result(token)
                    if token
                    else {"error": f"not carried out: the turn ended ({status.value})"}
                )
                round_["results"].append(
                    {
                        "tool_call_id": call["id"],
                        "name": call["function"]["name"],
                        "content": orjson.dumps(outcome).decode(),
                    }
                )


def sum_usage(parts: list[ModelUsage]) -> ModelUsage | None:
    if not parts:
        return None
    return ModelUsage(
        prompt_tokens=sum(part.prompt_tokens for part in parts),
        completion_tokens=sum(part.completion_tokens for part in parts),
        estimated=any(part.estimated for part in parts),
    )


def _usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": usage.cost,
        "model": usage.model,
        "estimated": usage.estimated,
    }
