"""The tests' MCP server (tests/peers/mcp_server.py) as a process, and what it recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tests.server.harness import STARTUP_TIMEOUT_S, _Process, base_env, free_port


def stdio_command(state: Path) -> list[str]:
    """The argv of the peer over stdio, for a source's ``command``."""
    return [sys.executable, "-m", "tests.peers.mcp_server", "--state", str(state), "stdio"]


def recorded_calls(state: Path) -> list[dict[str, Any]]:
    """Every call the peer with this state folder received, oldest first."""
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def peer_pid(state: Path) -> int:
    return int((state / "pid").read_text())


def add_late_tool(state: Path) -> None:
    """Make the peer add ``late_lookup`` and announce that its tool list changed."""
    os.kill(peer_pid(state), signal.SIGUSR1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


class HttpPeer:
    """The peer over streamable HTTP on a free loopback port (endpoint ``/mcp``)."""

    def __init__(self, tmp: Path, *, port: int | None = None, state: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.state = state or tmp / f"mcp-peer-{self.port}"
        self.state.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp
        self._process: _Process | None = None
        self.start()

    def start(self) -> None:
        args = [sys.executable, "-m", "tests.peers.mcp_server", "--state", str(self.state)]
        args += ["http", "--port", str(self.port)]
        self._process = _Process(args, base_env(), self._tmp / f"mcp-peer-{self.port}.log")
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.proc.poll() is not None:
                raise RuntimeError(f"MCP peer exited:\n{self._process.output()[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"MCP peer did not come up:\n{self._process.output()[-4000:]}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def calls(self) -> list[dict[str, Any]]:
        return recorded_calls(self.state)

    def add_late_tool(self) -> None:
        add_late_tool(self.state)
