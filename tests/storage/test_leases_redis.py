"""Turn leases: one turn per conversation, lapsing, sweeping (DESIGN invariants 3 and 4)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

import pytest
from redis.asyncio import Redis

from storage.keys import KeySpace, UserKey
from storage.leases import TurnClaim, TurnLeases

if TYPE_CHECKING:
    from tests.state_store import StateRedis

ALICE = UserKey("acme", "alice")
BOB = UserKey("acme", "bob")
LONG = 30.0  # a lease that will not lapse during a test
SHORT = 0.15  # a lease that lapses after a short sleep
AFTER_SHORT = 0.4


def claim(turn_id: str, conversation_id: str = "c1", started_at: float | None = None) -> TurnClaim:
    return TurnClaim(
        turn_id=turn_id,
        conversation_id=conversation_id,
        message_id=f"m-{turn_id}",
        worker_id="w1",
        started_at=time.time() if started_at is None else started_at,
    )


def leases_for(state: StateRedis, redis: Redis | None = None) -> TurnLeases:
    return TurnLeases(redis or state.redis, prefix=state.prefix)


async def deadline_entries(state: StateRedis) -> list[tuple[bytes, float]]:
    deadlines = KeySpace(state.prefix).turn_deadlines()
    entries = await state.redis.zrange(deadlines, 0, -1, withscores=True)
    return cast("list[tuple[bytes, float]]", entries)  # the withscores=True shape


# -- one turn per conversation -------------------------------------------------------


async def test_acquire_takes_a_free_slot_and_reports_the_holder_otherwise(
    state_redis: StateRedis,
) -> None:
    leases = leases_for(state_redis)

    assert await leases.acquire(ALICE, claim("t1"), LONG) is None
    assert await leases.acquire(ALICE, claim("t2"), LONG) == "t1"
    assert await leases.holder(ALICE, "c1") == "t1"
    assert await leases.acquire(ALICE, claim("t3", "c2"), LONG) is None  # other conversation
    assert await leases.acquire(BOB, claim("t4"), LONG) is None  # other user
    assert [c.turn_id for c in await leases.active_turns(ALICE)] == ["t1", "t3"]


async def test_acquiring_again_with_the_same_turn_succeeds(state_redis: StateRedis) -> None:
    """What a retried acquire looks like: the slot is already this turn's."""
    leases = leases_for(state_redis)
    first = claim("t1")

    assert await leases.acquire(ALICE, first, LONG) is None
    assert await leases.acquire(ALICE, first, LONG) is None
    assert await leases.active_turns(ALICE) == [first]
    assert len(await deadline_entries(state_redis)) == 1


async def test_a_refused_acquire_leaves_no_trace(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), LONG)

    assert await leases.acquire(ALICE, claim("t2"), LONG) == "t1"

    assert [c.turn_id for c in await leases.active_turns(ALICE)] == ["t1"]
    assert [member for member, _ in await deadline_entries(state_redis)] == [b"acme:alice:c1:t1"]


async def test_renew_extends_only_the_holders_lease(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), 5.0)

    assert await leases.renew(ALICE, "c1", "t1", LONG)
    assert not await leases.renew(ALICE, "c1", "t2", LONG)
    slot = KeySpace(state_redis.prefix).turn_slot(ALICE, "c1")
    assert await state_redis.redis.pttl(slot) > 5_000
    assert await leases.holder(ALICE, "c1") == "t1"
    [(_, deadline)] = await deadline_entries(state_redis)
    assert deadline > time.time() + LONG / 2  # sweepers look later too


async def test_renew_after_the_lease_lapsed_fails(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), SHORT)
    await asyncio.sleep(AFTER_SHORT)

    assert not await leases.renew(ALICE, "c1", "t1", LONG)
    assert await leases.holder(ALICE, "c1") is None
    assert await leases.active_turns(ALICE) == []  # a lapsed turn is not running


async def test_release_frees_the_slot_and_forgets_the_turn(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), LONG)
    await leases.save_partial(ALICE, "t1", "Half an ans", LONG)

    await leases.release(ALICE, "c1", "t1")
    await leases.release(ALICE, "c1", "t1")  # repeating it is harmless

    assert await leases.holder(ALICE, "c1") is None
    assert await leases.active_turns(ALICE) == []
    assert await leases.partial(ALICE, "t1") is None
    assert await deadline_entries(state_redis) == []
    assert await leases.acquire(ALICE, claim("t2"), LONG) is None


async def test_a_late_release_does_not_free_a_slot_another_turn_took(
    state_redis: StateRedis,
) -> None:
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), SHORT)
    await asyncio.sleep(AFTER_SHORT)
    assert await leases.acquire(ALICE, claim("t2"), LONG) is None

    await leases.release(ALICE, "c1", "t1")

    assert await leases.holder(ALICE, "c1") == "t2"
    assert [c.turn_id for c in await leases.active_turns(ALICE)] == ["t2"]


async def test_active_turns_lists_running_turns_oldest_first(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    newer, older = claim("t1", "c1", 2_000.0), claim("t2", "c2", 1_000.0)
    await leases.acquire(ALICE, newer, LONG)
    await leases.acquire(ALICE, older, LONG)

    assert await leases.active_turns(ALICE) == [older, newer]
    assert await leases.active_turns(BOB) == []


async def test_partial_text_is_kept_for_its_ttl(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)

    await leases.save_partial(ALICE, "t1", "Hello, wor", LONG)
    await leases.save_partial(ALICE, "t1", "Hello, world — ", LONG)
    await leases.save_partial(ALICE, "t2", "gone soon", SHORT)

    assert await leases.partial(ALICE, "t1") == "Hello, world — "
    assert await leases.partial(BOB, "t1") is None
    await asyncio.sleep(AFTER_SHORT)
    assert await leases.partial(ALICE, "t2") is None


# -- sweeping ------------------------------------------------------------------------


async def test_a_dead_workers_turn_is_found_and_retired_exactly_once(
    state_redis: StateRedis,
) -> None:
    """Two sweepers on separate clients race for the same lapsed turn: one wins."""
    dead = claim("t1")
    await leases_for(state_redis).acquire(ALICE, dead, SHORT)
    await leases_for(state_redis).save_partial(ALICE, "t1", "partial text", LONG)
    await asyncio.sleep(AFTER_SHORT)
    sweepers = [leases_for(state_redis, await state_redis.new_client()) for _ in range(2)]

    found = await asyncio.gather(*(sweeper.lapsed() for sweeper in sweepers))
    assert found == [[(ALICE, dead)], [(ALICE, dead)]]
    won = await asyncio.gather(*(sweeper.forget(ALICE, dead) for sweeper in sweepers))

    assert sorted(won) == [False, True]
    assert await sweepers[0].lapsed() == []
    assert await deadline_entries(state_redis) == []
    assert await sweepers[0].partial(ALICE, "t1") == "partial text"  # for the winner to save


async def test_many_sweepers_many_turns_each_turn_retired_once(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    dead = [claim(f"t{i}", f"c{i}") for i in range(10)]
    for turn in dead:
        await leases.acquire(ALICE, turn, SHORT)
    await asyncio.sleep(AFTER_SHORT)
    sweepers = [leases_for(state_redis, await state_redis.new_client()) for _ in range(3)]

    async def sweep(sweeper: TurnLeases) -> list[str]:
        return [c.turn_id for user, c in await sweeper.lapsed() if await sweeper.forget(user, c)]

    retired = await asyncio.gather(*(sweep(sweeper) for sweeper in sweepers))

    assert sorted(t for ids in retired for t in ids) == sorted(c.turn_id for c in dead)


async def test_live_turns_are_not_lapsed_and_cannot_be_forgotten(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    live = claim("t1")
    await leases.acquire(ALICE, live, LONG)

    assert await leases.lapsed() == []
    assert not await leases.forget(ALICE, live)
    assert await leases.active_turns(ALICE) == [live]


async def test_lapsed_respects_its_limit(state_redis: StateRedis) -> None:
    leases = leases_for(state_redis)
    for i in range(5):
        await leases.acquire(ALICE, claim(f"t{i}", f"c{i}"), SHORT)
    await asyncio.sleep(AFTER_SHORT)

    assert len(await leases.lapsed(limit=2)) == 2
    assert len(await leases.lapsed()) == 5


async def test_lapsed_drops_index_entries_without_a_claim(state_redis: StateRedis) -> None:
    """A worker that died between listing a turn and claiming it leaves such an entry."""
    keys = KeySpace(state_redis.prefix)
    member = keys.turn_deadline_member(ALICE, "c1", "t-never-claimed")
    await state_redis.redis.zadd(keys.turn_deadlines(), {member: time.time() - 10})
    await state_redis.redis.zadd(keys.turn_deadlines(), {"not:a:member": time.time() - 10})

    assert await leases_for(state_redis).lapsed() == []
    assert await deadline_entries(state_redis) == []


async def test_lapsed_moves_a_renewed_turn_to_its_real_deadline(state_redis: StateRedis) -> None:
    """A worker that renewed the lease but died before rescoring it is still alive."""
    leases = leases_for(state_redis)
    await leases.acquire(ALICE, claim("t1"), LONG)
    keys = KeySpace(state_redis.prefix)
    member = keys.turn_deadline_member(ALICE, "c1", "t1")
    await state_redis.redis.zadd(keys.turn_deadlines(), {member: time.time() - 10})

    assert await leases.lapsed() == []
    [(_, deadline)] = await deadline_entries(state_redis)
    assert deadline > time.time() + LONG / 2


async def test_a_retried_forget_still_reports_its_win(state_redis: StateRedis) -> None:
    """redis-py re-sends a command whose reply was lost: same keys, same token."""
    leases = leases_for(state_redis)
    dead = claim("t1")
    await leases.acquire(ALICE, dead, SHORT)
    await asyncio.sleep(AFTER_SHORT)
    keys = KeySpace(state_redis.prefix)
    script_keys = [
        keys.turn_slot(ALICE, "c1"),
        keys.active_turns(ALICE),
        keys.turn_forgotten(ALICE, "t1"),
    ]

    async def forget_with(token: str) -> int:
        reply = await leases._forget_script(keys=script_keys, args=["t1", token, 60_000])
        return int(reply)

    assert await forget_with("token-a") == 1
    assert await forget_with("token-a") == 1
    assert await forget_with("token-b") == 0


def test_claims_round_trip_and_bad_ones_are_reported() -> None:
    from storage.errors import CorruptState

    original = claim("t1", "c:{1}", 1_700_000_000.25)
    assert TurnClaim.from_json(original.to_json(), "k") == original
    for bad in (b"nope", b"[]", b'{"turn_id":"t"}', b'{"turn_id":1}'):
        with pytest.raises(CorruptState, match="'k'"):
            TurnClaim.from_json(bad, "k")


async def test_a_lapsed_turn_that_tries_again_stays_listed_for_sweepers(
    state_redis: StateRedis,
) -> None:
    leases = leases_for(state_redis)
    lapsed = claim("t1")
    await leases.acquire(ALICE, lapsed, SHORT)
    await asyncio.sleep(AFTER_SHORT)
    assert await leases.acquire(ALICE, claim("t2"), LONG) is None

    assert await leases.acquire(ALICE, lapsed, LONG) == "t2"

    assert await leases.lapsed() == [(ALICE, lapsed)]
