"""The demo ERP host app checking RS256 tokens against Parley's published keys (a JWKS URL),
served here by a plain HTTP server thread standing in for Parley's ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.examples.conftest import ErpHost, call_token

# The ERP host app is a real process of its own: the full run has these tests.
pytestmark = pytest.mark.slow

KID = "parley-2026"


def _rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: RSAPrivateKey) -> bytes:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}).encode()


@pytest.fixture
def signing_key() -> RSAPrivateKey:
    return _rsa_key()


@pytest.fixture
def jwks_url(signing_key: RSAPrivateKey) -> Iterator[str]:
    body = _jwks(signing_key)

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _hmac_signed(secret: bytes) -> str:
    # PyJWT refuses to sign with a PEM key as an HMAC secret, so the attacker's token is made
    # by hand: the claims of a real call token, MACed with the public key's bytes.
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    claims = jwt.decode(call_token(), options={"verify_signature": False})
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    signing_input = f"{part(header)}.{part(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(mac)}"


def _signed(key: Any, algorithm: str, **headers: Any) -> str:
    # The claims of a real call token, re-signed with another key or algorithm.
    claims = jwt.decode(call_token(), options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


async def test_rs256_tokens_are_checked_against_the_published_keys(
    tmp_path: Path, jwks_url: str, signing_key: RSAPrivateKey
) -> None:
    host = ErpHost(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'erp.db'}",
        env={"ERP_PARLEY_SECRET": "", "ERP_PARLEY_JWKS_URL": jwks_url},
    )
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        async with httpx.AsyncClient(base_url=host.url) as client:

            async def cash(token: str) -> httpx.Response:
                return await client.get(
                    "/api/cash-balance", headers={"Authorization": f"Bearer {token}"}
                )

            good = await cash(_signed(signing_key, "RS256", kid=KID))
            assert good.status_code == 200, good.text
            assert good.json()["total"] == "318979.20"

            forged = await cash(_signed(_rsa_key(), "RS256", kid=KID))
            assert forged.status_code == 401
            assert forged.json()["error"] == "token signature or format is invalid"

            # The public key used as an HMAC secret (algorithm confusion) is never accepted,
            # and without ERP_PARLEY_SECRET no HS256 token is.
            confused = await cash(_hmac_signed(public_pem))
            assert confused.status_code == 401
            assert "not signed with an accepted algorithm" in confused.json()["error"]
            assert (await cash(call_token())).status_code == 401
    finally:
        host.stop()
