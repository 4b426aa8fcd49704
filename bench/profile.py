"""Where a server's time goes per streamed token: py-spy samples a worker under saturation.

    .venv/bin/python -m bench.profile [--server parley-redis|parley-embedded|relay-raw]
                                      [--seconds 8] [--top 25] [--out stacks.txt]

Starts the same stack as ``bench.run`` (pinned the same way), drives the chosen server with
10 users asking for 2,000 tokens each back to back, and samples it with py-spy
(``pip install py-spy``) meanwhile. Prints the functions that hold the most samples, by
their own time and with what they call, as shares of all samples; ``--out`` keeps the
collapsed stacks for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import load
from bench.run import ONE_FRAME_PER_TOKEN, Stack, database, token_for

SERVERS = ("parley-redis", "parley-embedded", "parley-1char", "relay-raw")


def summarise(collapsed: str, top: int) -> str:
    """Self and inclusive shares of each function in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "with callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/module.py:line)" -> "function (module.py)", lines merged.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    marker = "site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "/wt-" in path or "/work/" in path:
        path = "/".join(path.split("/")[-2:])
    return f"{name} ({path})"


async def drive(url: str, seconds: float) -> load.Throughput:
    return await load.throughput(url, token_for, streams=10, tokens=2000, seconds=seconds)


def profiled(pid: int, stacks: Path, seconds: float, url: str) -> load.Throughput:
    """Drive the server at ``url`` while py-spy samples process ``pid`` into ``stacks``."""
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(stacks),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    result = asyncio.run(drive(url, seconds + 1))
    _, errors = spy.communicate(timeout=60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode()[-2000:]}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default="parley-redis")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-profile-") as tmp, database(Path(tmp)) as db:
        stack = Stack(Path(tmp), db)
        try:
            if args.server == "relay-raw":
                process, url = stack.relay("raw")
            elif args.server == "parley-1char":
                process, url = stack.parley(args.server, **ONE_FRAME_PER_TOKEN)
            else:
                embedded = args.server == "parley-embedded"
                process, url = stack.parley(args.server, embedded=embedded)
            stacks = Path(tmp) / "stacks.txt"
            with stack.pinned():
                asyncio.run(drive(url, 2.0))  # warm up: first turns, caches, connections
                result = profiled(process.proc.pid, stacks, args.seconds, url)
        finally:
            stack.close()
        collapsed = stacks.read_text()
    if args.out:
        Path(args.out).write_text(collapsed)
    print(f"{args.server}: {result.summary()}")
    print(summarise(collapsed, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
