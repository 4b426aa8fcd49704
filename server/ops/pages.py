"""Small HTTP routes: health, readiness, metrics, the demo page and the dev token."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from server.config import Settings
from server.ops import metrics
from server.security.auth import issue_token
from server.stream.hub import FrameHub
from server.tools.registry import ToolRegistry
from server.turns.engine import TurnEngine
from storage.db import Database
from storage.readiness import head_revision, is_known_revision, schema_revision
from storage.redis_client import RedisClient, ping

logger = logging.getLogger(__name__)

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client-js"
# The folder of client-js/ whose files the demo page may load from /client/.
CLIENT_DEMO_FOLDER = "demo"
READINESS_TIMEOUT_S = 2.0
DEV_TOKEN_DEFAULT_ROLES = "admin"
OK = "ok"


@dataclass(frozen=True, slots=True)
class ReadinessParts:
    """What ``/readyz`` looks at; assembled once, kept at ``app.state.readiness``."""

    settings: Settings
    db: Database
    redis: RedisClient
    hub: FrameHub
    engine: TurnEngine
    tools: ToolRegistry | None = None  # its tool sources may be degraded


async def healthz(_request: Request) -> Response:
    """The process is up and serving HTTP (liveness: nothing else is checked)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready for traffic: the database answers and is migrated, Redis answers, frame fan-out
    is connected and a model is configured. 503 with the reason of each failed check; 200 with
    ``"status": "degraded"`` and the reasons when only tool sources are down."""
    parts: ReadinessParts = request.app.state.readiness
    checks: dict[str, str] = {}
    probes: dict[str, Callable[[], Awaitable[str]]] = {
        "database": lambda: _ping(parts.db.ping()),
        "schema": lambda: _schema(request),
        # Every master of a cluster: one whose slots are down while a replica takes over
        # is an outage for the users that live there.
        "redis": lambda: _ping(ping(parts.redis)),
    }
    for name, probe in probes.items():
        try:
            checks[name] = await asyncio.wait_for(probe(), READINESS_TIMEOUT_S)
        except Exception as exc:
            checks[name] = f"unreachable ({type(exc).__name__})"
            if name == "redis":
                metrics.redis_error("readiness")
    if checks["database"] != OK and checks["schema"].startswith("unreachable"):
        checks["schema"] = "unknown: the database is unreachable"
    checks["fanout"] = OK if parts.hub.healthy else "frame fan-out is reconnecting to Redis"
    checks["draining"] = OK if parts.engine.accepting else "shutting down: finishing its turns"
    checks["model"] = _model_configuration(parts.settings.openai_base_url)
    problems = {name: result for name, result in checks.items() if result != OK}
    headers = {"Cache-Control": "no-store"}
    if problems:
        body = {"status": "unavailable", "problems": problems, "checks": checks}
        return JSONResponse(body, status_code=503, headers=headers)
    # A tool source that is down hides its own tools; the worker still serves everything else,
    # so it stays in the load balancer and says what is missing.
    degraded = parts.tools.degraded_sources() if parts.tools is not None else {}
    if degraded:
        body = {"status": "degraded", "checks": checks, "degraded": _tool_sources(degraded)}
        return JSONResponse(body, headers=headers)
    return JSONResponse({"status": "ready", "checks": checks}, headers=headers)


def _tool_sources(degraded: dict[str, str]) -> dict[str, str]:
    return {f"tool_source:{name}": problem for name, problem in degraded.items()}


def _model_configuration(base_url: str | None) -> str:
    """The model endpoint is configured well enough to be called.

    Only the configuration is checked, not the endpoint itself: an outage of the model
    provider should not take workers out of the load balancer, since history, confirmations
    and every other tab's state stay available; turns report the outage to users instead.
    """
    if base_url is None:
        return OK  # the built-in scripted model
    parsed = urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "OPENAI_BASE_URL is not an http(s) URL"
    return OK


async def _ping(check: Awaitable[object]) -> str:
    await check
    return OK


async def _schema(request: Request) -> str:
    """OK when the database is at this code's newest migration, or at a newer one (a newer
    release migrated it during a rolling deploy)."""
    state = request.app.state
    if getattr(state, "schema_ready", False):
        return OK  # a schema that was current stays current for this process
    parts: ReadinessParts = state.readiness
    current = await schema_revision(parts.db)
    head = head_revision()
    if current == head:
        state.schema_ready = True
        return OK
    if current is None:
        return "the database was never migrated: run `parley migrate`"
    if not is_known_revision(current):
        return OK
    return f"the database is at migration {current}, this code needs {head}: run `parley migrate`"


async def metrics_page(_request: Request) -> Response:
    """Prometheus exposition of every metric (of every worker in multi-process mode)."""
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, headers={"Content-Type": content_type})


async def index_page(request: Request) -> Response:
    """The demo page: an ERP screen with the widget.

    With the demo ERP app running (``PARLEY_DEMO_ERP_URL``), the page is sent to
    ``/?erp=<its URL>``, where it reads the app's live books instead of its mock data.
    """
    erp_url = request.app.state.settings.demo_erp_url
    if erp_url and "erp" not in request.query_params:
        query = urlencode([*request.query_params.multi_items(), ("erp", erp_url)])
        return RedirectResponse(f"/?{query}", headers={"Cache-Control": "no-store"})
    return FileResponse(CLIENT_DIR / CLIENT_DEMO_FOLDER / "index.html")


class ClientFiles(StaticFiles):
    """``/client/``: the browser client's shipped modules and, in dev mode, the demo folder.

    client-js/ also holds node_modules, tests and tooling, which are not the server's to publish.
    The shipped modules are the ``files`` of client-js/package.json, the list the package itself
    publishes, so a module added to the client is served once it is declared there.
    """

    def __init__(self, directory: Path = CLIENT_DIR, *, with_demo: bool = False) -> None:
        super().__init__(directory=directory)
        package = json.loads((directory / "package.json").read_text(encoding="utf-8"))
        self.shipped = frozenset(str(name) for name in package.get("files", ()))
        self.with_demo = with_demo

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The file for ``path`` if it is published, else nothing (a 404)."""
        # StaticFiles.get_path has normalised the path already: "demo/../x" arrives as "x".
        in_demo = path.startswith(CLIENT_DEMO_FOLDER + os.sep)
        published = path in self.shipped or (self.with_demo and in_demo)
        return super().lookup_path(path) if published else ("", None)


async def dev_token(request: Request) -> Response:
    """A signed token for any user (dev mode only; the route does not exist otherwise)."""
    settings = request.app.state.settings
    params = request.query_params
    user = params.get("user", "alice")
    tenant = params.get("tenant", "acme")
    roles = [role for role in params.get("roles", DEV_TOKEN_DEFAULT_ROLES).split(",") if role]
    token = issue_token(
        settings,
        user=user,
        tenant=tenant,
        roles=roles,
        name=params.get("name"),
        locale=params.get("locale"),
    )
    return JSONResponse({"token": token, "expires_in": 3600}, headers={"Cache-Control": "no-store"})
