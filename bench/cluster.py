"""The frame stream on a three-master Redis Cluster beside a single Redis, in one run.

    .venv/bin/python -m bench.cluster [--rounds N] [--out results.json]

Starts what ``bench.run`` starts (the timestamping model, a single redis-server, a PostgreSQL
database or a SQLite file) plus a three-master Redis Cluster on loopback (the processes of
``tests/redis_topologies.py``), and two Parley workers on each Redis. Both pairs are measured
in turns, round after round, by the same client against the same model, while every worker
also holds idle tabs of other users (so its subscriptions span every master):

* model-to-tab latency per token (p50, p99) at a steady 50 tokens/s, with the tab on the
  worker running the turn and on the other worker (every frame crosses Redis pub/sub: plain
  ``PUBLISH`` on the single Redis, sharded ``SPUBLISH`` on the cluster);
* frames and tokens per second at saturation, tabs (each its own user, so spread over the
  cluster's slots) asking back to back while the model streams flat out.

docs/benchmarks.md has the numbers and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import load
from bench.run import Stack, database, report, token_for
from tests.redis_topologies import RedisClusterProcesses

# A short run by default: the machine it was written on is shared, and the point is the
# comparison within one run, not the absolute figures.
DEFAULT_ROUNDS = 2
TURNS, TOKENS, RATE = 3, 60, 50.0
STREAMS, SECONDS, TURN_TOKENS = 6, 5.0, 400
IDLE_USERS = 12  # per worker


async def measure(stack: Stack, cluster_url: str, rounds: int) -> dict[str, Any]:
    single = (stack.parley("single-a")[1], stack.parley("single-b")[1])
    cluster = (
        stack.parley("cluster-a", REDIS_URL=cluster_url)[1],
        stack.parley("cluster-b", REDIS_URL=cluster_url)[1],
    )
    # Idle tabs of other users on every worker, so that each worker's subscriptions span
    # every master of the cluster, as they do in a deployment with many users (a worker
    # listening to one node only would read it without sharing its wait with the others).
    idle = [
        await load.hold_idle(url, token_for, IDLE_USERS, prefix=f"bench-idle-{index}")
        for index, url in enumerate([*single, *cluster])
    ]
    paths = {
        "single_same_worker": (single[0], single[0]),
        "single_cross_worker": (single[0], single[1]),
        "cluster_same_worker": (cluster[0], cluster[0]),
        "cluster_cross_worker": (cluster[0], cluster[1]),
    }
    delays = {name: load.LatencyResult() for name in paths}
    targets = {"single": single[0], "cluster": cluster[0]}
    rates: dict[str, list[load.Throughput]] = {name: [] for name in targets}
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds}: latency ...", file=sys.stderr)
        for name, (send_url, receive_url) in paths.items():
            token = token_for(f"bench-cluster-latency-{name}")
            delays[name].merge(
                await load.latency(
                    send_url, receive_url, token, turns=TURNS, tokens=TOKENS, rate=RATE
                )
            )
        print(f"round {round_number + 1}/{rounds}: throughput ...", file=sys.stderr)
        for name, url in targets.items():
            rates[name].append(
                await load.throughput(
                    url, token_for, streams=STREAMS, tokens=TURN_TOKENS, seconds=SECONDS
                )
            )
    for tabs in idle:
        await load.close_all(tabs)
    return {
        "latency": {
            "setup": {"rounds": rounds, "turns": TURNS, "tokens": TOKENS, "rate_per_s": RATE},
            **{name: result.summary() for name, result in delays.items()},
        },
        "throughput": {
            "setup": {
                "rounds": rounds,
                "streams": STREAMS,
                "tokens_per_turn": TURN_TOKENS,
                "seconds": SECONDS,
            },
            **{name: load.median_throughput(runs) for name, runs in rates.items()},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="measuring rounds")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp, database(Path(tmp)) as url:
        stack = Stack(Path(tmp), url)
        nodes = None
        try:
            nodes = RedisClusterProcesses(Path(tmp), masters=3)
            results = asyncio.run(measure(stack, nodes.url, args.rounds))
        finally:
            stack.close()
            if nodes is not None:
                nodes.stop()
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
