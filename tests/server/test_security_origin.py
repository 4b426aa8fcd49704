"""The Origin check at the handshake: foreign browser origins get HTTP 403 before any upgrade
(cross-site WebSocket hijacking), allowed and same-site ones a socket, and a handshake without
Origin (a non-browser client) is allowed unless the deployment requires one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab
from tests.server.security_support import (
    StartServer,
    handshake_status,
    module_backend,
    server_starter,
)

pytestmark = pytest.mark.timeout(120)

ALLOWED = "https://erp.example.com,https://*.tenants.example.net"


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, dev_model: DevModel
) -> Iterator[ParleyServer]:
    tmp = tmp_path_factory.mktemp("origin")
    backends = module_backend(tmp)
    backend = next(backends)
    server = ParleyServer(tmp, backend.config(dev_model, PARLEY_ALLOWED_ORIGINS=ALLOWED))
    yield server
    server.stop()
    next(backends, None)


async def open_with_origin(server: ParleyServer, origin: str | None) -> Tab:
    tab = await Tab.connect(server.ws_url, origin=origin)
    await tab.send({"type": "hello", "protocol": 1, "token": server.token()})
    tab.ready = await tab.expect("ready")
    return tab


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.org",
        "https://erp.example.com.evil.org",  # a suffix trick on an allowed origin
        "http://erp.example.com",  # the allowed host, but over plain HTTP
        "https://tenants.example.net",  # the wildcard covers subdomains only
        "https://eviltenants.example.net",
        "null",  # sandboxed frames and file:// pages
    ],
)
async def test_a_foreign_origin_is_refused_with_403(guarded: ParleyServer, origin: str) -> None:
    assert await handshake_status(guarded.ws_url, origin=origin) == 403


@pytest.mark.parametrize(
    "origin",
    [
        "https://erp.example.com",
        "HTTPS://ERP.EXAMPLE.COM",
        "https://acme.tenants.example.net",
        None,  # no Origin: not a browser
    ],
)
async def test_allowed_origins_and_non_browsers_get_a_socket(
    guarded: ParleyServer, origin: str | None
) -> None:
    tab = await open_with_origin(guarded, origin)
    assert tab.ready["user"]["id"] == guarded.user
    await tab.close()


async def test_the_servers_own_pages_may_connect(guarded: ParleyServer) -> None:
    tab = await open_with_origin(guarded, f"http://127.0.0.1:{guarded.port}")
    await tab.close()


async def test_a_refusal_is_logged_and_never_reaches_the_endpoint(guarded: ParleyServer) -> None:
    await handshake_status(guarded.ws_url, origin="https://attacker.example")
    log = guarded.output()
    assert "refused a WebSocket handshake from origin 'https://attacker.example'" in log


async def test_require_origin_refuses_clients_without_one(start_server: StartServer) -> None:
    strict = start_server(
        PARLEY_REQUIRE_ORIGIN="1", PARLEY_ALLOWED_ORIGINS="https://erp.example.com"
    )
    assert await handshake_status(strict.ws_url) == 403
    tab = await open_with_origin(strict, "https://erp.example.com")
    await tab.close()


async def test_no_allowed_origins_means_same_origin_only(start_server: StartServer) -> None:
    default = start_server()
    assert await handshake_status(default.ws_url, origin="https://erp.example.com") == 403
    tab = await open_with_origin(default, f"http://127.0.0.1:{default.port}")
    await tab.close()
    tab = await open_with_origin(default, None)
    await tab.close()
