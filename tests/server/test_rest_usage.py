"""Cost analytics over REST: tokens and cost from usage_record grouped by day, user, model and
conversation, for a user or (administrators) the whole tenant."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storage.models import UsageRecord
from tests.server.harness import ParleyServer, frames_of
from tests.server.rest_support import Caller, Callers, assert_error, callers, rest, seed

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)

# Each seeding gets a month of its own, so the tests of a module (which share a server) never
# see each other's rows in their range.
_months = itertools.count(1)


@dataclass
class Seeded:
    alice: Caller
    bob: Caller
    outsider: Caller
    days: list[str]
    range: dict[str, str]


def usage(
    caller: Caller,
    when: datetime,
    model: str,
    conversation: str,
    prompt: int,
    completion: int,
    cost: str,
) -> UsageRecord:
    return UsageRecord(
        tenant=caller.tenant,
        user_id=caller.user,
        conversation_id=conversation,
        turn_id="t_seeded",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost_usd=Decimal(cost),
        created_at=when,
    )


def sums(calls: int, prompt: int, completion: int, cost: float) -> dict[str, Any]:
    return {
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost_usd": cost,
    }


@pytest.fixture
async def seeded(rest: ParleyServer, callers: Callers) -> Seeded:
    alice, bob, outsider = callers.new(), callers.new(), callers.new(tenant="globex")
    month = next(_months)
    day1 = datetime(2024 + month // 12, month % 12 + 1, 1, 10, 0, tzinfo=UTC)
    day2, day3 = day1 + timedelta(days=1), day1 + timedelta(days=2)
    # The last moment of the third UTC day still belongs to it.
    last_moment = day3.replace(hour=23, minute=59, second=59, microsecond=999_000)
    await seed(
        rest.config.database_url,
        [
            usage(alice, day1, "model-a", "c_1", 100, 10, "0.001"),
            usage(alice, day1 + timedelta(hours=1), "model-b", "c_1", 200, 20, "0.002"),
            usage(alice, day2, "model-a", "c_2", 300, 30, "0.003"),
            usage(bob, day2, "model-a", "c_3", 400, 40, "0.004"),
            usage(bob, last_moment, "model-b", "c_3", 500, 50, "0.005"),
            usage(outsider, day1, "model-a", "c_9", 1000, 100, "0.010"),
        ],
    )
    start = day1.replace(hour=0)
    return Seeded(
        alice=alice,
        bob=bob,
        outsider=outsider,
        days=[day.date().isoformat() for day in (day1, day2, day3)],
        range={
            "since": start.isoformat(),
            "until": (start + timedelta(days=3)).isoformat(),
        },
    )


async def test_my_usage_by_day_and_by_model(seeded: Seeded) -> None:
    alice, days, period = seeded.alice, seeded.days, seeded.range
    by_day = await alice.get("/usage", group_by="day", **period)
    assert by_day.status_code == 200, by_day.text
    body = by_day.json()
    assert body["group_by"] == ["day"]
    assert body["since"] == period["since"].replace("+00:00", "Z")
    assert body["groups"] == [
        {"day": days[0], **sums(2, 300, 30, 0.003)},
        {"day": days[1], **sums(1, 300, 30, 0.003)},
    ]
    assert body["totals"] == sums(3, 600, 60, 0.006)
    assert body["truncated"] is False

    by_model = (await alice.get("/usage", group_by="model", **period)).json()
    assert by_model["groups"] == [
        {"model": "model-a", **sums(2, 400, 40, 0.004)},
        {"model": "model-b", **sums(1, 200, 20, 0.002)},
    ]
    by_both = (await alice.get("/usage", group_by="day,model", **period)).json()
    assert [(g["day"], g["model"]) for g in by_both["groups"]] == [
        (days[0], "model-b"),  # within a day, the higher cost first
        (days[0], "model-a"),
        (days[1], "model-a"),
    ]
    by_conversation = (await alice.get("/usage", group_by="conversation", **period)).json()
    assert [(g["conversation_id"], g["total_tokens"]) for g in by_conversation["groups"]] == [
        ("c_1", 330),  # equal cost: in the order of the key
        ("c_2", 330),
    ]
    first_day_only = {"since": period["since"], "until": f"{days[1]}T00:00:00Z"}
    first_day = (await alice.get("/usage", group_by="day", **first_day_only)).json()
    assert first_day["totals"] == sums(2, 300, 30, 0.003)  # `until` is exclusive


async def test_administrators_see_the_whole_tenant(seeded: Seeded, callers: Callers) -> None:
    alice, bob, period = seeded.alice, seeded.bob, seeded.range
    admin = callers.new(roles=("admin",))
    by_user = (await admin.get("/admin/usage", group_by="user", **period)).json()
    assert by_user["groups"] == [
        {"user": bob.user, **sums(2, 900, 90, 0.009)},
        {"user": alice.user, **sums(3, 600, 60, 0.006)},
    ]
    assert by_user["totals"] == sums(5, 1500, 150, 0.015)
    bobs = await admin.get("/admin/usage", group_by="day,conversation", user=bob.user, **period)
    assert [(g["day"], g["conversation_id"]) for g in bobs.json()["groups"]] == [
        (seeded.days[1], "c_3"),
        (seeded.days[2], "c_3"),
    ]
    # Everyone else's /usage is their own, even grouped by user.
    own = (await alice.get("/usage", group_by="user", **period)).json()
    assert [group["user"] for group in own["groups"]] == [alice.user]
    assert_error(await alice.get("/admin/usage", **period), 403, "forbidden")
    foreign_admin = callers.new(tenant="globex", roles=("admin",))
    foreign = (await foreign_admin.get("/admin/usage", group_by="user", **period)).json()
    assert [(g["user"], g["total_tokens"]) for g in foreign["groups"]] == [
        (seeded.outsider.user, 1100)
    ]


async def test_bad_ranges_and_groupings_name_the_parameter(callers: Callers) -> None:
    alice = callers.new()
    cases = [
        ({"group_by": "week"}, "group_by"),
        ({"group_by": ""}, "group_by"),
        ({"group_by": "day,,hour"}, "group_by"),
        ({"since": "2025-06-02T00:00:00Z", "until": "2025-06-01T00:00:00Z"}, "until"),
        ({"since": "2020-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "since"),
        ({"since": "2025-06-01"}, "since"),
        ({"until": "soon"}, "until"),
    ]
    for params, field in cases:
        assert_error(await alice.get("/usage", **params), 422, "invalid_field", field)
    assert_error(await callers.anonymous().get("/usage"), 401, "unauthenticated")


async def test_a_real_turn_is_counted(callers: Callers) -> None:
    alice = callers.new()
    tab = await alice.tab()
    frames = await tab.ask("hello", "m-1")
    await tab.close()
    [response] = frames_of(frames, "response")
    conversation_id = frames[0]["conversation_id"]
    report = (await alice.get("/usage", group_by="conversation,model")).json()
    assert report["groups"] == [
        {
            "conversation_id": conversation_id,
            "model": response["usage"]["model"],
            "calls": 1,
            "prompt_tokens": response["usage"]["prompt_tokens"],
            "completion_tokens": response["usage"]["completion_tokens"],
            "total_tokens": response["usage"]["total_tokens"],
            "cost_usd": pytest.approx(response["usage"]["cost"], abs=1e-6),
        }
    ]
