"""Token and cost budgets per conversation, per user per UTC day and per tenant per UTC day.

Checked before every model call of a turn, from the usage recorded in SQL plus the prompt
about to be sent (counted with tiktoken) and what the turn's earlier rounds used. A call that
would go over is refused with ``budget_exceeded`` and the model is never called; past
``budget_warning_ratio`` of a budget each turn sends ``budget_warning`` and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from protocol import ErrorCode
from server.config import Settings
from server.errors import BudgetExceeded
from server.profiles.catalog import Profile
from server.turns.llm import ModelClient, ModelUsage
from storage.keys import UserKey
from storage.transcripts import TranscriptStore


@dataclass(frozen=True, slots=True)
class _Budget:
    what: str  # "this conversation's", "this user's daily", ...
    spent_tokens: int
    spent_usd: Decimal
    limit_tokens: int
    limit_usd: float
    retry_after: float | None  # when the budget starts afresh, if it does


class Budgets:
    """Checks a turn's projected spend against every configured budget."""

    def __init__(
        self, settings: Settings, model: ModelClient, transcripts: TranscriptStore
    ) -> None:
        self._settings = settings
        self._model = model
        self._transcripts = transcripts

    async def admit(
        self,
        owner: UserKey,
        conversation_id: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        *,
        ref: str | None,
        spent_in_turn: ModelUsage | None = None,
        profile: Profile | None = None,
    ) -> str | None:
        """Check the turn about to send ``messages`` to the model.

        ``spent_in_turn`` is what the turn's earlier model calls used (tool rounds): it is not
        recorded until the turn ends, so it is added here. A ``profile`` sets the
        conversation's budgets and the model whose price counts; without one the settings do.

        Returns:
            A warning to show when a budget is past its warning ratio, else None.

        Raises:
            BudgetExceeded: the prompt alone would take a budget past its limit.
        """
        counter = self._model.counter
        model = self._model.model_for(profile.model if profile is not None else None)
        prompt_tokens = counter.count_messages(messages) + counter.count_tools(tools)
        prompt_usd = Decimal(
            str(self._model.cost_usd(ModelUsage(prompt_tokens, 0, estimated=True), model))
        )
        if spent_in_turn is not None:
            prompt_tokens += spent_in_turn.total_tokens
            prompt_usd += Decimal(str(self._model.cost_usd(spent_in_turn, model)))
        warning: str | None = None
        for budget in await self._budgets(owner, conversation_id, profile):
            tokens = budget.spent_tokens + prompt_tokens
            usd = budget.spent_usd + prompt_usd
            over = []
            if budget.limit_tokens > 0 and tokens > budget.limit_tokens:
                over.append(f"token budget of {budget.limit_tokens}")
            if budget.limit_usd > 0 and usd > Decimal(str(budget.limit_usd)):
                over.append(f"cost budget of {budget.limit_usd:g} USD")
            if over:
                raise BudgetExceeded(
                    ErrorCode.BUDGET_EXCEEDED,
                    f"{budget.what} {' and '.join(over)} would be exceeded",
                    retryable=budget.retry_after is not None,
                    ref=ref,
                    retry_after=budget.retry_after,
                )
            share = max(
                tokens / budget.limit_tokens if budget.limit_tokens > 0 else 0.0,
                float(usd) / budget.limit_usd if budget.limit_usd > 0 else 0.0,
            )
            ratio = self._settings.budget_warning_ratio
            if warning is None and 0 < ratio <= share:
                warning = f"{budget.what} budget is {math.floor(share * 100)}% used"
        return warning

    async def _budgets(
        self, owner: UserKey, conversation_id: str, profile: Profile | None
    ) -> list[_Budget]:
        settings = self._settings
        transcripts = self._transcripts
        budgets: list[_Budget] = []
        # A profile's own conversation budgets replace the settings' (they default to them).
        conversation_tokens = (
            profile.budget_conversation_tokens
            if profile is not None
            else settings.budget_conversation_tokens
        )
        conversation_usd = (
            profile.budget_conversation_usd
            if profile is not None
            else settings.budget_conversation_usd
        )
        if conversation_tokens > 0 or conversation_usd > 0:
            tokens, usd = await transcripts.conversation_tokens_used(owner, conversation_id)
            budgets.append(
                _Budget(
                    "this conversation's",
                    tokens,
                    usd,
                    conversation_tokens,
                    conversation_usd,
                    None,
                )
            )
        midnight = day_start()
        until_tomorrow = round((midnight + timedelta(days=1) - datetime.now(UTC)).total_seconds())
        if settings.budget_user_daily_tokens > 0 or settings.budget_user_daily_usd > 0:
            tokens, usd = await transcripts.tokens_used_since(owner, midnight)
            budgets.append(
                _Budget(
                    "this user's daily",
                    tokens,
                    usd,
                    settings.budget_user_daily_tokens,
                    settings.budget_user_daily_usd,
                    float(until_tomorrow),
                )
            )
        if settings.budget_tenant_daily_tokens > 0 or settings.budget_tenant_daily_usd > 0:
            tokens, usd = await transcripts.tenant_tokens_used_since(owner.tenant, midnight)
            budgets.append(
                _Budget(
                    "this tenant's daily",
                    tokens,
                    usd,
                    settings.budget_tenant_daily_tokens,
                    settings.budget_tenant_daily_usd,
                    float(until_tomorrow),
                )
            )
        return budgets


def day_start(now: datetime | None = None) -> datetime:
    """Midnight UTC of the current day: when the daily budgets start afresh."""
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
