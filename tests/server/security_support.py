"""Helpers shared by the security, limits and fuzz suites: servers started with extra settings,
handshakes that are expected to fail, and keys for signed tokens."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.server.conftest import REDIS_URL, Backend, _drop_redis_prefix
from tests.server.harness import DevModel, ParleyServer, Tab

SECURITY_PACK = "tests.server.security_pack:pack"

StartServer = Callable[..., ParleyServer]


def module_backend(tmp: Path) -> Iterator[Backend]:
    """For module-scoped servers: a SQLite file and real Redis under a prefix of its own
    (the PostgreSQL fixture is per test)."""
    prefix = f"parley-test-{secrets.token_hex(4)}:"
    yield Backend("sqlite+redis", f"sqlite+aiosqlite:///{tmp / 'parley.db'}", REDIS_URL, prefix)
    _drop_redis_prefix(prefix)


def server_starter(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    """For a ``start_server`` fixture: start servers on the test's backend with extra
    ``PARLEY_*`` settings, all stopped at the end. ``tools`` sets ``PARLEY_TOOLS`` (default:
    none)."""
    started: list[ParleyServer] = []

    def start(tools: str = "", **env: str) -> ParleyServer:
        config = backend.config(model, **env)
        config.tools = tools
        server = ParleyServer(tmp_path, config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def handshake_status(url: str, **options: Any) -> int:
    """The HTTP status a refused handshake got (the test fails if it was upgraded)."""
    try:
        ws = await websockets.connect(url, open_timeout=10, **options)
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    await ws.close()
    raise AssertionError("the handshake was upgraded")


async def closed_after(tab: Tab) -> tuple[int | None, str, list[dict[str, Any]]]:
    """Read until the server closes: close code, reason and the frames seen meanwhile."""
    before = len(tab.frames)
    code, reason = await tab.closed()
    return code, reason, tab.frames[before:]


async def hello_outcome(
    url: str, token: str | None, **connect_options: Any
) -> tuple[int | None, str, list[dict[str, Any]]]:
    """Connect, send ``hello`` with ``token`` (or none) and read until the socket closes."""
    tab = await Tab.connect(url, **connect_options)
    hello: dict[str, Any] = {"type": "hello", "protocol": 1}
    if token is not None:
        hello["token"] = token
    await tab.send(hello)
    return await closed_after(tab)


def claims(user: str, tenant: str = "acme", ttl_s: int = 3600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": user,
        "tenant": tenant,
        "roles": ["admin"],
        "iat": now,
        "exp": now + ttl_s,
    }
    payload.update(extra)
    return {key: value for key, value in payload.items() if value is not None}


@dataclass
class KeyPair:
    """A private key, and its public half as PEM and as a JWK."""

    private: Any
    algorithm: str
    kid: str

    @classmethod
    def rsa(cls, kid: str) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)

    @classmethod
    def ec(cls, kid: str) -> KeyPair:
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        key: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        key.update({"kid": self.kid, "use": "sig"})
        return key

    def sign(self, payload: dict[str, Any], *, kid: str | None = None) -> str:
        headers = {"kid": kid} if kid else None
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


def write_jwks(path: Path, *pairs: KeyPair) -> Path:
    path.write_text(json.dumps({"keys": [pair.jwk() for pair in pairs]}))
    return path
