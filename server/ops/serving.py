"""Running Parley under uvicorn: one worker process, or several sharing one port.

``parley serve --workers N`` binds the port once and starts N worker processes on it, each a
whole Parley worker (its own hub, turn engine and sweeper) with the drain of
:class:`~server.ops.shutdown.DrainingServer`. They share their state through Redis like workers on
different machines, so a user's tabs may land on any of them. uvicorn's own ``--workers``
cannot be used for this: its worker processes run a plain ``uvicorn.Server``, without the drain.

The supervisor keeps the count: a worker that dies is replaced (a worker that keeps dying as it
starts stops the whole server instead of looping). On SIGTERM or SIGINT it passes SIGTERM on
and waits for every worker's drain.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from server.config import Settings
from server.ops.logs import configure_logging
from server.ops.metrics import MULTIPROCESS_ENV

logger = logging.getLogger(__name__)

# A worker that dies this soon after it started counts as failing to start.
STARTUP_GRACE_S = 10.0
# This many failed starts in a row stop the server: the settings or the code are broken.
MAX_FAILED_STARTS = 3
POLL_S = 0.5
# How long the sockets and requests still open after a drain get (see shutdown.py).
AFTER_DRAIN_S = 5


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings, derived from Parley's (docs/deploy.md explains each)."""
    from server.socket.websocket_protocol import DroppableWebSocketProtocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws=DroppableWebSocketProtocol,
        ws_max_size=settings.max_frame_bytes * 4,
        ws_per_message_deflate=settings.ws_compression,
        ws_ping_interval=settings.keepalive_interval_s,
        ws_ping_timeout=settings.keepalive_timeout_s,
        # Turns were drained before uvicorn's own shutdown starts (server/ops/shutdown.py): this
        # only bounds how long the sockets and requests still open may take to finish.
        timeout_graceful_shutdown=AFTER_DRAIN_S,
    )


def run_worker(overrides: dict[str, Any], sockets: list[socket.socket] | None = None) -> None:
    """One Parley worker: on ``sockets`` if given (a supervisor bound them), else it binds."""
    from server.app import create_app
    from server.ops.shutdown import DrainingServer

    settings = Settings.from_env(**overrides)
    app = create_app(settings)
    DrainingServer(uvicorn_config(app, settings), app).run(sockets=sockets)


def run_workers(overrides: dict[str, Any], count: int) -> int:
    """Run ``count`` workers on one port until SIGTERM or SIGINT; the exit code.

    Raises:
        ValueError: the settings cannot run several workers (or are invalid).
    """
    settings = Settings.from_env(**overrides)
    if settings.embedded_state:
        raise ValueError(
            "several workers share their state through Redis: set REDIS_URL, "
            "or run one worker without --workers"
        )
    configure_logging(settings)
    # Done once here, so that workers starting together do not race to migrate and seed.
    asyncio.run(_prepare_storage(settings))
    metrics_dir = _metrics_dir()
    try:
        listener = uvicorn_config(None, settings).bind_socket()
        try:
            return _Supervisor(overrides, count, listener, settings.shutdown_drain_s).run()
        finally:
            listener.close()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            del os.environ[MULTIPROCESS_ENV]


async def _prepare_storage(settings: Settings) -> None:
    from server.assembly import prepare_database
    from server.tools.registry import ToolRegistry
    from storage.db import Database

    db = Database(settings.database_url)
    try:
        tools = ToolRegistry.from_import_paths(settings.tools) if settings.tools else None
        await prepare_database(settings, db, tools)
    finally:
        await db.close()


def _metrics_dir() -> str | None:
    """Give the workers one directory for their metrics, unless the operator chose one.

    Returns the directory made here (to remove at the end), or None.
    """
    if os.environ.get(MULTIPROCESS_ENV):
        return None
    made = tempfile.mkdtemp(prefix="parley-metrics-")
    os.environ[MULTIPROCESS_ENV] = made  # inherited by the worker processes
    return made


@dataclass
class _Supervisor:
    overrides: dict[str, Any]
    count: int
    listener: socket.socket
    drain_s: float
    workers: list[tuple[BaseProcess, float]] = field(default_factory=list)
    stopping: bool = False
    failed_starts: int = 0

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.workers = [self._start() for _ in range(self.count)]
        logger.info("supervisor %d: %d workers started", os.getpid(), self.count)
        code = 0
        while not self.stopping:
            time.sleep(POLL_S)
            if not self._replace_dead():
                code = 1
                break
        self._stop_all()
        logger.info("supervisor %d: all workers stopped", os.getpid())
        return code

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _start(self) -> tuple[BaseProcess, float]:
        # "spawn": a fresh interpreter per worker, so no event loop or connection of this
        # process leaks into it.
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=run_worker, args=(self.overrides, [self.listener]), name="parley worker"
        )
        process.start()
        return process, time.monotonic()

    def _replace_dead(self) -> bool:
        """Start a new worker for each one that exited; False when they keep failing."""
        for index, (process, started) in enumerate(self.workers):
            if process.is_alive() or self.stopping:
                continue
            process.join()
            if time.monotonic() - started < STARTUP_GRACE_S:
                self.failed_starts += 1
                if self.failed_starts >= MAX_FAILED_STARTS:
                    logger.error(
                        "worker %s exited (code %s) while starting, %d times in a row: stopping",
                        process.pid,
                        process.exitcode,
                        self.failed_starts,
                    )
                    return False
            else:
                self.failed_starts = 0
            logger.warning(
                "worker %s exited (code %s); starting another", process.pid, process.exitcode
            )
            self.workers[index] = self._start()
        return True

    def _stop_all(self) -> None:
        for process, _ in self.workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        # Each worker drains its turns, then closes its sockets (shutdown.py).
        deadline = time.monotonic() + self.drain_s + AFTER_DRAIN_S + 10
        for process, _ in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
