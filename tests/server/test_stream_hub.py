"""The frame hub on its own (DESIGN invariants 1 and 2): the real ``FrameHub`` and ``FrameLog``
on the embedded store and on real Redis, each hub on its own client as on its own worker, and
tabs that are real ``Connection`` objects over an in-memory peer. Every tab of a user gets the
user's frames in one seq order, strictly +1, once each; a resuming tab gets what it missed and
then live frames; a lost wake-up is filled from the stream; a log Redis lost and made anew
sends the tabs to resync; detaching stops delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
import pytest

from server.socket.connection import Connection, SendLimits
from server.stream.hub import Attachment, FrameHub, ReplayLimit
from storage.frame_log import FrameLog
from storage.keys import UserKey
from tests.server.peer_socket import PeerSocket, until

if TYPE_CHECKING:
    from tests.state_store import StateRedis

pytestmark = pytest.mark.timeout(60)

ANN = UserKey("acme", "ann")
BEN = UserKey("acme", "ben")
ROOMY = SendLimits(max_frames=10_000, max_bytes=10_000_000, close_timeout_s=1.0)


def frames(writer: str, count: int, start: int = 0) -> list[str]:
    """``count`` distinct unlogged frames, each naming its writer and its place."""
    return [
        orjson.dumps({"type": "response_delta", "delta": f"{writer}-{n}"}).decode()
        for n in range(start, start + count)
    ]


def deltas(peer: PeerSocket) -> list[str]:
    return [frame["delta"] for frame in peer.frames]


@dataclass
class Tab:
    connection: Connection
    peer: PeerSocket
    attachment: Attachment
    user: UserKey
    hub: FrameHub


@dataclass
class Workers:
    """Hubs on one store, each with its own client and frame log, and the tabs on them."""

    state: StateRedis
    max_len: int = 10_000
    hubs: list[FrameHub] = field(default_factory=list)
    tabs: list[Tab] = field(default_factory=list)

    async def log(self) -> FrameLog:
        """A frame log on its own client: a writer that is not a hub (another worker's turn)."""
        client = await self.state.new_client()
        return FrameLog(client, prefix=self.state.prefix, max_len=self.max_len)

    async def hub(self) -> FrameHub:
        client = await self.state.new_client()
        hub = FrameHub(client, FrameLog(client, prefix=self.state.prefix, max_len=self.max_len))
        await hub.start()
        self.hubs.append(hub)
        return hub

    async def tab(
        self,
        hub: FrameHub,
        user: UserKey = ANN,
        epoch: str | None = None,
        last_seq: int | None = None,
        *,
        max_replay: ReplayLimit | None = None,
        replay: bool = True,
    ) -> Tab:
        """A tab attached as the endpoint attaches one: ``ready`` would go out between
        ``attach`` and ``finish_replay``; with ``replay=False`` the caller finishes it."""
        peer = PeerSocket()
        connection = Connection(peer, ROOMY)  # type: ignore[arg-type]
        connection.start()
        attachment = await hub.attach(connection, user, epoch, last_seq, max_replay=max_replay)
        tab = Tab(connection, peer, attachment, user, hub)
        self.tabs.append(tab)
        if replay:
            connection.finish_replay(attachment.missed)
        return tab

    async def detach(self, tab: Tab) -> None:
        await tab.hub.detach(tab.connection, tab.user)
        self.tabs.remove(tab)
        await tab.connection.stop()

    async def subscribers(self, user: UserKey = ANN) -> int:
        channel = FrameLog(self.state.redis, prefix=self.state.prefix).channel(user)
        [(_, count)] = await self.state.redis.pubsub_numsub(channel)
        return int(count)

    async def close(self) -> None:
        for tab in list(self.tabs):
            await self.detach(tab)
        for hub in self.hubs:
            await hub.stop()


@pytest.fixture
async def workers(state_redis: StateRedis) -> AsyncIterator[Workers]:
    workers = Workers(state_redis)
    try:
        yield workers
    finally:
        await workers.close()


async def received(tabs: Sequence[Tab], count: int) -> None:
    for tab in tabs:
        await until(lambda tab=tab: len(tab.peer.received) >= count, f"{count} frames")


# -- fan-out across workers ------------------------------------------------------------


async def test_frames_from_two_workers_reach_every_tab_in_one_order(workers: Workers) -> None:
    first, second = await workers.hub(), await workers.hub()
    tabs = [
        await workers.tab(first),
        await workers.tab(first),
        await workers.tab(second),
    ]
    other_user = await workers.tab(second, BEN)

    async def publish(hub: FrameHub, writer: str) -> None:
        # Batches of 1, 2 and 3 frames, interleaved with the other worker's.
        sent = 0
        for size in [1, 2, 3] * 5:
            await hub.publish(ANN, frames(writer, size, start=sent))
            sent += size

    await asyncio.gather(publish(first, "a"), publish(second, "b"))
    await received(tabs, 60)

    order = tabs[0].peer.received
    for tab in tabs:
        assert tab.peer.seqs == list(range(1, 61))  # strictly +1 from 1: no gap, no repeat
        assert tab.peer.received == order  # the same frames in the same order in every tab
    for writer in "ab":
        # Each worker's frames keep the order it published them in.
        mine = [delta for delta in deltas(tabs[0].peer) if delta.startswith(writer)]
        assert mine == [f"{writer}-{n}" for n in range(30)]
    assert other_user.peer.received == []  # another user's stream is another stream


async def test_a_tab_gets_a_frame_once_however_it_arrives(workers: Workers) -> None:
    # A frame published by a hub reaches that hub's tabs at once, and again through pub/sub:
    # the second copy is dropped by seq.
    hub = await workers.hub()
    tab = await workers.tab(hub)
    await hub.publish(ANN, frames("a", 3))
    # A last frame from elsewhere: once it is in, every earlier wake-up has been read too.
    await (await workers.log()).append(ANN, frames("z", 1))
    # Wake-ups arrive in order, so any second copy of 1-3 would be in before seq 4.
    await received([tab], 4)
    assert tab.peer.seqs == [1, 2, 3, 4]


# -- resume --------------------------------------------------------------------------


async def test_a_resuming_tab_gets_exactly_what_it_missed_then_live_frames(
    workers: Workers,
) -> None:
    first, second = await workers.hub(), await workers.hub()
    watcher = await workers.tab(first)
    await first.publish(ANN, frames("old", 5))
    await received([watcher], 5)
    epoch = watcher.attachment.position.epoch

    tab = await workers.tab(second, ANN, epoch, 2)
    assert tab.attachment.resumed
    assert tab.attachment.position.last_seq == 5
    assert [frame.seq for frame in tab.attachment.missed] == [3, 4, 5]

    await second.publish(ANN, frames("new", 2))
    await first.publish(ANN, frames("new", 1, start=2))
    await received([tab], 6)
    assert tab.peer.seqs == [3, 4, 5, 6, 7, 8]
    assert deltas(tab.peer) == ["old-2", "old-3", "old-4", "new-0", "new-1", "new-2"]


async def test_live_frames_during_the_replay_wait_behind_the_missed_ones(
    workers: Workers,
) -> None:
    hub = await workers.hub()
    writer = await workers.log()
    await writer.append(ANN, frames("old", 4))
    position = await writer.position(ANN)

    watcher = await workers.tab(hub)
    tab = await workers.tab(hub, ANN, position.epoch, 1, replay=False)
    # Frames logged after the attach, locally and from another worker, while the endpoint
    # is still sending ``ready``: they are held, not sent ahead of the missed ones. The hub
    # hands a frame to all of a user's tabs at once, so once the watcher has both, so has
    # the replaying tab.
    await hub.publish(ANN, frames("live", 1))
    await writer.append(ANN, frames("live", 1, start=1))
    await received([watcher], 2)
    assert tab.peer.received == []

    tab.connection.finish_replay(tab.attachment.missed)
    await received([tab], 5)
    assert tab.peer.seqs == [2, 3, 4, 5, 6]
    assert deltas(tab.peer) == ["old-1", "old-2", "old-3", "live-0", "live-1"]


async def test_a_tab_that_missed_more_than_the_replay_limit_rebuilds(workers: Workers) -> None:
    hub = await workers.hub()
    writer = await workers.log()
    await writer.append(ANN, frames("old", 10))
    epoch = (await writer.position(ANN)).epoch

    # Eight missed frames fit a limit of eight frames; nine do not.
    eight = ReplayLimit(frames=8, bytes=10**6)
    fits = await workers.tab(hub, ANN, epoch, 2, max_replay=eight)
    assert fits.attachment.resumed
    assert len(fits.attachment.missed) == 8
    over = await workers.tab(hub, ANN, epoch, 1, max_replay=eight)
    assert not over.attachment.resumed
    assert over.attachment.missed == []
    assert over.attachment.position.last_seq == 10
    # A byte bound counts too: the two missed frames weigh more than 40 bytes.
    heavy = await workers.tab(hub, ANN, epoch, 8, max_replay=ReplayLimit(frames=8, bytes=40))
    assert not heavy.attachment.resumed

    # A tab that rebuilds starts from the snapshot's position: only new frames follow.
    await hub.publish(ANN, frames("new", 1))
    await received([over, heavy], 1)
    assert over.peer.seqs == heavy.peer.seqs == [11]
    assert fits.peer.seqs == list(range(3, 12))


async def test_a_tab_with_another_epoch_or_trimmed_frames_rebuilds(
    state_redis: StateRedis,
) -> None:
    workers = Workers(state_redis, max_len=5)
    try:
        hub = await workers.hub()
        writer = await workers.log()
        # Far more than the log keeps: the first frames are trimmed away.
        for start in range(0, 400, 50):
            await writer.append(ANN, frames("old", 50, start=start))
        epoch = (await writer.position(ANN)).epoch

        trimmed = await workers.tab(hub, ANN, epoch, 1)
        assert not trimmed.attachment.resumed
        stale = await workers.tab(hub, ANN, "an-epoch-of-a-lost-log", 399)
        assert not stale.attachment.resumed
        assert stale.attachment.position == trimmed.attachment.position
        assert stale.attachment.position.last_seq == 400
        recent = await workers.tab(hub, ANN, epoch, 399)
        assert recent.attachment.resumed
        assert [frame.seq for frame in recent.attachment.missed] == [400]
    finally:
        await workers.close()


# -- lost wake-ups -------------------------------------------------------------------


async def pause_subscription(workers: Workers, hub: FrameHub, user: UserKey = ANN) -> None:
    """Make ``hub`` miss the wake-ups published from now on, as when its subscription was
    briefly gone, without telling it: only the seq check can notice what it missed."""
    await hub._pubsub.unsubscribe(hub._log.channel(user))
    await until_subscribers(workers, 0)


async def resume_subscription(workers: Workers, hub: FrameHub, user: UserKey = ANN) -> None:
    await hub._pubsub.subscribe(hub._log.channel(user))
    await until_subscribers(workers, 1)


async def until_subscribers(workers: Workers, count: int) -> None:
    for _ in range(2000):
        if await workers.subscribers() == count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the channel never had {count} subscribers")


async def test_a_lost_wake_up_is_filled_from_the_stream_by_the_next_one(
    workers: Workers,
) -> None:
    hub = await workers.hub()
    tab = await workers.tab(hub)
    writer = await workers.log()
    await writer.append(ANN, frames("w", 2))
    await received([tab], 2)

    await pause_subscription(workers, hub)
    await writer.append(ANN, frames("w", 3, start=2))  # seqs 3-5: logged, wake-up lost
    await resume_subscription(workers, hub)
    await writer.append(ANN, frames("w", 1, start=5))  # seq 6 arrives after seq 2

    await received([tab], 6)
    assert tab.peer.seqs == [1, 2, 3, 4, 5, 6]
    assert deltas(tab.peer) == [f"w-{n}" for n in range(6)]


async def test_a_local_publish_after_a_lost_wake_up_sends_the_missing_frames_first(
    workers: Workers,
) -> None:
    hub = await workers.hub()
    tab = await workers.tab(hub)
    writer = await workers.log()

    await pause_subscription(workers, hub)
    await writer.append(ANN, frames("other", 2))  # seqs 1-2 from another worker, unannounced
    await hub.publish(ANN, frames("mine", 1))  # seq 3, handed to the tab directly
    await resume_subscription(workers, hub)

    await received([tab], 3)
    assert tab.peer.seqs == [1, 2, 3]
    assert deltas(tab.peer) == ["other-0", "other-1", "mine-0"]


# -- detach ----------------------------------------------------------------------------


async def test_a_detached_tab_gets_nothing_more_and_the_last_one_unsubscribes(
    workers: Workers,
) -> None:
    hub = await workers.hub()
    leaving, staying = await workers.tab(hub), await workers.tab(hub)
    await hub.publish(ANN, frames("a", 1))
    await received([leaving, staying], 1)
    assert await workers.subscribers() == 1  # one subscription per worker, not per tab

    await workers.detach(leaving)
    assert hub.tabs_of(ANN) == (staying.connection,)
    await hub.publish(ANN, frames("a", 1, start=1))
    await (await workers.log()).append(ANN, frames("b", 1))
    await received([staying], 3)
    assert leaving.peer.seqs == [1]
    assert staying.peer.seqs == [1, 2, 3]

    await workers.detach(staying)
    assert hub.tabs_of(ANN) == ()
    await until_subscribers(workers, 0)

    # A tab that comes back later is subscribed again and sees the stream go on.
    again = await workers.tab(hub, ANN, staying.attachment.position.epoch, 3)
    assert again.attachment.resumed
    await (await workers.log()).append(ANN, frames("b", 1, start=1))
    await received([again], 1)
    assert again.peer.seqs == [4]


# -- a log made anew -------------------------------------------------------------------


@pytest.mark.parametrize("appender", ["another worker", "this worker"])
async def test_a_log_lost_under_live_tabs_makes_them_resync(
    workers: Workers, appender: str
) -> None:
    # Redis may lose a user's log while the hub's subscription stays up: the keys expire
    # under a tab left idle for a day, or a volatile-* maxmemory policy evicts them. The
    # next append makes a new log whose seqs start again at 1. The tabs must not take
    # those seqs for repeats of what they have (invariant 2): they are told to reconnect
    # and rebuild from a snapshot.
    hub = await workers.hub()
    tab = await workers.tab(hub)
    writer = await workers.log()
    await writer.append(ANN, frames("old", 5))
    await received([tab], 5)

    await workers.state.lose_data()
    if appender == "this worker":
        await hub.publish(ANN, frames("new", 3))
    else:
        await writer.append(ANN, frames("new", 3))

    await until(lambda: tab.peer.close_code is not None, "the tab to be told to resync")
    assert tab.peer.close_code == 1012
    assert tab.peer.seqs == [1, 2, 3, 4, 5]  # nothing of the new log taken for the old

    # A tab that comes back with the old epoch rebuilds; from then on it follows the new log.
    again = await workers.tab(hub, ANN, tab.attachment.position.epoch, 5)
    assert not again.attachment.resumed
    assert again.attachment.position.epoch != tab.attachment.position.epoch
    assert again.attachment.position.last_seq == 3
    await writer.append(ANN, frames("new", 1, start=3))
    await received([again], 1)
    assert again.peer.seqs == [4]
    assert deltas(again.peer) == ["new-3"]


async def test_a_log_lost_before_a_tab_heard_anything_makes_it_resync(
    workers: Workers,
) -> None:
    # The same for a tab that attached to a log with frames and heard nothing since.
    writer = await workers.log()
    await writer.append(ANN, frames("old", 5))
    hub = await workers.hub()
    tab = await workers.tab(hub)
    assert tab.attachment.position.last_seq == 5

    await workers.state.lose_data()
    await writer.append(ANN, frames("new", 2))

    await until(lambda: tab.peer.close_code is not None, "the tab to be told to resync")
    assert tab.peer.close_code == 1012
    assert tab.peer.received == []
