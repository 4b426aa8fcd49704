"""Real parts for server tests: Parley and the scripted model on loopback ports, and WebSocket
tabs speaking the wire protocol.

Nothing here replaces Parley's code. A ``ParleyServer`` is one Parley worker on a free port:
by default served in the test process (``tests/server/inprocess.py``: the real app under real
uvicorn, in a thread), or, with ``process=True``, ``python -m server.cli serve`` in a
subprocess, for what needs a process of its own: several workers, SIGKILL and SIGTERM. Tests
that start processes are marked ``slow`` and run in the full suite only (see
``tests/server/conftest.py``). A ``DevModel`` is the scripted model's app under uvicorn, in
process too unless asked otherwise, and a ``Tab`` is a real ``websockets`` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from tests.server.inprocess import InProcessApp, InProcessWorker

REPO = Path(__file__).resolve().parents[2]
TEST_JWT_SECRET = "test-secret-for-parley-tests-only-0123456789"
STARTUP_TIMEOUT_S = 30.0
FRAME_TIMEOUT_S = 20.0

# Whether the running test may start server processes: only tests marked ``slow`` may, so the
# fast tier (``-m "not slow"``) never waits for an interpreter to start (set by conftest.py).
processes_allowed = True


def _check_processes_allowed(what: str) -> None:
    if not processes_allowed:
        raise RuntimeError(f"{what} starts a process: mark the test @pytest.mark.slow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_token(
    user: str = "alice",
    tenant: str = "acme",
    roles: Iterable[str] = ("admin",),
    *,
    ttl_s: int = 3600,
    secret: str = TEST_JWT_SECRET,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": user,
        "tenant": tenant,
        "roles": list(roles),
        "iat": now,
        "exp": now + ttl_s,
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


class _Process:
    """A child process with its output kept in a file for post-mortems."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _wait_http(url: str, proc: _Process) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"process exited during startup:\n{proc.output()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{proc.output()[-4000:]}")


def base_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "DATABASE_URL", "REDIS_URL", "PORT"):
        env.pop(name, None)
    env.setdefault("TIKTOKEN_CACHE_DIR", str(REPO.parent / "shared" / "tiktoken"))
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class DevModel:
    """The scripted model on its own port, with its control endpoints: served in the test
    process, or ``parley devllm`` as a process with ``process=True``."""

    def __init__(self, tmp: Path, *, token_rate: float = 0.0, process: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: _Process | None = None
        self._in_process: InProcessApp | None = None
        # One client for the control calls: a new one each time costs a TLS context.
        self._http = httpx.Client(base_url=self.url, timeout=5)
        if process:
            _check_processes_allowed("DevModel(process=True)")
            args = [sys.executable, "-m", "server.cli", "devllm", "--port", str(self.port)]
            args += ["--token-rate", str(token_rate)]
            self._process = _Process(args, base_env(), tmp / f"devllm-{self.port}.log")
            _wait_http(f"{self.url}/v1/models", self._process)
        else:
            from server.devllm.app import create_devllm_app

            app = create_devllm_app(token_rate=token_rate)
            self._in_process = InProcessApp(app, self.port, name=f"devllm-{self.port}")
            self._in_process.start()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self._http.post("/_dev/faults", json=faults).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete("/_dev/faults").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        reply = self._http.get("/_dev/requests")
        reply.raise_for_status()
        body = reply.json()
        return list(body["requests"] if isinstance(body, dict) else body)

    def clear_requests(self) -> None:
        self._http.delete("/_dev/requests").raise_for_status()

    def stop(self) -> None:
        self._http.close()
        if self._process is not None:
            self._process.stop()
        if self._in_process is not None:
            self._in_process.stop()


@dataclass
class ServerConfig:
    database_url: str
    redis_url: str | None = None
    redis_prefix: str = "parley:"
    model_url: str | None = None
    api_keys: str = "test-key"
    tools: str | None = None  # PARLEY_TOOLS; None keeps the default (the demo ERP pack)
    extra: dict[str, str] = field(default_factory=dict)
    serve_args: list[str] = field(default_factory=list)  # after `parley serve`


class ParleyServer:
    """One Parley worker on a free loopback port: in the test process by default, or
    ``parley serve`` as a process of its own with ``process=True``."""

    def __init__(
        self, tmp: Path, config: ServerConfig, *, port: int | None = None, process: bool = False
    ) -> None:
        self.config = config
        self.tmp = tmp
        self.process = process or bool(config.serve_args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        # Tests of one session may share a database: each server gets users of its own.
        self.user = f"alice-{secrets.token_hex(3)}"
        self._process: _Process | None = None
        self._worker: InProcessWorker | None = None
        self._last_output = ""
        self._shared = False
        self.start()

    def for_new_user(self) -> ParleyServer:
        """This server, as a test that shares it sees it: with a user of that test's own.

        Only the server's owner may stop or restart it."""
        view = copy.copy(self)
        view.user = f"alice-{secrets.token_hex(3)}"
        view._shared = True
        return view

    def env(self) -> dict[str, str]:
        config = self.config
        env = base_env()
        env.update(
            {
                "PORT": str(self.port),
                "DATABASE_URL": config.database_url,
                "PARLEY_JWT_SECRET": TEST_JWT_SECRET,
                "PARLEY_DEV": "1",
                "PARLEY_DEV_SECRET_FILE": str(self.tmp / "dev-secret"),
                "PARLEY_LOG_FORMAT": "json",
                "PARLEY_REDIS_PREFIX": config.redis_prefix,
                "PARLEY_SWEEP_INTERVAL_S": "0.5",
                # The demo ERP pack stays in-process, its books in Parley's database where the
                # tests read them; a test of `scripts/serve`'s own setup sets "host".
                "PARLEY_DEMO_ERP": "pack",
            }
        )
        if config.redis_url:
            env["REDIS_URL"] = config.redis_url
        if config.tools is not None:
            env["PARLEY_TOOLS"] = config.tools
        if config.model_url:
            env["OPENAI_BASE_URL"] = config.model_url
            env["OPENAI_API_KEY"] = config.api_keys
        env.update(config.extra)
        return env

    def start(self) -> None:
        if self.process:
            _check_processes_allowed("ParleyServer(process=True)")
            args = [sys.executable, "-m", "server.cli", "serve", *self.config.serve_args]
            log = self.tmp / f"parley-{self.port}.log"
            self._process = _Process(args, self.env(), log)
            _wait_http(f"{self.url}/healthz", self._process)
            return
        # Settings read from exactly the variables the process would be given.
        self._worker = InProcessWorker(self.env(), name=f"parley-{self.port}")
        try:
            self._worker.start()
        except BaseException:
            self._worker = None
            raise

    def _needs_process(self, what: str) -> _Process:
        if not self.process:
            raise RuntimeError(f"{what} needs a server process: ParleyServer(..., process=True)")
        assert self._process is not None, "the server is not running"
        return self._process

    @property
    def pid(self) -> int:
        return self._needs_process("pid").proc.pid

    def output(self) -> str:
        """Everything the server logged (since it was made, across restarts in process)."""
        if self._process is not None:
            return self._process.output()
        if self._worker is not None:
            return self._last_output + self._worker.output()
        return self._last_output

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the server (SIGTERM's drain); its exit code."""
        if self._shared:
            raise RuntimeError("a shared server: start one of the test's own to stop it")
        if self._worker is not None:
            if sig != signal.SIGTERM:
                raise RuntimeError(f"signal {sig} needs a server process")
            exit_code = self._worker.stop()
            self._last_output += self._worker.output()
            self._worker = None
            return exit_code
        if self._process is None:
            return None
        code = self._process.stop(sig)
        self._process = None
        return code

    def kill(self) -> None:
        self._needs_process("kill()")
        self.stop(signal.SIGKILL)

    def signal(self, sig: int) -> None:
        """Send ``sig`` and return at once (``wait`` for the exit)."""
        self._needs_process("signal()").proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit on its own; its exit code."""
        process = self._needs_process("wait()")
        code = process.proc.wait(timeout)
        process.stop()
        self._process = None
        return code

    @property
    def running(self) -> bool:
        if self._worker is not None:
            return self._worker.running
        return self._process is not None and self._process.proc.poll() is None

    def restart(self) -> None:
        self.stop()
        self.start()

    def token(self, user: str | None = None, **claims: Any) -> str:
        return make_token(user or self.user, **claims)

    async def tab(self, token: str | None = None, **hello: Any) -> Tab:
        return await Tab.open(self.ws_url, token or self.token(), **hello)


class Tab:
    """One browser tab's socket, speaking protocol v1."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, **options: Any) -> Tab:
        ws = await websockets.connect(url, open_timeout=10, **options)
        return cls(ws)

    @classmethod
    async def open(cls, url: str, token: str, **hello: Any) -> Tab:
        tab = await cls.connect(url)
        await tab.send({"type": "hello", "protocol": 1, "token": token, **hello})
        tab.ready = await tab.expect("ready")
        return tab

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def recv(self, timeout: float = FRAME_TIMEOUT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        self.frames.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = FRAME_TIMEOUT_S) -> dict[str, Any]:
        """The next frame, which must be of type ``kind``."""
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def until(
        self,
        match: Callable[[dict[str, Any]], bool] | str,
        timeout: float = FRAME_TIMEOUT_S,
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first that matches (a type name or a predicate)."""
        test = (lambda frame: frame["type"] == match) if isinstance(match, str) else match
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            seen.append(frame)
            if test(frame):
                return seen

    async def ask(self, text: str, client_msg_id: str, **fields: Any) -> list[dict[str, Any]]:
        """Send a user message and return every frame up to its ``turn_end``."""
        await self.send(
            {"type": "user_message", "client_msg_id": client_msg_id, "text": text, **fields}
        )
        return await self.until("turn_end")

    async def closed(self, timeout: float = FRAME_TIMEOUT_S) -> tuple[int | None, str]:
        """Read until the server closes; the close code and reason."""
        with contextlib.suppress(websockets.ConnectionClosed):
            deadline = time.monotonic() + timeout
            while True:
                await self.recv(max(0.01, deadline - time.monotonic()))
        received = self.ws.protocol.close_rcvd
        if received is None:
            return None, ""
        return received.code, received.reason

    async def close(self) -> None:
        await self.ws.close()


def frames_of(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == kind]


def logged(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames that came through the user's frame log (they carry ``seq``)."""
    return [frame for frame in frames if "seq" in frame]


class RedisProcess:
    """A redis-server of a test's own, on a free port, that the test may stop and restart.

    Without ``appendonly`` it keeps nothing across a restart, like a cache node that lost its
    data; with it every write is fsynced to a file in ``tmp`` first, like a durable node.
    """

    def __init__(self, tmp: Path, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._tmp = tmp / f"redis-{self.port}"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._appendonly = appendonly
        self._process: _Process | None = None
        self.start()

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self._tmp), "--daemonize", "no"]
        if self._appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self._process = _Process(args, base_env(), self._tmp / "redis.log")
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not come up:\n{self._process.output()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self._process is not None:
            self._process.stop(sig)
            self._process = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()
