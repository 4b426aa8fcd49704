"""Running the model's tool calls: queries at once, actions only after the user approves.

Every call the model makes ends with a result in the transcript (invariant 6), whatever
happens to it: an unknown tool, arguments that do not fit, a role that does not allow it, a
rejection, an expiry, a cancellation, a failure.

An action becomes a ``confirmation`` row and a ``confirm_request`` frame, and its call gets an
interim result ("waiting for the user's approval, card …"): the turn goes on and ends, and the
conversation is free (invariant 12). The decision may arrive on any worker, whenever it comes:
whichever one receives it moves the row out of ``pending`` with one conditional UPDATE — the
only way an action can run — and executes the approved action there and then, with the
parameters the user may have edited on the card. The turn engine owns the decision as a
whole: it calls :meth:`ToolRunner.decide` and then starts a short continuation turn that tells
the model the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from protocol import (
    ActionExecuted,
    AnyView,
    Confirm,
    ConfirmationStatus,
    ConfirmRequest,
    ConfirmResolved,
    Decision,
    ErrorCode,
    ParamField,
    ToolCall,
    ToolResult,
    encode,
    param_fields_to_json,
)
from server.config import Settings
from server.errors import ClientError
from server.ops import metrics
from server.profiles.catalog import Profile
from server.security.auth import Principal
from server.security.redaction import redact_for_model
from server.stream.hub import FrameHub
from server.stream.snapshot import iso
from server.stream.tool_lines import SHOWN_KEY, shown_entry
from server.tools.context import ToolContext
from server.tools.errors import ToolArgumentsInvalid, ToolError, ToolForbidden
from server.tools.page_tools import PageToolRouter
from server.tools.param_fields import param_fields
from server.tools.registry import ToolOutcome, ToolRegistry, ValidatedCall
from server.turns.action_outcomes import result_text
from server.turns.approvals import awaiting_result
from server.turns.handoff import Handoffs
from server.turns.llm import ModelReply, ToolCallRequest
from server.turns.result_views import ResultViews
from storage.confirmation_states import AuditEventKind, ConfirmationState, DecisionVia
from storage.confirmations import ConfirmationStore
from storage.db import Database
from storage.keys import UserKey
from storage.models import AuditEvent, Confirmation, utcnow

if TYPE_CHECKING:
    from server.turns.turn_state import RunningTurn

logger = logging.getLogger(__name__)


# Counts an action about to execute; raises ClientError(rate_limited) to stop it.
AdmitAction = Callable[[UserKey, str], Awaitable[None]]


class ToolRunner:
    """Executes tool calls for turns and decisions for users."""

    def __init__(
        self,
        settings: Settings,
        tools: ToolRegistry | None,
        hub: FrameHub,
        confirmations: ConfirmationStore,
        db: Database,
        views: ResultViews,
        handoffs: Handoffs | None = None,
        page_tools: PageToolRouter | None = None,
    ) -> None:
        self._settings = settings
        self._page_tools = page_tools
        self._tools = tools
        self._hub = hub
        self._db = db
        self._handoffs = handoffs
        self._views = views
        self.confirmations = confirmations

    # -- a model round -------------------------------------------------------------------------

    async def run_round(
        self, turn: RunningTurn, reply: ModelReply, messages: list[dict[str, Any]]
    ) -> None:
        """Run every call of ``reply`` and extend ``messages`` for the model's next round."""
        calls = [call for call in reply.tool_calls if call.name or call.arguments]
        for index, call in enumerate(calls):
            call.id = call.id or f"call_{turn.turn_id}_{index}"
        record: dict[str, Any] = {
            "text": reply.text,
            "calls": [call.wire() for call in calls],
            "results": [],
        }
        turn.tool_rounds.append(record)
        messages.append(
            {"role": "assistant", "content": reply.text or None, "tool_calls": record["calls"]}
        )
        for call in calls:
            outcome = await self._run_call(turn, call)
            # Sensitive fields never reach the model, nor the transcript that replays to it.
            redacted = redact_for_model(outcome.result, self._settings, source="tool result")
            content = result_text(redacted, self._settings.tool_result_max_chars)
            result: dict[str, Any] = {
                "tool_call_id": call.id,
                "name": call.name,
                "content": content,
            }
            shown = turn.shown.pop(call.id, None)
            if shown is not None:
                result[SHOWN_KEY] = shown_entry(shown)
            record["results"].append(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    async def _run_call(self, turn: RunningTurn, call: ToolCallRequest) -> ToolOutcome:
        request = turn.request
        roles = frozenset(request.roles)
        registry = self._tools
        if self._handoffs is not None and self._handoffs.handles(turn, call.name):
            outcome = await self._handoffs.run(turn, call)
            arguments = _loose_json(call.arguments)
            await self._publish_progress(
                turn, call, arguments if isinstance(arguments, dict) else {}, outcome
            )
            return outcome
        try:
            if registry is None:
                raise ToolError(f"unknown tool {call.name!r}")
            validated = await self._validate(turn, call, registry, roles)
        except ToolError as exc:
            metrics.tool_refused(registry, call.name, exc)
            if isinstance(exc, ToolForbidden):
                await self._audit_refusal(turn, call, exc.message)
            await self._publish_progress(turn, call, {}, ToolOutcome(False, {}, exc.message))
            return ToolOutcome(False, {"error": exc.message}, exc.message)
        context = self.context_for(
            turn.request.owner,
            roles,
            request.conversation_id,
            turn.turn_id,
            call_id=call.id,
            user_token=request.user_token,
            profile=turn.profile,
        )
        if validated.spec.kind == "query":
            await self._publish(turn, self._call_frame(turn, call, validated.arguments))
            outcome = await registry.run(validated, context)
            metrics.tool_call(registry, call.name, "ok" if outcome.ok else "failed")
            view, export = await self._views.present(
                request.owner, request.conversation_id, call.id, call.name, outcome
            )
            result = self._result_frame(turn, call, outcome, view, export)
            turn.shown[call.id] = result
            await self._publish(turn, result)
            return outcome
        return await self._ask_for_approval(turn, call, validated, context)

    async def _validate(
        self,
        turn: RunningTurn,
        call: ToolCallRequest,
        registry: ToolRegistry,
        roles: frozenset[str],
    ) -> ValidatedCall:
        if self._page_tools is not None and self._page_tools.handles(call.name):
            # A function of the user's page, run in one of their tabs (server/tools/page_tools);
            # the conversation's profile decides whether it may be used, as for any tool.
            request = turn.request
            return await self._page_tools.validate(
                request.owner, request.connection_id, call.name, call.arguments, turn.profile
            )
        # The second wall: a tool outside the role or the profile is refused here too.
        return registry.validate(call.name, call.arguments, roles, turn.profile)

    # -- actions -------------------------------------------------------------------------------

    async def _ask_for_approval(
        self, turn: RunningTurn, call: ToolCallRequest, validated: ValidatedCall, ctx: ToolContext
    ) -> ToolOutcome:
        registry = self._tools
        assert registry is not None
        try:
            summary = await registry.summarize(validated, ctx)
        except ToolError as exc:
            # Refused before asking (e.g. the purchase order is not awaiting approval).
            refused = ToolOutcome(False, {"error": exc.message}, exc.message)
            await self._publish_progress(turn, call, validated.arguments, refused)
            return refused
        request = turn.request
        now = utcnow()
        fields = param_fields(validated.spec.parameters, ctx.currency)
        confirmation = Confirmation(
            token=secrets.token_urlsafe(24),
            tenant=request.tenant,
            user_id=request.user,
            conversation_id=request.conversation_id,
            turn_id=turn.turn_id,
            call_id=call.id,
            action=validated.spec.name,
            params=validated.arguments,
            summary=summary,
            fields=param_fields_to_json(fields) or None,
            created_at=now,
            expires_at=now + timedelta(seconds=self._settings.confirmation_ttl_s),
            source=validated.spec.source,
            destructive=validated.spec.destructive,
            profile=turn.profile.id if turn.profile is not None else None,
        )
        # Noted before the card exists: a turn cancelled from here on still records, for this
        # call, that its card waits (the card is made whole or not at all, see the shield).
        turn.awaiting[call.id] = confirmation.token
        try:
            await asyncio.shield(self._ask(turn, confirmation, fields))
        except Exception:
            turn.awaiting.pop(call.id, None)
            raise
        return ToolOutcome(True, awaiting_result(confirmation.token), "waiting for approval")

    async def _ask(
        self, turn: RunningTurn, confirmation: Confirmation, fields: tuple[ParamField, ...]
    ) -> None:
        """Store the pending confirmation and show its card in every tab."""
        await self.confirmations.create(
            confirmation, self._audit_event(confirmation, AuditEventKind.REQUESTED)
        )
        metrics.confirmation(ConfirmationState.PENDING)
        await self._publish(
            turn,
            ConfirmRequest(
                conversation_id=confirmation.conversation_id,
                turn_id=turn.turn_id,
                token=confirmation.token,
                action=confirmation.action,
                params=confirmation.params,
                summary=confirmation.summary,
                expires_at=iso(confirmation.expires_at),
                source=confirmation.source,
                destructive=confirmation.destructive,
                fields=fields or None,
            ),
        )

    async def _withdraw(
        self, confirmation: Confirmation, status: ConfirmationStatus
    ) -> Confirmation | None:
        """Move a pending confirmation to expired or cancelled, telling every tab; None when a
        decision got there first."""
        moved = await self.confirmations.transition(
            confirmation.token,
            ConfirmationState.PENDING,
            ConfirmationState(status),
            decided_at=utcnow(),
        )
        if moved is None:
            return None
        metrics.confirmation(status.value)
        await self.confirmations.audit(
            self._audit_event(moved, AuditEventKind.entered(moved.status))
        )
        await self._hub.publish(
            UserKey(tenant=moved.tenant, user=moved.user_id),
            [_encode(_resolved(moved, status))],
        )
        return moved

    # -- decisions from users ------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        frame: Confirm,
        connection_id: str,
        admit_action: AdmitAction,
        *,
        via: DecisionVia = DecisionVia.BUTTON,
        profile: Profile | None = None,
    ) -> Confirmation:
        """Apply a user's ``confirm`` (from a button, or ``via`` typed as a yes or no
        message); the decided (and, if approved, executed) confirmation.

        Exactly one caller per token gets past the transition out of pending. An approval is
        counted by ``admit_action`` only then, when its action is about to execute: if that
        refuses, the confirmation goes back to pending and nothing ran. Edited parameters
        (``frame.params``) are checked against the action's schema and its summary is
        recomputed before anything moves; the action runs with them. ``profile`` is the
        conversation's profile: the action must still be one it offers.

        Raises:
            ClientError: unknown token, another user's token, expired, already decided,
                ``invalid_params`` (the edit does not fit; the card stays pending), or
                ``rate_limited`` by ``admit_action``.
        """
        found = await self.confirmations.get(frame.token)
        if found is None:
            raise ClientError(
                ErrorCode.CONFIRMATION_NOT_FOUND, "confirmation not found", ref=frame.token
            )
        if (found.tenant, found.user_id) != (principal.tenant, principal.user):
            raise ClientError(
                ErrorCode.FORBIDDEN, "not allowed to decide this confirmation", ref=frame.token
            )
        if found.status == ConfirmationState.PENDING and _aware(found.expires_at) <= utcnow():
            await self._withdraw(found, ConfirmationStatus.EXPIRED)
            raise ClientError(
                ErrorCode.CONFIRMATION_EXPIRED, "confirmation expired", ref=frame.token
            )
        approve = frame.decision == Decision.APPROVE
        edit: tuple[dict[str, Any], str] | None = None
        if approve and frame.params is not None:
            if found.status != ConfirmationState.PENDING:
                raise _not_pending(frame.token)
            edit = await self._check_edit(found, frame.params, principal, profile)
        edited: dict[str, Any] = {}
        if edit is not None:
            edited = {"approved_params": edit[0], "summary": edit[1]}
        moved = await self.confirmations.transition(
            frame.token,
            ConfirmationState.PENDING,
            ConfirmationState.APPROVED if approve else ConfirmationState.REJECTED,
            decided_at=utcnow(),
            decided_by_connection=connection_id,
            **edited,
        )
        if moved is None:
            raise _not_pending(frame.token)
        owner = UserKey(tenant=moved.tenant, user=moved.user_id)
        if approve:
            try:
                await admit_action(owner, frame.token)
            except ClientError:
                await self.confirmations.transition(
                    frame.token,
                    ConfirmationState.APPROVED,
                    ConfirmationState.PENDING,
                    decided_at=None,
                    decided_by_connection=None,
                    approved_params=None,
                    summary=found.summary,
                )
                raise
        status = ConfirmationStatus.APPROVED if approve else ConfirmationStatus.REJECTED
        metrics.confirmation(status.value)
        await self.confirmations.audit(
            self._audit_event(moved, AuditEventKind.entered(moved.status), via=via)
        )
        await self._hub.publish(owner, [_encode(_resolved(moved, status))])
        if approve:
            moved = await self._execute(moved, principal, profile, connection_id)
        return moved

    async def _check_edit(
        self,
        found: Confirmation,
        params: Any,
        principal: Principal,
        profile: Profile | None,
    ) -> tuple[dict[str, Any], str] | None:
        """The edited parameters as the action takes them and the summary recomputed for
        them; None when they are the proposed ones.

        Raises:
            ClientError: ``invalid_params`` naming the field, or ``forbidden``.
        """
        registry = self._tools
        if registry is None:
            raise ClientError(
                ErrorCode.INVALID_PARAMS, f"unknown action {found.action!r}", ref=found.token
            )
        if self._page_tools is not None and self._page_tools.handles(found.action):
            # The page registered the function with its own schema and runs it as proposed.
            raise ClientError(
                ErrorCode.INVALID_PARAMS,
                "the parameters of a page action cannot be edited",
                ref=found.token,
            )
        try:
            validated = registry.validate(found.action, params, principal.roles, profile)
        except ToolForbidden as exc:
            raise ClientError(ErrorCode.FORBIDDEN, exc.message, ref=found.token) from None
        except ToolArgumentsInvalid as exc:
            raise ClientError(ErrorCode.INVALID_PARAMS, exc.message, ref=found.token) from None
        except ToolError as exc:
            raise ClientError(ErrorCode.INVALID_PARAMS, exc.message, ref=found.token) from None
        if validated.arguments == found.params:
            return None
        ctx = self.context_for(
            UserKey(tenant=found.tenant, user=found.user_id),
            principal.roles,
            found.conversation_id,
            found.turn_id,
            call_id=found.call_id,
            user_token=principal.token,
            profile=profile,
        )
        try:
            # The host may refuse the edited values before anything moves (no such stock).
            summary = await registry.summarize(validated, ctx)
        except ToolError as exc:
            raise ClientError(ErrorCode.INVALID_PARAMS, exc.message, ref=found.token) from None
        return dict(validated.arguments), summary

    async def _execute(
        self,
        confirmation: Confirmation,
        principal: Principal,
        profile: Profile | None,
        connection_id: str | None = None,
    ) -> Confirmation:
        """Run an approved action once and record how it went."""
        registry = self._tools
        roles = principal.roles
        owner = UserKey(tenant=confirmation.tenant, user=confirmation.user_id)
        # The confirmation token goes to a host app as the action's Idempotency-Key.
        ctx = self.context_for(
            owner,
            roles,
            confirmation.conversation_id,
            confirmation.turn_id,
            call_id=confirmation.call_id,
            confirmation=confirmation.token,
            user_token=principal.token,
            profile=profile,
        )
        params = (
            confirmation.approved_params
            if confirmation.approved_params is not None
            else confirmation.params
        )
        try:
            if registry is None:
                raise ToolError(f"unknown tool {confirmation.action!r}")
            # Validate again: the user's roles, the conversation's profile or the tool may
            # have changed since the request.
            validated = await self._revalidate(
                confirmation, registry, params, roles, profile, connection_id
            )
            outcome = await registry.run(validated, ctx)
        except ToolError as exc:
            outcome = ToolOutcome(False, {"error": exc.message}, exc.message)
        audit = self._audit_event(
            confirmation,
            AuditEventKind.EXECUTED if outcome.ok else AuditEventKind.FAILED,
            result=outcome.result,
            error=None if outcome.ok else outcome.summary,
        )
        metrics.confirmation(ConfirmationState.EXECUTED if outcome.ok else ConfirmationState.FAILED)
        metrics.tool_call(registry, confirmation.action, "ok" if outcome.ok else "failed")
        audit_id = await self.confirmations.audit(audit)
        moved = await self.confirmations.transition(
            confirmation.token,
            ConfirmationState.APPROVED,
            ConfirmationState.EXECUTED if outcome.ok else ConfirmationState.FAILED,
            execution_result={
                "ok": outcome.ok,
                "result": outcome.result,
                "summary": outcome.summary,
            },
            audit_id=audit_id,
        )
        if moved is None:
            raise RuntimeError(f"approved confirmation {confirmation.token} changed under us")
        await self._hub.publish(
            owner,
            [
                _encode(
                    ActionExecuted(
                        token=moved.token,
                        action=moved.action,
                        ok=outcome.ok,
                        result=outcome.result,
                        audit_id=audit_id,
                        conversation_id=moved.conversation_id,
                        turn_id=moved.turn_id,
                        source=self._source_of(moved.action),
                    )
                )
            ],
        )
        return moved

    async def _revalidate(
        self,
        confirmation: Confirmation,
        registry: ToolRegistry,
        params: Any,
        roles: frozenset[str],
        profile: Profile | None,
        connection_id: str | None,
    ) -> ValidatedCall:
        if self._page_tools is not None and self._page_tools.handles(confirmation.action):
            # An approved page tool runs in the tab that approved it, else another of the user's.
            return await self._page_tools.validate(
                UserKey(tenant=confirmation.tenant, user=confirmation.user_id),
                connection_id,
                confirmation.action,
                orjson.dumps(params).decode(),
                profile,
            )
        return registry.validate(confirmation.action, params, roles, profile)

    # -- snapshots and sweeping ----------------------------------------------------------------

    async def expire_overdue(self) -> list[Confirmation]:
        """Expire pending confirmations past their time; the ones this call expired."""
        expired = []
        for row in await self.confirmations.overdue():
            moved = await self._withdraw(row, ConfirmationStatus.EXPIRED)
            if moved is not None:
                expired.append(moved)
        return expired

    # -- helpers -------------------------------------------------------------------------------

    def context_for(
        self,
        owner: UserKey,
        roles: frozenset[str],
        conversation_id: str,
        turn_id: str,
        *,
        call_id: str = "",
        confirmation: str | None = None,
        user_token: str | None = None,
        profile: Profile | None = None,
    ) -> ToolContext:
        settings = self._tools.tenant_settings(owner.tenant) if self._tools is not None else None
        return ToolContext(
            tenant=owner.tenant,
            user=owner.user,
            roles=roles,
            conversation_id=conversation_id,
            turn_id=turn_id,
            currency=settings.currency if settings else "USD",
            locale=settings.locale if settings else "en-US",
            sessions=self._db.session,
            call_id=call_id,
            confirmation=confirmation,
            user_token=user_token,
            profile=profile.id if profile is not None else None,
            knowledge=profile.knowledge if profile is not None else (),
        )

    def _audit_event(
        self,
        confirmation: Confirmation,
        event: AuditEventKind,
        *,
        result: Any = None,
        error: str | None = None,
        via: DecisionVia | None = None,
    ) -> AuditEvent:
        decisions = {
            AuditEventKind.APPROVED: Decision.APPROVE,
            AuditEventKind.REJECTED: Decision.REJECT,
        }
        return AuditEvent(
            tenant=confirmation.tenant,
            user_id=confirmation.user_id,
            tool=confirmation.action,
            params=confirmation.params,
            event=event,
            decision=decisions.get(event),
            result=result,
            error=error,
            via_ai=True,
            source=self._source_of(confirmation.action),
            profile=confirmation.profile,
            confirmation_token=confirmation.token,
            conversation_id=confirmation.conversation_id,
            turn_id=confirmation.turn_id,
            via=via,
            approved_params=confirmation.approved_params,
        )

    async def _audit_refusal(self, turn: RunningTurn, call: ToolCallRequest, reason: str) -> None:
        request = turn.request
        await self.confirmations.audit(
            AuditEvent(
                tenant=request.tenant,
                user_id=request.user,
                tool=call.name[:200],
                params=_loose_json(call.arguments),
                event=AuditEventKind.REFUSED,
                error=reason,
                via_ai=True,
                source=self._source_of(call.name),
                profile=turn.profile.id if turn.profile is not None else None,
                conversation_id=request.conversation_id,
                turn_id=turn.turn_id,
            )
        )

    async def _publish_progress(
        self,
        turn: RunningTurn,
        call: ToolCallRequest,
        arguments: dict[str, Any],
        outcome: ToolOutcome,
    ) -> None:
        result = self._result_frame(turn, call, outcome)
        turn.shown[call.id] = result
        await self._publish(turn, self._call_frame(turn, call, arguments), result)

    def _call_frame(
        self, turn: RunningTurn, call: ToolCallRequest, arguments: dict[str, Any]
    ) -> ToolCall:
        return ToolCall(
            conversation_id=turn.request.conversation_id,
            turn_id=turn.turn_id,
            call_id=call.id,
            name=call.name[:200] or "unnamed",
            arguments=arguments,
            source=self._source_of(call.name),
        )

    def _result_frame(
        self,
        turn: RunningTurn,
        call: ToolCallRequest,
        outcome: ToolOutcome,
        view: AnyView | None = None,
        export: str | None = None,
    ) -> ToolResult:
        return ToolResult(
            conversation_id=turn.request.conversation_id,
            turn_id=turn.turn_id,
            call_id=call.id,
            name=call.name[:200] or "unnamed",
            ok=outcome.ok,
            summary=outcome.summary[:500],
            view=view,
            export=export,
        )

    def _source_of(self, tool: str) -> str | None:
        """The tool source (host app) a tool comes from, for frames and audit rows."""
        return self._tools.source_of(tool) if self._tools is not None else None

    async def _publish(self, turn: RunningTurn, *frames: object) -> None:
        await self._hub.publish(turn.request.owner, [_encode(frame) for frame in frames])


def _resolved(confirmation: Confirmation, status: ConfirmationStatus) -> ConfirmResolved:
    # An edited approval carries its parameters and recomputed summary, for every tab's card.
    edited = confirmation.approved_params is not None
    return ConfirmResolved(
        token=confirmation.token,
        status=status,
        conversation_id=confirmation.conversation_id,
        turn_id=confirmation.turn_id,
        params=confirmation.approved_params if edited else None,
        summary=confirmation.summary if edited else None,
    )


def _not_pending(token: str) -> ClientError:
    return ClientError(
        ErrorCode.CONFIRMATION_NOT_PENDING, "confirmation already decided", ref=token
    )


def _loose_json(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"raw": raw[:1000]}


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _encode(frame: object) -> str:
    return encode(frame)  # type: ignore[arg-type]
