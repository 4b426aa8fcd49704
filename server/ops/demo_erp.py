"""The demo ERP as `parley serve` runs it in dev mode: its own app, reached as a tool source.

The demo ERP is a host app like any customer's (``python -m examples.erp``): its own process,
its own database, a REST API described by an OpenAPI document. In dev mode with
``PARLEY_DEMO_ERP=host`` (the default), ``parley serve`` starts that app as a child process
before any worker, gives it a secret made for this run, and replaces the in-process demo pack
in ``PARLEY_TOOLS`` with a tool source ``erp`` pointing at it. The workers never import the
demo's code: they read its OpenAPI document and call it with the user's short-lived JWT, the
way they would call any other app. With ``--workers N`` the supervisor starts the app once and
every worker shares it. The app stops with the server, and dies with it if the server is
killed (Linux).

Parley knows the app only by its command line and its HTTP routes; nothing here imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from server.config import Settings
from server.ops.logs import configure_logging

logger = logging.getLogger(__name__)

# The in-process demo pack, as PARLEY_TOOLS may name it.
DEMO_PACK_PATHS = frozenset({"examples.erp", "examples.erp:pack"})
DEMO_APP_MODULE = "examples.erp"
SOURCE_NAME = "erp"  # also the app's default ERP_AUDIENCE
# The source file names the secret by this variable; the app reads the same one.
SECRET_ENV = "ERP_PARLEY_SECRET"
DATABASE_FILE = "erp-demo.db"
# The demo's knowledge manifest (examples/erp/knowledge), found from the working directory the
# way the app's module is.
DEMO_KNOWLEDGE = "examples/erp/knowledge/knowledge.toml"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


class DemoErpError(ValueError):
    """The demo ERP app could not be started; the message says how to run without it."""


@contextlib.contextmanager
def demo_erp(settings: Settings) -> Iterator[dict[str, Any]]:
    """The settings `parley serve` changes for the demo ERP, with its app running meanwhile.

    Outside dev mode, or when PARLEY_TOOLS does not name the demo pack, nothing changes.

    Raises:
        DemoErpError: the app exited or did not answer while starting.
    """
    named = [path for path in settings.tools if path in DEMO_PACK_PATHS]
    if not settings.dev or not named:
        yield {}
        return
    others = tuple(path for path in settings.tools if path not in DEMO_PACK_PATHS)
    if settings.demo_erp == "off":
        yield {"tools": others}
        return
    # The workers load the demo's documents ("what is our approval limit?") once they run.
    knowledge = {"demo_knowledge": DEMO_KNOWLEDGE}
    if settings.demo_erp == "pack":
        yield knowledge
        return
    configure_logging(settings)  # so that what happens here is logged like the workers' lines
    with _demo_app(settings, others) as overrides:
        yield overrides | knowledge


@contextlib.contextmanager
def _demo_app(settings: Settings, others: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The demo ERP app running, and the settings that reach it as the tool source ``erp``."""
    with tempfile.TemporaryDirectory(prefix="parley-demo-erp-") as folder:
        os.environ[SECRET_ENV] = secrets.token_urlsafe(32)  # the workers inherit it
        port = settings.demo_erp_port or _free_port()
        url = f"http://127.0.0.1:{port}"
        sources = Path(folder) / "tool-sources.toml"
        sources.write_text(_sources_file(url, settings.tool_sources), encoding="utf-8")
        with _running_app(port, _database_url(settings)):
            logger.info("demo ERP app at %s, reached as tool source %r", url, SOURCE_NAME)
            yield {"tools": others, "tool_sources": str(sources), "demo_erp_url": url}


def _sources_file(url: str, operator_file: str | None) -> str:
    """The demo's tool source, after the sources the operator configured (if any)."""
    own = None
    if operator_file:
        try:
            own = Path(operator_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise DemoErpError(
                f"PARLEY_TOOL_SOURCES: cannot read {operator_file} ({exc.strerror})"
            ) from None
    demo = (
        "# Written by `parley serve` for this run: the demo ERP app started beside it.\n"
        "[[source]]\n"
        f'name = "{SOURCE_NAME}"\n'
        'kind = "openapi"\n'
        f'url = "{url}/openapi.json"\n'
        'auth = "user-jwt"\n'
        f'secret = "${{{SECRET_ENV}}}"\n'
        "timeout_s = 30\n"
    )
    return f"{own}\n\n{demo}" if own else demo


def _database_url(settings: Settings) -> str:
    if settings.demo_erp_database_url:
        return settings.demo_erp_database_url
    # Beside Parley's own SQLite file, so a test's or a checkout's data stays together.
    parley = make_url(settings.database_url)
    if parley.get_backend_name() == "sqlite" and parley.database not in (None, "", ":memory:"):
        folder = Path(str(parley.database)).parent
        return f"sqlite+aiosqlite:///{folder / DATABASE_FILE}"
    return f"sqlite+aiosqlite:///./{DATABASE_FILE}"


@contextlib.contextmanager
def _running_app(port: int, database_url: str) -> Iterator[None]:
    # The app's settings are all ERP_*: only these, whatever the shell around Parley has set.
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("ERP_")}
    env = {
        **inherited,
        SECRET_ENV: os.environ[SECRET_ENV],
        "ERP_HOST": "127.0.0.1",
        "ERP_PORT": str(port),
        "ERP_DATABASE_URL": database_url,
        "ERP_SEED": "1",
        "ERP_DEMO_DATA": "1",
    }
    command = [sys.executable, "-m", DEMO_APP_MODULE, "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    try:
        _wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        yield
    finally:
        _stop(process)


def _wait_until_up(process: subprocess.Popen[bytes], health_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise DemoErpError(
                f"the demo ERP app exited while starting (code {code}); "
                "PARLEY_DEMO_ERP=pack runs the demo in-process instead"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health_url, timeout=2.0).status_code == 200:
                return
        time.sleep(_POLL_S)
    raise DemoErpError(
        f"the demo ERP app did not answer at {health_url} within {STARTUP_TIMEOUT_S:g} s; "
        "PARLEY_DEMO_ERP=pack runs the demo in-process instead"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.error("the demo ERP app did not stop in time; killing it")
            process.kill()
            process.wait()


def _die_with_parent() -> None:
    # Runs in the child before exec: a server killed with SIGKILL takes no app along by itself,
    # so on Linux the kernel sends the app SIGTERM when its parent dies.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
