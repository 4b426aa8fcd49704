"""Parley and the scripted model served in the test process: real uvicorn on a loopback port,
in a thread of its own with its own event loop.

A test reaches an in-process server exactly as it reaches a ``parley serve`` process: through
real ``websockets`` and ``httpx`` clients on a free port. What differs is only how the worker
is started: ``server.app.create_app`` with settings read from the same variables the process
would get, served by the same ``DrainingServer`` and uvicorn configuration as ``parley serve``
(``server.serving.uvicorn_config``), without paying for a new interpreter each time.

uvicorn installs no signal handlers outside the main thread, so stopping is done the way its
signal handler does it (``should_exit``), which runs the same drain as SIGTERM.

Several servers may live in one process, so the log lines of each are told apart by a context
variable set in its thread (asyncio copies it into every task the server starts): a handler on
the root logger gives each server's records to that server's log, formatted as the worker
formats them (JSON lines with the log context) and masked by the secret scrubber that worker
installed. One kind of record is not the server's although its thread may emit it: asyncio's
report of a task that failed unobserved, which the garbage collector makes in whichever thread
it runs; it counts only when it comes from the server's own event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import logging
import os
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

import uvicorn

from server.config import Settings, describe
from server.ops.logs import ContextFilter, JsonFormatter
from server.security.redaction import SecretScrubber

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

_log_owner: contextvars.ContextVar[ServerLog | None] = contextvars.ContextVar(
    "parley_test_log_owner", default=None
)
# Set while a server's event loop reports an error of its own (see ``_report_loop_error``).
_loop_report = threading.local()


class ServerLog:
    """The log lines of one in-process server, as its JSON log output would show them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.scrubber: SecretScrubber | None = None
        self._formatter = JsonFormatter()
        self._context = ContextFilter()
        self._lock = threading.Lock()

    def add(self, record: logging.LogRecord) -> None:
        if self.scrubber is not None:
            self.scrubber.filter(record)
        self._context.filter(record)
        line = self._formatter.format(record)
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "".join(f"{line}\n" for line in self.lines)


class _LogRouter(logging.Handler):
    """Gives each record to the log of the server whose thread emitted it, if any."""

    NAME = "parley-tests-router"

    def emit(self, record: logging.LogRecord) -> None:
        owner = _log_owner.get()
        if owner is None:
            return
        if record.funcName == "default_exception_handler" and not getattr(
            _loop_report, "active", False
        ):
            return  # another loop's task, collected in this thread
        try:
            owner.add(record)
        except Exception:
            self.handleError(record)


def _install_router() -> None:
    root = logging.getLogger()
    if not any(handler.get_name() == _LogRouter.NAME for handler in root.handlers):
        router = _LogRouter()
        router.set_name(_LogRouter.NAME)
        root.addHandler(router)


def _worker_scrubber() -> SecretScrubber | None:
    """The scrubber ``create_app`` just put on the worker's own log handler."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "parley":
            for found in handler.filters:
                if isinstance(found, SecretScrubber):
                    return found
    return None


def _report_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's own report, marked as coming from this loop."""
    _loop_report.active = True
    try:
        loop.default_exception_handler(context)
    finally:
        _loop_report.active = False


class _ThreadServer:
    """A uvicorn server running in a thread of its own until ``stop``."""

    def __init__(self, name: str, log: ServerLog | None) -> None:
        self.name = name
        self.log = log
        self.server: uvicorn.Server | None = None
        self.failure: str | None = None
        self._thread: threading.Thread | None = None

    def build(self) -> uvicorn.Server:
        """Make the app and its server (called in the server's thread)."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (self.server is not None and self.server.started):
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} exited during startup:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not come up:\n{self.output()[-4000:]}")
            time.sleep(0.01)

    def _run(self) -> None:
        _log_owner.set(self.log)
        try:
            asyncio.run(self._serve())
        except BaseException:
            self.failure = traceback.format_exc()

    async def _serve(self) -> None:
        asyncio.get_running_loop().set_exception_handler(_report_loop_error)
        self.server = self.build()
        await self.server.serve()
        # A process's exit would drop the app now. Drop it here, on its own loop, so that what
        # closes itself on the running loop when collected (the model SDK's HTTP clients) does
        # so on this one, not on the loop of whichever server runs next.
        self.server = None
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> int:
        """Shut down as on SIGTERM (the drain included); 0, or 1 if the server failed."""
        if self._thread is None:
            return 0
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive() and self.server is not None:
            self.server.force_exit = True
            self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} did not stop:\n{self.output()[-4000:]}")
        self._thread = None
        return 1 if self.failure else 0

    def output(self) -> str:
        text = self.log.text() if self.log is not None else ""
        return text + (self.failure or "")


class InProcessWorker(_ThreadServer):
    """One Parley worker built from ``environ`` as ``parley serve`` would build it."""

    def __init__(self, environ: Mapping[str, str], *, name: str) -> None:
        super().__init__(name, ServerLog())
        self.settings = Settings.from_env(environ)
        _export_referenced_variables(environ)

    def build(self) -> uvicorn.Server:
        from server.app import create_app
        from server.ops.serving import uvicorn_config
        from server.ops.shutdown import DrainingServer

        _install_router()
        app = create_app(self.settings)
        assert self.log is not None
        self.log.scrubber = _worker_scrubber()
        return DrainingServer(uvicorn_config(app, self.settings), app)


_MODULES_A_SERVER_IMPORTS = (
    "server.app",
    "server.ops.serving",
    "server.ops.shutdown",
    "server.devllm.app",
    "examples.erp.pack",
)


def freeze_long_lived_objects() -> None:
    """Exempt what outlives every server (the imported modules) from garbage collection passes.

    Each server's stop runs a full collection (see ``_ThreadServer._serve``), and a full pass
    walks every object the process holds: after the server's modules, SQLAlchemy, pydantic and
    the model SDK are imported, some 200,000: a fifth of a CPU second per pass, a good part of
    a small test's cost. ``gc.freeze`` moves the objects alive now into a generation no pass
    visits, so the passes walk only what the tests made since. Call it once, before the first
    server starts: importing the modules a server imports first puts them among the frozen,
    and no server's own objects exist yet to be frozen with them (a frozen object is freed
    by reference counting but never by a collection).
    """
    for module in _MODULES_A_SERVER_IMPORTS:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()


def _export_referenced_variables(environ: Mapping[str, str]) -> None:
    """Give the test process the variables the worker's environment adds beyond its settings.

    A tool sources file names secrets as ``${NAME}``, read from the environment of the process
    the worker runs in: for an in-process worker, the test process's own.
    """
    settings = {name for name, _, _ in describe()}
    for name, value in environ.items():
        if name not in settings and not name.startswith("PARLEY_"):
            os.environ.setdefault(name, value)


class InProcessApp(_ThreadServer):
    """A plain ASGI app under uvicorn on ``port`` (the scripted model's own server)."""

    def __init__(self, app: Any, port: int, *, name: str) -> None:
        super().__init__(name, None)
        self._app = app
        self._port = port

    def build(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=self._port, log_config=None, lifespan="off"
        )
        return uvicorn.Server(config)
