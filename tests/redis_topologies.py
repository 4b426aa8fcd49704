"""Redis deployments of a test's own: a Redis Cluster, and a primary watched by Sentinels.

Each is real ``redis-server`` processes on free loopback ports, with their files in the test's
temporary folder, stopped by ``stop()``. They are for tests marked ``slow`` (and the benchmark):
starting a cluster takes a second or two of the shared machine.

``RedisClusterProcesses(tmp, masters=3, replicas=0)`` starts the nodes with
``--cluster-enabled yes`` and joins them with ``redis-cli --cluster create``; with replicas,
each master gets that many, and ``kill_master_of(key)`` SIGKILLs the master owning a key's slot
so that its replica takes over. ``RedisSentinelProcesses(tmp)`` starts a primary, a replica and
three Sentinels, and ``kill_primary()`` SIGKILLs the primary so that the Sentinels promote the
replica.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.server.harness import _Process, base_env

STARTUP_TIMEOUT_S = 30.0
# How long a node may be unreachable before the cluster fails it over: short, so that a test's
# failover takes a few seconds, not the default fifteen.
CLUSTER_NODE_TIMEOUT_MS = 1000
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_SERVICE = "parley-primary"


# A cluster node also listens on its port + 10000 (the cluster bus), so ports come from a range
# where both fit, and both must be free.
_PORT_RANGE = (20_000, 55_000)
_BUS_OFFSET = 10_000


def free_node_port() -> int:
    """A loopback port that is free, and whose cluster-bus port is free too."""
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + _BUS_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _redis_cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _wait_pong(port: int, process: _Process) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return
        if process.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"redis on port {port} did not come up:\n{process.output()[-2000:]}")


class _Node:
    """One redis-server process (a cluster node, a primary, a replica or a Sentinel)."""

    def __init__(self, tmp: Path, args: list[str], *, config: str | None = None) -> None:
        self.port = free_node_port()
        self.dir = tmp / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        command = ["redis-server"]
        if config is not None:  # Sentinels rewrite their config file, so they need one
            path = self.dir / "redis.conf"
            path.write_text(config.replace("{port}", str(self.port)))
            command.append(str(path))
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        command += ["--daemonize", "no", *args]
        self.process = _Process(command, base_env(), self.dir / "redis.log")
        _wait_pong(self.port, self.process)

    @property
    def alive(self) -> bool:
        return self.process.proc.poll() is None

    def cli(self, *args: str) -> str:
        return _redis_cli(self.port, *args)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.stop(sig)


_DATA_ARGS = ["--save", "", "--appendonly", "no"]


class RedisClusterProcesses:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each, on loopback."""

    def __init__(self, tmp: Path, *, masters: int = 3, replicas: int = 0) -> None:
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(CLUSTER_NODE_TIMEOUT_MS),
            # A replica may take over however long it was cut off: the test decides when.
            "--cluster-replica-validity-factor",
            "0",
            *_DATA_ARGS,
        ]
        self.nodes: list[_Node] = []
        try:
            for _ in range(masters * (1 + replicas)):
                self.nodes.append(_Node(tmp, args))
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            create = ["--cluster", "create", *addresses, "--cluster-replicas", str(replicas)]
            output = _redis_cli(self.nodes[0].port, *create, "--cluster-yes", timeout=60)
            if "[OK] All 16384 slots covered" not in output:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
            self.wait_healthy(masters=masters, replicas=replicas)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """A URL naming one node: clients learn the rest from it."""
        node = next(node for node in self.nodes if node.alive)
        return f"redis://127.0.0.1:{node.port}/0"

    def wait_healthy(
        self, *, masters: int, replicas: int | None = 0, timeout: float = STARTUP_TIMEOUT_S
    ) -> None:
        """Until every live node says the cluster is ok, with ``masters`` live masters each
        having ``replicas`` live replicas (any number, for None)."""
        deadline = time.monotonic() + timeout
        while True:
            live = [node for node in self.nodes if node.alive]
            states = [node.cli("cluster", "info") for node in live]
            layout = self._layout(live[0])
            ok = all("cluster_state:ok" in state for state in states)
            counts = {len(found) for found in layout.values()}
            if ok and len(layout) == masters and (replicas is None or counts == {replicas}):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not healthy: {states!r} {layout!r}")
            time.sleep(0.1)

    def master_of(self, key: str) -> _Node:
        """The live master that owns ``key``'s slot, as the first live node sees it."""
        live = [node for node in self.nodes if node.alive]
        slot = int(live[0].cli("cluster", "keyslot", key).strip())
        for line in live[0].cli("cluster", "nodes").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for span in fields[8:]:
                if span.startswith("["):  # a slot being migrated
                    continue
                low, _, high = span.partition("-")
                if int(low) <= slot <= int(high or low):
                    return next(node for node in self.nodes if node.port == port)
        raise RuntimeError(f"no master owns slot {slot}")

    def move_slot_of(self, key: str) -> _Node:
        """Migrate ``key``'s slot, with its keys, to another live master (as resharding does,
        one slot); the new owner."""
        source = self.master_of(key)
        slot = source.cli("cluster", "keyslot", key).strip()
        ids = {node.port: node.cli("cluster", "myid").strip() for node in self.nodes if node.alive}
        masters = [node for node in self.nodes if node.alive and node is not source]
        target = next(node for node in masters if "role:master" in node.cli("info", "replication"))
        target.cli("cluster", "setslot", slot, "importing", ids[source.port])
        source.cli("cluster", "setslot", slot, "migrating", ids[target.port])
        while keys := source.cli("cluster", "getkeysinslot", slot, "100").split():
            reply = source.cli(
                "migrate", "127.0.0.1", str(target.port), "", "0", "5000", "keys", *keys
            )
            if "OK" not in reply and "NOKEY" not in reply:
                raise RuntimeError(f"MIGRATE failed: {reply}")
        for node in self.nodes:
            if node.alive:
                node.cli("cluster", "setslot", slot, "node", ids[target.port])
        return target

    def kill_master_of(self, key: str) -> _Node:
        """SIGKILL the master owning ``key``'s slot (its replica will take over); the node."""
        master = self.master_of(key)
        master.stop(signal.SIGKILL)
        return master

    def _layout(self, node: _Node) -> dict[str, list[str]]:
        """Live master id -> its live replicas' ids, as ``node`` sees them."""
        masters: dict[str, list[str]] = {}
        replicas: list[tuple[str, str]] = []
        for line in node.cli("cluster", "nodes").splitlines():
            fields = line.split()
            if len(fields) < 8 or "fail" in fields[2] or "noaddr" in fields[2]:
                continue
            if "master" in fields[2] and len(fields) > 8:
                masters[fields[0]] = []
            elif "slave" in fields[2]:
                replicas.append((fields[0], fields[3]))
        for replica, master in replicas:
            if master in masters:
                masters[master].append(replica)
        return masters

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinelProcesses:
    """A primary, one replica and three Sentinels watching them as ``SENTINEL_SERVICE``."""

    def __init__(self, tmp: Path) -> None:
        self.servers: list[_Node] = []
        self.sentinels: list[_Node] = []
        try:
            primary = _Node(tmp, _DATA_ARGS)
            self.servers.append(primary)
            replica_args = [*_DATA_ARGS, "--replicaof", "127.0.0.1", str(primary.port)]
            self.servers.append(_Node(tmp, replica_args))
            config = (
                "port {port}\n"
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {SENTINEL_DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            )
            for _ in range(3):
                self.sentinels.append(_Node(tmp, ["--sentinel"], config=config))
            self._wait_replica_linked()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}/0"

    def primary_port(self) -> int:
        """The primary's port as the first Sentinel names it."""
        reply = self.sentinels[0].cli("sentinel", "get-master-addr-by-name", SENTINEL_SERVICE)
        return int(reply.split()[1])

    def kill_primary(self) -> int:
        """SIGKILL the primary; its port."""
        port = self.primary_port()
        node = next(node for node in self.servers if node.port == port)
        node.stop(signal.SIGKILL)
        return port

    def wait_new_primary(self, old_port: int, timeout: float = STARTUP_TIMEOUT_S) -> int:
        """Until the Sentinels name a primary other than ``old_port``; its port."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(IndexError, ValueError):
                port = self.primary_port()
                if port != old_port:
                    return port
            if time.monotonic() > deadline:
                raise RuntimeError("the Sentinels did not promote the replica")
            time.sleep(0.1)

    def _wait_replica_linked(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "master_link_status:up" not in self.servers[1].cli("info", "replication"):
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not link to the primary")
            time.sleep(0.1)
        # The Sentinels must have found the replica too, or they have nothing to promote.
        while True:
            replicas = self.sentinels[0].cli("sentinel", "replicas", SENTINEL_SERVICE)
            if str(self.servers[1].port) in replicas:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the Sentinels did not find the replica")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers]:
            node.stop()
