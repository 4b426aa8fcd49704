"""Run the stream benchmark and print its figures beside the bare relay's.

    .venv/bin/python -m bench.run [--quick] [--out results.json]

Everything runs on this machine, as separate processes: a redis-server of its own (no
persistence), the timestamping model (bench/model.py), the bare relay (bench/relay.py) and
Parley workers (``parley serve``, compression off, limits off), all reading the same model, and
this process as the client of both. PostgreSQL at 127.0.0.1:5432 holds Parley's database when
it answers (a database made for the run and dropped after), else a SQLite file.

The figures (docs/benchmarks.md explains them):

* RSS per idle connection: worker RSS before and after opening N authenticated idle sockets;
* model-to-tab latency per token at a steady rate: the relay; Parley with the tab on the worker
  running the turn; Parley with the tab on another worker — for the default delta batching and
  for a short batching window;
* throughput at saturation: tabs asking back to back while the model streams flat out;
* server CPU per token: with each server pinned to one core and everything else (model, Redis,
  this client) to the other, the server's CPU time over a saturated window divided by the
  tokens it delivered — for the raw relay (the floor), the typed-SDK relay, Parley on Redis,
  Parley embedded, Parley with one frame per token, and one user with one tab next to one
  user with five.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt

from bench import load

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
STARTUP_S = 60.0
# With two cores or more, the CPU section runs servers on the first and everything else on the
# second, so the CPU time a server is charged is its own and not the model's or the client's.
# The other sections (and bench/cluster.py) run unpinned, as they always have.
SERVER_CPU = 0
OTHERS_CPU = 1
PINNED = (os.cpu_count() or 1) >= 2
ALL_CPUS = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Parley's limits guard a shared service against abuse; a benchmark is the abuse.
LIMITS_OFF = {
    "PARLEY_USER_MESSAGES_PER_MINUTE": "0",
    "PARLEY_TENANT_MESSAGES_PER_MINUTE": "0",
    "PARLEY_MAX_CONNECTIONS_PER_USER": "0",
    "PARLEY_MAX_CONNECTIONS_PER_IP": "0",
    "PARLEY_FRAMES_PER_SECOND": "0",
    "PARLEY_BUDGET_CONVERSATION_TOKENS": "0",
    "PARLEY_BUDGET_CONVERSATION_USD": "0",
    "PARLEY_BUDGET_USER_DAILY_TOKENS": "0",
    "PARLEY_BUDGET_USER_DAILY_USD": "0",
    "PARLEY_BUDGET_TENANT_DAILY_TOKENS": "0",
    "PARLEY_BUDGET_TENANT_DAILY_USD": "0",
}


ONE_FRAME_PER_TOKEN = {"PARLEY_DELTA_FLUSH_CHARS": "1", "PARLEY_DELTA_MAX_WAITING_CHARS": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token_for(user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "tenant": "bench", "roles": ["user"], "iat": now, "exp": now + 7200}
    return jwt.encode(claims, SECRET, algorithm="HS256")


class Process:
    """A child process, its output in a log file, stopped with SIGTERM (SIGKILL if stuck)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], logs: Path, *, server: bool = False
    ) -> None:
        self.name = name
        self.server = server  # a server under measurement, not the model or Redis
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=out)

    def cpu_s(self) -> float:
        """User + system CPU seconds the process has used so far (from /proc/<pid>/stat)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        # Fields after the command name (which is in parentheses and may hold spaces).
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def pin(self, cpus: str) -> None:
        """Run every thread of the process on ``cpus`` (taskset's list syntax) from now on."""
        subprocess.run(
            ["taskset", "--all-tasks", "--pid", "--cpu-list", cpus, str(self.proc.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_until_up(process: Process, probe: Any) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not come up:\n{process.log.read_text()[-3000:]}")


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1).status_code < 500


def redis_ok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "DATABASE_URL", "REDIS_URL", "PORT"):
        env.pop(name, None)
    env.setdefault("TIKTOKEN_CACHE_DIR", str(REPO.parent / "shared" / "tiktoken"))
    env["PYTHONPATH"] = str(REPO)
    return env


@contextlib.contextmanager
def database(tmp: Path) -> Iterator[str]:
    """A PostgreSQL database for the run when one answers, else a SQLite file."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        yield f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        return
    import asyncpg

    name = f"parley_bench_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Stack:
    """The processes of one run."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.processes: list[Process] = []
        self.redis_port = free_port()
        redis_args = ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        redis = self.spawn("redis", ["redis-server", *redis_args, "--dir", str(tmp)])
        wait_until_up(redis, lambda: redis_ok(self.redis_port))
        self.model_port = free_port()
        model = self.spawn("model", self.uvicorn("bench.model:app", self.model_port))
        wait_until_up(model, lambda: http_ok(f"http://127.0.0.1:{self.model_port}/v1/models"))
        self.model_url = f"http://127.0.0.1:{self.model_port}/v1"
        migrate = subprocess.run(
            [sys.executable, "-m", "server.cli", "migrate"],
            cwd=REPO,
            env={**base_env(), "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stderr[-3000:]}")

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, *, server: bool = False
    ) -> Process:
        process = Process(name, args, env or base_env(), self.tmp, server=server)
        self.processes.append(process)
        return process

    @staticmethod
    def uvicorn(app: str, port: int) -> list[str]:
        quiet = ["--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "0"]
        return [sys.executable, "-m", "uvicorn", app, "--port", str(port), *quiet]

    def relay(self, reader: str = "typed") -> tuple[Process, str]:
        port = free_port()
        env = {**base_env(), "BENCH_MODEL_URL": self.model_url, "BENCH_RELAY_READER": reader}
        name = f"relay-{reader}"
        process = self.spawn(name, self.uvicorn("bench.relay:app", port), env, server=True)
        wait_until_up(process, lambda: self._port_open(port))
        return process, f"ws://127.0.0.1:{port}/ws"

    def parley(self, name: str, *, embedded: bool = False, **settings: str) -> tuple[Process, str]:
        """A Parley worker on the run's Redis and database, or embedded: its in-process store
        and a SQLite file of its own, as a first run on one machine has them."""
        port = free_port()
        env = {
            **base_env(),
            **LIMITS_OFF,
            "PORT": str(port),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "OPENAI_BASE_URL": self.model_url,
            "OPENAI_API_KEY": "bench",
            "PARLEY_JWT_SECRET": SECRET,
            "PARLEY_TOOLS": "",
            "PARLEY_LOG_LEVEL": "WARNING",
            **settings,
        }
        if embedded:
            del env["REDIS_URL"]
            env["DATABASE_URL"] = f"sqlite+aiosqlite:///{self.tmp / (name + '.db')}"
        args = [sys.executable, "-m", "server.cli", "serve"]
        process = self.spawn(name, args, env, server=True)
        wait_until_up(process, lambda: http_ok(f"http://127.0.0.1:{port}/healthz"))
        return process, f"ws://127.0.0.1:{port}/ws"

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    def stop(self, process: Process) -> None:
        process.stop()
        self.processes.remove(process)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Servers on one core, the model, Redis and this client on the other, meanwhile."""
        if not PINNED:
            yield
            return
        for process in self.processes:
            process.pin(str(SERVER_CPU if process.server else OTHERS_CPU))
        os.sched_setaffinity(0, {OTHERS_CPU})
        try:
            yield
        finally:
            for process in self.processes:
                if process.proc.poll() is None:
                    process.pin(ALL_CPUS)
            os.sched_setaffinity(0, {int(cpu) for cpu in ALL_CPUS.split(",")})

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


# -- the figures -----------------------------------------------------------------------------


async def idle_rss(process: Process, url: str, count: int, prefix: str) -> dict[str, Any]:
    warm = await load.hold_idle(url, token_for, 50, prefix=f"{prefix}-warm")
    await load.close_all(warm)
    await asyncio.sleep(1)
    before = process.rss_kb()
    tabs = await load.hold_idle(url, token_for, count, prefix=prefix)
    await asyncio.sleep(2)
    after = process.rss_kb()
    await load.close_all(tabs)
    return {
        "connections": count,
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "kb_per_connection": round((after - before) / count, 1),
    }


SECTIONS = ("idle", "latency", "throughput", "cpu")


async def measure(stack: Stack, quick: bool, sections: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rounds = 1 if quick else 3
    relay, relay_url = stack.relay("typed")
    # Every variant runs side by side, so each round measures them all under the same load
    # (the machine is shared: what else runs on it shows in every figure of a round alike).
    default_a, default_a_url = stack.parley("parley-a")
    # One frame per token, as the relays send them: frames per second on equal terms. Both
    # bounds at one character: each piece is logged, with the stream waiting, on its own.
    _, per_token_url = stack.parley("parley-1char", **ONE_FRAME_PER_TOKEN)
    if "idle" in sections:
        idle_count = 300 if quick else 1000
        print("idle connections ...", file=sys.stderr)
        results["idle"] = {
            "relay": await idle_rss(relay, relay_url, idle_count, "relay"),
            "parley": await idle_rss(default_a, default_a_url, idle_count, "parley"),
        }
    if "latency" in sections or "throughput" in sections:
        _, default_b_url = stack.parley("parley-b")
        # The default window next to a ten times wider one: the dial between latency and the
        # number of Redis appends a streaming turn costs.
        window = {"PARLEY_DELTA_FLUSH_MS": "50"}
        _, wide_a_url = stack.parley("parley-a-50ms", **window)
        _, wide_b_url = stack.parley("parley-b-50ms", **window)
        paths = {
            "relay": (relay_url, relay_url),
            "parley_default_same_worker": (default_a_url, default_a_url),
            "parley_default_cross_worker": (default_a_url, default_b_url),
            "parley_50ms_same_worker": (wide_a_url, wide_a_url),
            "parley_50ms_cross_worker": (wide_a_url, wide_b_url),
        }
        targets = {
            "relay": relay_url,
            "parley_default": default_a_url,
            "parley_50ms": wide_a_url,
            "parley_frame_per_token": per_token_url,
        }
        if "latency" in sections:
            results["latency"] = await _latency(paths, rounds, quick)
        if "throughput" in sections:
            results["throughput"] = await _throughput(targets, rounds, quick)
    if "cpu" in sections:
        raw, raw_url = stack.relay("raw")
        embedded, embedded_url = stack.parley("parley-embedded", embedded=True)
        per_token = next(p for p in stack.processes if p.name == "parley-1char")
        servers = {
            "relay_raw": (raw, raw_url),
            "relay_typed": (relay, relay_url),
            "parley_redis": (default_a, default_a_url),
            "parley_embedded": (embedded, embedded_url),
            "parley_frame_per_token": (per_token, per_token_url),
        }
        with stack.pinned():
            results["cpu"] = await _cpu(servers, rounds, quick)
    return results


async def _latency(paths: dict[str, tuple[str, str]], rounds: int, quick: bool) -> dict[str, Any]:
    turns, tokens, rate = (3, 60, 50.0) if quick else (4, 100, 50.0)
    delays = {name: load.LatencyResult() for name in paths}
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds}: latency ...", file=sys.stderr)
        for name, (send_url, receive_url) in paths.items():
            token = token_for(f"bench-latency-{name}")
            delays[name].merge(
                await load.latency(
                    send_url, receive_url, token, turns=turns, tokens=tokens, rate=rate
                )
            )
    return {
        "setup": {"rounds": rounds, "turns": turns, "tokens": tokens, "rate_per_s": rate},
        **{name: result.summary() for name, result in delays.items()},
    }


async def _throughput(targets: dict[str, str], rounds: int, quick: bool) -> dict[str, Any]:
    streams, seconds, turn_tokens = (6, 5.0, 400) if quick else (8, 6.0, 400)
    rates: dict[str, list[load.Throughput]] = {name: [] for name in targets}
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds}: throughput ...", file=sys.stderr)
        for name, url in targets.items():
            rates[name].append(
                await load.throughput(
                    url, token_for, streams=streams, tokens=turn_tokens, seconds=seconds
                )
            )
    return {
        "setup": {
            "rounds": rounds,
            "streams": streams,
            "tokens_per_turn": turn_tokens,
            "seconds": seconds,
        },
        **{name: load.median_throughput(runs) for name, runs in rates.items()},
    }


async def _cpu(servers: dict[str, tuple[Process, str]], rounds: int, quick: bool) -> dict[str, Any]:
    """Server CPU per token at saturation, each configuration in every round."""
    streams, seconds, turn_tokens = (10, 3.0, 2000) if quick else (10, 5.0, 2000)
    # name: (server, url, users, tabs per user)
    runs: dict[str, tuple[Process, str, int, int]] = {
        name: (process, url, streams, 1) for name, (process, url) in servers.items()
    }
    # Fan-out: one user streaming, read by one tab, then by five (Parley on Redis).
    redis_process, redis_url = servers["parley_redis"]
    runs["parley_one_user_1_tab"] = (redis_process, redis_url, 1, 1)
    runs["parley_one_user_5_tabs"] = (redis_process, redis_url, 1, 5)
    results: dict[str, list[load.Throughput]] = {name: [] for name in runs}
    failures: dict[str, list[str]] = {}
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds}: cpu per token ...", file=sys.stderr)
        for name, (process, url, users, tabs) in runs.items():
            try:
                measured = await load.throughput(
                    url,
                    token_for,
                    streams=users,
                    tokens=turn_tokens,
                    seconds=seconds,
                    tabs_per_user=tabs,
                    prefix=f"bench-cpu-{name}-{round_number}-",
                    server_cpu=process.cpu_s,
                )
            except Exception as exc:  # one stuck turn must not lose the whole run
                print(f"  {name}: {exc!r}", file=sys.stderr)
                failures.setdefault(name, []).append(repr(exc))
                continue
            results[name].append(measured)
    floor = statistics.median(run.summary()["cpu_us_per_token"] for run in results["relay_raw"])
    figures = {name: load.median_cpu(measured) for name, measured in results.items() if measured}
    for name, figure in figures.items():
        figure["vs_raw_relay"] = round(figure["cpu_us_per_token"] / floor, 2)
        if name in failures:
            figure["failed_rounds"] = failures[name]
    return {
        "setup": {
            "rounds": rounds,
            "users": streams,
            "tokens_per_turn": turn_tokens,
            "seconds": seconds,
            "pinned": PINNED,
        },
        **figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller, shorter runs")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)",
    )
    args = parser.parse_args()
    sections = set(args.only.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"unknown section in --only: {args.only}")
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp, database(Path(tmp)) as url:
        stack = Stack(Path(tmp), url)
        try:
            results = asyncio.run(measure(stack, args.quick, sections))
        finally:
            stack.close()
    report(results, args.out)
    return 0


def report(results: dict[str, Any], out: str | None) -> None:
    """Print the results as JSON, with the machine they were measured on, and write them to
    ``out`` too when given."""
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
