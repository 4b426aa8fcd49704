"""Cost analytics: tokens and cost of model calls over a time range, grouped as asked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from server.rest.api import ApiCall, ApiRouter
from server.rest.errors import invalid
from storage.models import utcnow
from storage.usage import UsageDimension, UsageReport, UsageTotals

router = ApiRouter("usage", "Tokens and cost of the assistant's model calls.")

DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: AwareDatetime | None = Field(
        default=None, description="start, inclusive (ISO 8601 with offset; default 30 days ago)"
    )
    until: AwareDatetime | None = Field(
        default=None, description="end, exclusive (ISO 8601 with offset; default now)"
    )
    group_by: str = Field(
        default="day",
        max_length=100,
        description="comma-separated dimensions: `day`, `user`, `model`, `conversation`",
    )


class TenantUsageQuery(UsageQuery):
    user: str | None = Field(default=None, max_length=200, description="only this user's")


class UsageSums(BaseModel):
    """Sums over a set of model calls."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float = Field(description="estimated cost in USD")


class UsageGroupOut(UsageSums):
    """The sums of one group; only the dimensions grouped by are present."""

    day: str | None = Field(default=None, description="UTC day, YYYY-MM-DD")
    user: str | None = None
    model: str | None = None
    conversation_id: str | None = None


class UsageReportOut(BaseModel):
    """Usage over a time range."""

    since: datetime
    until: datetime
    group_by: list[UsageDimension]
    groups: list[UsageGroupOut] = Field(
        description="by day oldest first when grouped by day, then by cost, highest first"
    )
    totals: UsageSums
    truncated: bool = Field(
        description="more groups exist than PARLEY_API_USAGE_GROUPS_MAX; narrow the range"
    )


@router.get("/usage", response=UsageReportOut, query=UsageQuery)
async def my_usage(call: ApiCall[UsageQuery, None]) -> UsageReportOut:
    """Tokens and cost of my conversations over a time range, grouped."""
    return await _report(call, call.query, user=call.principal.user)


@router.get("/admin/usage", response=UsageReportOut, query=TenantUsageQuery, admin=True)
async def tenant_usage(call: ApiCall[TenantUsageQuery, None]) -> UsageReportOut:
    """Tokens and cost of everyone in my tenant over a time range, grouped (administrators)."""
    return await _report(call, call.query, user=call.query.user)


async def _report(
    call: ApiCall[Any, None], query: UsageQuery, *, user: str | None
) -> UsageReportOut:
    until = query.until or utcnow()
    since = query.since or until - DEFAULT_RANGE
    if since >= until:
        raise invalid("until", "must be later than 'since'")
    if until - since > MAX_RANGE:
        raise invalid("since", f"must be at most {MAX_RANGE.days} days before 'until'")
    dimensions = _dimensions(query.group_by)
    report = await call.rest.usage.report(
        call.principal.tenant,
        user=user,
        since=since,
        until=until,
        group_by=dimensions,
        limit=call.rest.settings.api_usage_groups_max,
    )
    return _report_out(report, since, until, dimensions)


def _dimensions(raw: str) -> list[UsageDimension]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    known = {dimension.value for dimension in UsageDimension}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        choices = ", ".join(sorted(known))
        raise invalid("group_by", f"must list some of {choices}, got {raw!r}")
    return list(dict.fromkeys(UsageDimension(name) for name in names))


def _sums(totals: UsageTotals) -> UsageSums:
    return UsageSums(
        calls=totals.calls,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        total_tokens=totals.total_tokens,
        cost_usd=round(float(totals.cost_usd), 6),
    )


def _report_out(
    report: UsageReport, since: datetime, until: datetime, dimensions: list[UsageDimension]
) -> UsageReportOut:
    return UsageReportOut(
        since=since,
        until=until,
        group_by=dimensions,
        groups=[
            UsageGroupOut(
                day=group.day,
                user=group.user,
                model=group.model,
                conversation_id=group.conversation_id,
                **_sums(group.totals).model_dump(),
            )
            for group in report.groups
        ],
        totals=_sums(report.totals),
        truncated=report.truncated,
    )
