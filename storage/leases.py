"""Turn leases: one running turn per conversation, owned by one worker for a while.

A turn runs under a lease: the conversation's *turn slot* key holds the turn's id with a
TTL that the owning worker renews. While the slot is held no other turn starts in that
conversation (invariant 4). If the worker dies the slot lapses; a sweeper on any worker
finds the turn through :meth:`TurnLeases.lapsed`, retires it with
:meth:`TurnLeases.forget` — of several sweepers exactly one wins — and ends it as
``interrupted`` with the partial text kept by :meth:`TurnLeases.save_partial`
(invariant 3).

Three places know about a running turn:

* the slot ``turn:<conversation>`` (the lease itself, with the TTL),
* the user's ``turns`` hash (the claim: who runs which turn since when), and
* the global ``turns:deadlines`` sorted set (where sweepers look, scored by deadline).

The first two are changed together by Lua scripts, since they share the user's hash tag.
The global set lives in another Redis Cluster slot, so no script may touch it alongside
them; it is written *before* a claim is made and cleaned *after* it is removed. A crash
in between leaves an entry with no claim behind, which sweepers drop, never a claim no
sweeper can find. Its scores are deadlines on the workers' clocks; they only decide
where a sweeper looks first, while whether a lease lapsed is decided by the slot's TTL
in Redis.

All writes are safe to repeat after a lost reply (redis-py retries on broken
connections): acquiring a slot the same turn already holds succeeds, release and renew
are idempotent, and :meth:`TurnLeases.forget` remembers its winner for a minute.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass

import orjson

from storage.errors import CorruptState
from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import (
    RedisClient,
    reply_int,
    reply_list,
    reply_optional_str,
    reply_str,
    state_errors,
    to_ms,
)

# A user's turns hash expires this long after the last acquire or renew, so claims a
# crash left behind cannot accumulate; any live claim is renewed far more often.
TURNS_KEY_TTL_MS = 86_400_000
# How long the winner of a forget is remembered, to answer a retried call the same.
FORGET_REPLAY_WINDOW_MS = 60_000

_ACQUIRE_LUA = """
-- KEYS: 1 turn slot, 2 user's turns hash
-- ARGV: 1 turn_id, 2 lease ttl ms, 3 claim json, 4 turns hash ttl ms
-- Returns nil when the slot is now this turn's. Else {holder's turn_id, 1 if this turn
-- still has a claim (it held the slot before and lapsed), else 0}.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {holder, redis.call('HEXISTS', KEYS[2], ARGV[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return false
"""

_RENEW_LUA = """
-- KEYS: 1 turn slot, 2 user's turns hash
-- ARGV: 1 turn_id, 2 lease ttl ms, 3 turns hash ttl ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

_RELEASE_LUA = """
-- KEYS: 1 turn slot, 2 user's turns hash, 3 the turn's partial text
-- ARGV: 1 turn_id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
"""

_FORGET_LUA = """
-- KEYS: 1 turn slot, 2 user's turns hash, 3 the turn's forget marker
-- ARGV: 1 turn_id, 2 this call's token, 3 marker ttl ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0  -- the lease is held again: the turn is alive, not lapsed
end
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
  return 1
end
if redis.call('GET', KEYS[3]) == ARGV[2] then
  return 1  -- this very call already won, and its reply was lost
end
return 0
"""


@dataclass(frozen=True, slots=True)
class TurnClaim:
    """Who runs a turn: recorded while the turn holds its conversation's slot."""

    turn_id: str
    conversation_id: str
    message_id: str  # the assistant message being written
    worker_id: str
    started_at: float  # unix seconds

    def to_json(self) -> bytes:
        """The claim as stored in Redis."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str, key: str) -> TurnClaim:
        """Read a claim stored by :meth:`to_json`.

        Raises:
            CorruptState: ``raw`` is not such a claim (``key`` names where it was found).
        """
        try:
            fields = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CorruptState(key, "turn claim is not json") from exc
        if not isinstance(fields, dict):
            raise CorruptState(key, "turn claim is not an object")
        strings = ("turn_id", "conversation_id", "message_id", "worker_id")
        values = [fields.get(name) for name in strings]
        started_at = fields.get("started_at")
        if not all(isinstance(value, str) for value in values) or not isinstance(
            started_at, int | float
        ):
            raise CorruptState(key, f"turn claim lacks a field: {sorted(fields)}")
        turn_id, conversation_id, message_id, worker_id = (str(value) for value in values)
        return cls(turn_id, conversation_id, message_id, worker_id, float(started_at))


class TurnLeases:
    """Turn slots, claims and partial text of running turns (invariants 3 and 4)."""

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._renew_script = redis.register_script(_RENEW_LUA)
        self._release_script = redis.register_script(_RELEASE_LUA)
        self._forget_script = redis.register_script(_FORGET_LUA)

    # -- the owning worker -------------------------------------------------------------

    async def acquire(self, user: UserKey, claim: TurnClaim, ttl_s: float) -> str | None:
        """Claim the conversation's turn slot for ``claim.turn_id`` for ``ttl_s`` seconds.

        Returns:
            None when the slot is now this turn's (also when it already was), else the
            turn_id of the turn holding it.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        ttl_ms = to_ms(ttl_s)
        deadlines = self._keys.turn_deadlines()
        member = self._keys.turn_deadline_member(user, claim.conversation_id, claim.turn_id)
        slot = self._keys.turn_slot(user, claim.conversation_id)
        with state_errors("turn lease acquire"):
            # Listed for sweepers first: if this worker dies right after the claim is
            # made, a sweeper must still be able to find it.
            await self._redis.zadd(deadlines, {member: time.time() + ttl_ms / 1000})
            refused = await self._acquire_script(
                keys=[slot, self._keys.active_turns(user)],
                args=[claim.turn_id, ttl_ms, claim.to_json(), TURNS_KEY_TTL_MS],
            )
            if refused is None:
                return None
            holder, still_claimed = reply_list(refused, slot)
            if reply_int(still_claimed, slot):
                # This turn ran before and its lease lapsed: it stays listed, due now,
                # so that a sweeper ends it.
                await self._redis.zadd(deadlines, {member: time.time()})
            else:
                await self._redis.zrem(deadlines, member)
        return reply_str(holder, slot)

    async def renew(self, user: UserKey, conversation_id: str, turn_id: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now, if ``turn_id`` still holds it.

        Returns:
            False when the lease is no longer this turn's (it lapsed, or another turn
            took the slot since): the turn must stop.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        ttl_ms = to_ms(ttl_s)
        with state_errors("turn lease renew"):
            renewed = await self._renew_script(
                keys=[
                    self._keys.turn_slot(user, conversation_id),
                    self._keys.active_turns(user),
                ],
                args=[turn_id, ttl_ms, TURNS_KEY_TTL_MS],
            )
            if not renewed:
                return False
            member = self._keys.turn_deadline_member(user, conversation_id, turn_id)
            await self._redis.zadd(
                self._keys.turn_deadlines(), {member: time.time() + ttl_ms / 1000}, xx=True
            )
        return True

    async def release(self, user: UserKey, conversation_id: str, turn_id: str) -> None:
        """End the turn's lease: free the slot (if still ours), drop claim and partial text.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("turn lease release"):
            await self._release_script(
                keys=[
                    self._keys.turn_slot(user, conversation_id),
                    self._keys.active_turns(user),
                    self._keys.turn_partial(user, turn_id),
                ],
                args=[turn_id],
            )
            member = self._keys.turn_deadline_member(user, conversation_id, turn_id)
            await self._redis.zrem(self._keys.turn_deadlines(), member)

    async def save_partial(self, user: UserKey, turn_id: str, text: str, ttl_s: float) -> None:
        """Keep the text streamed so far, for resume snapshots and for a sweeper.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("turn partial save"):
            await self._redis.set(self._keys.turn_partial(user, turn_id), text, px=to_ms(ttl_s))

    # -- readers -----------------------------------------------------------------------

    async def holder(self, user: UserKey, conversation_id: str) -> str | None:
        """The turn_id holding the conversation's slot, or None when it is free.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        slot = self._keys.turn_slot(user, conversation_id)
        with state_errors("turn lease holder"):
            return reply_optional_str(await self._redis.get(slot), slot)

    async def active_turns(self, user: UserKey) -> list[TurnClaim]:
        """The user's running turns (lease held), oldest first.

        Raises:
            StateUnavailable: Redis could not be reached.
            CorruptState: a stored claim is unreadable.
        """
        key = self._keys.active_turns(user)
        with state_errors("active turns"):
            stored = await self._redis.hvals(key)
            claims = [TurnClaim.from_json(raw, key) for raw in stored]
            if not claims:
                return []
            slots = [self._keys.turn_slot(user, claim.conversation_id) for claim in claims]
            # All slots carry the user's hash tag, so one MGET serves them even on a cluster.
            holders = await self._redis.mget(slots)
        running = [
            claim
            for claim, holder in zip(claims, holders, strict=True)
            if holder is not None and reply_str(holder, key) == claim.turn_id
        ]
        return sorted(running, key=lambda claim: claim.started_at)

    async def partial(self, user: UserKey, turn_id: str) -> str | None:
        """The partial text last saved for the turn, or None.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        key = self._keys.turn_partial(user, turn_id)
        with state_errors("turn partial read"):
            return reply_optional_str(await self._redis.get(key), key)

    # -- sweepers ----------------------------------------------------------------------

    async def lapsed(self, limit: int = 100) -> list[tuple[UserKey, TurnClaim]]:
        """Up to ``limit`` turns whose lease lapsed without a release (their worker died).

        For each, call :meth:`forget` *first*; only the caller that gets True ends the
        turn (saves :meth:`partial`, logs ``turn_end`` ``interrupted``). A turn stays in
        this list until it is forgotten, so a sweeper that fails part way is retried.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        deadlines = self._keys.turn_deadlines()
        with state_errors("lapsed turns"):
            due = await self._redis.zrangebyscore(deadlines, "-inf", time.time(), 0, limit)
            candidates: list[tuple[str, UserKey, str, str]] = []
            for raw in due:
                member = reply_str(raw, deadlines)
                try:
                    candidates.append((member, *self._keys.parse_turn_deadline_member(member)))
                except ValueError:
                    await self._redis.zrem(deadlines, member)  # not ours: drop it
            if not candidates:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, user, conversation_id, turn_id in candidates:
                    slot = self._keys.turn_slot(user, conversation_id)
                    pipe.get(slot)
                    pipe.pttl(slot)
                    pipe.hget(self._keys.active_turns(user), turn_id)
                replies = await pipe.execute()
            now = time.time()
            found: list[tuple[UserKey, TurnClaim]] = []
            orphans: list[str] = []
            alive: dict[str, float] = {}
            for i, (member, user, _, turn_id) in enumerate(candidates):
                holder, pttl, stored = replies[3 * i : 3 * i + 3]
                if stored is None:
                    orphans.append(member)  # claim already removed; a crash left this
                elif holder is not None and reply_str(holder, deadlines) == turn_id:
                    alive[member] = now + max(reply_int(pttl, deadlines), 0) / 1000
                else:
                    claim = TurnClaim.from_json(stored, self._keys.active_turns(user))
                    found.append((user, claim))
            if orphans:
                await self._redis.zrem(deadlines, *orphans)
            if alive:
                # Renewed but not rescored (its worker failed between the two steps):
                # move it to its real deadline so it does not crowd the front.
                await self._redis.zadd(deadlines, alive, xx=True)
        return found

    async def forget(self, user: UserKey, claim: TurnClaim) -> bool:
        """Retire a lapsed turn; True for exactly one caller, however many try at once.

        Returns:
            True when this call removed the claim (the caller now ends the turn); False
            when another caller already did, or the lease is held again.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("turn forget"):
            won = await self._forget_script(
                keys=[
                    self._keys.turn_slot(user, claim.conversation_id),
                    self._keys.active_turns(user),
                    self._keys.turn_forgotten(user, claim.turn_id),
                ],
                args=[claim.turn_id, secrets.token_hex(16), FORGET_REPLAY_WINDOW_MS],
            )
            if won:
                member = self._keys.turn_deadline_member(user, claim.conversation_id, claim.turn_id)
                await self._redis.zrem(self._keys.turn_deadlines(), member)
        return bool(won)
