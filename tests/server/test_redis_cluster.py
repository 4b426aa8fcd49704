"""Parley on a real Redis Cluster and behind real Sentinels, with two worker processes.

A three-master cluster: many users stream turns, each with tabs on both workers, and every tab
of a user sees the same frames; a tab resumes with ``last_seq``; rate limits and turn leases
hold across workers. A three-master, three-replica cluster: the master that owns a streaming
user's slot is killed mid-turn, its replica takes over, the turn ends and the next one streams.
A primary with a replica under three Sentinels: the primary is killed and the workers follow
the replica the Sentinels promote.

The Redis processes come from ``tests/redis_topologies.py``; everything else is the real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.redis_topologies import RedisClusterProcesses, RedisSentinelProcesses
from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, logged
from tests.server.outage import ask_until_accepted, assert_consecutive, wait_ready

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

WORDS = " ".join(f"word{number}" for number in range(150))
USERS = 6
MESSAGES_PER_USER = 4  # the per-user message limit in the cluster test


def start_workers(
    backend: Backend, model: DevModel, tmp: Path, redis_url: str, **extra: str
) -> list[ParleyServer]:
    config = backend.config(model, **extra)
    config.redis_url = redis_url
    first = ParleyServer(tmp, config, process=True)
    try:
        second = ParleyServer(tmp, config, process=True)
    except BaseException:
        first.stop()
        raise
    return [first, second]


def deduped(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a client keeps: each seq once."""
    by_seq = {frame["seq"]: frame for frame in logged(frames)}
    return [by_seq[seq] for seq in sorted(by_seq)]


def user_tag(user: str) -> str:
    """A key in the user's slot: every key of the user carries this hash tag."""
    return f"{{t:acme:u:{user}}}"


def message(ref: str, text: str, conversation: str | None = None) -> dict[str, Any]:
    frame = {"type": "user_message", "client_msg_id": ref, "text": text}
    if conversation is not None:
        frame["conversation_id"] = conversation
    return frame


# -- a three-master cluster --------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    nodes = RedisClusterProcesses(tmp_path, masters=3)
    yield nodes
    nodes.stop()


async def test_users_on_a_cluster_stream_alike_on_both_workers(
    real_backend: Backend, model: DevModel, tmp_path: Path, cluster: RedisClusterProcesses
) -> None:
    workers = start_workers(
        real_backend,
        model,
        tmp_path,
        cluster.url,
        PARLEY_USER_MESSAGES_PER_MINUTE=str(MESSAGES_PER_USER),
        PARLEY_RATE_WINDOW_S="60",
    )
    try:
        first, second = workers
        for worker in workers:
            body = await wait_ready(worker, 200, timeout=60)
            assert body["checks"]["redis"] == "ok"
        users = [f"{first.user}-{number}" for number in range(USERS)]
        # The users live on more than one master, so the test crosses shards.
        owners = {cluster.master_of(user_tag(user)).port for user in users}
        assert len(owners) > 1, owners

        # Every user: a tab on each worker; the first tab asks, both tabs see the turn.
        pairs = []
        for user in users:
            token = first.token(user)
            pairs.append((await first.tab(token), await second.tab(token)))

        async def converse(number: int, asking: Tab, listening: Tab) -> list[dict[str, Any]]:
            frames = await asking.ask(f"[say] answer for user {number}", f"m-{number}")
            heard = await listening.until("turn_end")
            assert logged(heard) == logged(frames)
            return logged(frames)

        streams = await asyncio.gather(
            *(converse(number, *pair) for number, pair in enumerate(pairs))
        )
        for number, stream in enumerate(streams):
            assert_consecutive(stream)
            assert stream[-1]["status"] == "completed"
            assert frames_of(stream, "response")[0]["text"] == f"answer for user {number}"

        # Resume: the second tab of user 0 goes away while a turn streams, and comes back
        # with its last seq; it gets exactly what it missed.
        talker, leaver = pairs[0]
        conversation = streams[0][0]["conversation_id"]
        epoch, last_seq = leaver.ready["epoch"], streams[0][-1]["seq"]
        await leaver.close()
        missed = await talker.ask(
            "[say] while you were away", "m-away", conversation_id=conversation
        )
        back = await second.tab(first.token(users[0]), epoch=epoch, last_seq=last_seq)
        assert back.ready["resumed"] is True
        await back.until(lambda frame: frame.get("seq") == missed[-1]["seq"])
        assert logged(back.frames) == logged(missed)

        # Leases: a second message to the same conversation, sent through the other worker
        # while the first streams, waits its turn (the default policy queues it).
        model.set_faults([{"fault": "token_rate", "rate": 40}])
        await talker.send(message("m-long", f"[say] {WORDS}", conversation))
        await talker.until("response_delta")
        await back.send(message("m-queued", "[say] after the long one", conversation))
        long_end = await talker.until("turn_end")
        queued = await talker.until("turn_end")
        model.clear_faults()
        assert long_end[-1]["status"] == queued[-1]["status"] == "completed"
        assert long_end[-1]["seq"] < frames_of(queued, "thinking")[0]["seq"]
        assert [f["text"] for f in frames_of(queued, "response")] == ["after the long one"]
        everything = logged(talker.frames)
        assert_consecutive(everything)
        await back.until(lambda frame: frame.get("seq") == everything[-1]["seq"])
        assert deduped(back.frames) == everything[everything.index(missed[0]) :]

        # Rate limits count across workers: user 0 has sent its limit (m-0, m-away, m-long
        # and m-queued), so the next message is refused, through either worker.
        await back.send(message("m-refused", "[say] one too many", conversation))
        refused = (await back.until(lambda frame: frame.get("ref") == "m-refused"))[-1]
        assert refused["code"] == "rate_limited", refused
        assert refused["retryable"] is True

        # A cancel sent through the other worker reaches the turn over the control channel
        # (a sharded channel on a cluster).
        starter, stopper = pairs[1]
        other_conversation = streams[1][0]["conversation_id"]
        model.set_faults([{"fault": "token_rate", "rate": 20}])
        await starter.send(message("m-cancelled", f"[say] {WORDS}", other_conversation))
        await stopper.until("response_delta")
        await stopper.send({"type": "cancel", "conversation_id": other_conversation})
        ended = (await starter.until("turn_end"))[-1]
        model.clear_faults()
        assert ended["status"] == "cancelled", ended

        for pair in pairs[1:]:
            for tab in pair:
                await tab.close()
        await talker.close()
        await back.close()
    finally:
        for worker in workers:
            worker.stop()


async def test_a_users_slot_moves_to_another_master_and_fanout_follows(
    real_backend: Backend, model: DevModel, tmp_path: Path, cluster: RedisClusterProcesses
) -> None:
    workers = start_workers(real_backend, model, tmp_path, cluster.url)
    try:
        first, second = workers
        token = first.token()
        asking, listening = await first.tab(token), await second.tab(token)
        before = await asking.ask("[say] before the move", "m-1")
        conversation = before[0]["conversation_id"]
        assert logged(await listening.until("turn_end")) == logged(before)
        old_owner = cluster.master_of(user_tag(first.user))

        new_owner = cluster.move_slot_of(user_tag(first.user))
        assert new_owner is not old_owner
        assert cluster.master_of(user_tag(first.user)) is new_owner

        # The log moved with the slot: seqs go on, and the tab on the other worker hears the
        # next turn through its subscription, now on the new owner. (A subscription left on
        # the old node would be noticed only by a periodic reconnect, long after the turn: the
        # timeout, generous for frames already logged, tells the two apart.)
        after = await asking.ask("[say] after the move", "m-2", conversation_id=conversation)
        assert after[-1]["status"] == "completed"
        assert after[0]["seq"] == before[-1]["seq"] + 1
        heard = await listening.until(lambda frame: frame.get("seq") == after[-1]["seq"], timeout=5)
        assert logged(heard) == logged(after)
        await asking.close()
        await listening.close()
    finally:
        for worker in workers:
            worker.stop()


# -- a three-master, three-replica cluster loses a master mid-turn ------------------------------


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    nodes = RedisClusterProcesses(tmp_path, masters=3, replicas=1)
    yield nodes
    nodes.stop()


async def open_tab(server: ParleyServer, token: str, timeout: float = 60.0, **hello: Any) -> Tab:
    """A tab, opened again and again while the worker refuses sockets (Redis is failing over)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await server.tab(token, **hello)
        except (websockets.ConnectionClosed, AssertionError, OSError):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)


async def follow_turn(
    server: ParleyServer, token: str, tab: Tab
) -> tuple[list[tuple[str, list[dict[str, Any]]]], Tab]:
    """Read ``tab`` until the running turn ends, reconnecting it (with its epoch and last seq)
    whenever the worker closes it. Every session's (epoch, logged frames), and the last tab."""
    sessions: list[tuple[str, list[dict[str, Any]]]] = []
    while True:
        try:
            await tab.until("turn_end", timeout=90)
            sessions.append((tab.ready["epoch"], logged(tab.frames)))
            return sessions, tab
        except websockets.ConnectionClosed:
            seen = logged(tab.frames)
            sessions.append((tab.ready["epoch"], seen))
            last = seen[-1]["seq"] if seen else tab.ready["last_seq"]
            tab = await open_tab(server, token, epoch=tab.ready["epoch"], last_seq=last)
            if not tab.ready["resumed"] and not tab.ready["active_turns"]:
                sessions.append((tab.ready["epoch"], []))  # rebuilt after the turn ended
                return sessions, tab


def assert_no_seq_reused(sessions: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Under one epoch, one seq always names the same frame."""
    named: dict[tuple[str, int], dict[str, Any]] = {}
    for epoch, frames in sessions:
        for frame in frames:
            first = named.setdefault((epoch, frame["seq"]), frame)
            assert first == frame, (epoch, frame["seq"], first, frame)


async def test_a_master_dies_mid_turn_and_its_replica_takes_over(
    real_backend: Backend,
    model: DevModel,
    tmp_path: Path,
    replicated_cluster: RedisClusterProcesses,
) -> None:
    workers = start_workers(real_backend, model, tmp_path, replicated_cluster.url)
    try:
        first, second = workers
        token = first.token()
        asking, listening = await first.tab(token), await second.tab(token)
        model.set_faults([{"fault": "token_rate", "rate": 15}])
        await asking.send(message("m-1", f"[say] {WORDS}"))
        await listening.until(lambda frame: frame["type"] == "response_delta")

        replicated_cluster.kill_master_of(user_tag(first.user))
        # The workers say so while the slot has no master.
        body = await wait_ready(first, 503, timeout=20)
        assert "redis" in body["problems"] or "fanout" in body["problems"], body
        replicated_cluster.wait_healthy(masters=3, replicas=None)

        (asked, asking), (heard, listening) = await asyncio.gather(
            follow_turn(first, token, asking), follow_turn(second, token, listening)
        )
        model.clear_faults()
        ends = [frame for _, frames in asked + heard for frame in frames_of(frames, "turn_end")]
        assert ends, "no tab saw the turn end"
        assert {end["status"] for end in ends} <= {"completed", "interrupted"}, ends
        assert len({end["seq"] for end in ends}) == 1, ends  # one turn_end, seen by every tab
        assert_no_seq_reused(asked + heard)
        for worker in workers:
            await wait_ready(worker, 200, timeout=60)

        # The next turn streams normally, the same on both workers.
        conversation = ends[0]["conversation_id"]
        after = await asking.ask("[say] after the failover", "m-2", conversation_id=conversation)
        assert after[-1]["status"] == "completed"
        heard_after = await listening.until(lambda frame: frame.get("seq") == after[-1]["seq"])
        assert logged(after) == [f for f in logged(heard_after) if f["seq"] >= after[0]["seq"]]
        assert_consecutive(logged(after))
        assert frames_of(after, "response")[0]["text"] == "after the failover"
        await asking.close()
        await listening.close()
    finally:
        for worker in workers:
            worker.stop()


# -- a primary and a replica under Sentinels ---------------------------------------------------


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[RedisSentinelProcesses]:
    deployment = RedisSentinelProcesses(tmp_path)
    yield deployment
    deployment.stop()


async def test_workers_follow_the_primary_sentinels_promote(
    real_backend: Backend, model: DevModel, tmp_path: Path, sentinels: RedisSentinelProcesses
) -> None:
    workers = start_workers(real_backend, model, tmp_path, sentinels.url)
    try:
        first, second = workers
        for worker in workers:
            await wait_ready(worker, 200, timeout=60)
        token = first.token()
        talker, listener = await first.tab(token), await second.tab(token)
        before = await talker.ask("[say] before the failover", "m-1")
        conversation = before[0]["conversation_id"]
        assert logged(await listener.until("turn_end")) == logged(before)

        old = sentinels.kill_primary()
        body = await wait_ready(first, 503, timeout=20)
        assert "redis" in body["problems"] or "fanout" in body["problems"], body
        assert sentinels.wait_new_primary(old) != old
        # Both workers say they reach the new primary before the next turn is asked for.
        for worker in workers:
            await wait_ready(worker, 200, timeout=60)

        after = await ask_until_accepted(
            talker, "m-2", "[say] after the failover", conversation, timeout=60
        )
        assert after[-1]["status"] == "completed"
        # The replica had the log: seqs go on under the same epoch, on both workers.
        heard = await listener.until(lambda frame: frame.get("seq") == after[-1]["seq"])
        assert logged(after) == [f for f in logged(heard) if f["seq"] >= after[0]["seq"]]
        assert after[0]["seq"] > before[-1]["seq"]
        assert frames_of(after, "response")[0]["text"] == "after the failover"
        await talker.close()
        await listener.close()
    finally:
        for worker in workers:
            worker.stop()
