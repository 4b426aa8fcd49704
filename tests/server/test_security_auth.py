"""Authentication at the socket: every kind of bad token closes with 4401 and a reason, tokens
come from hello, a Bearer header or the configured cookie but never the URL, an expiring token
can be renewed in place, and the dev-only doors stay shut outside dev mode."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.server.conftest import Backend
from tests.server.harness import (
    REPO,
    TEST_JWT_SECRET,
    DevModel,
    ParleyServer,
    Tab,
    base_env,
    frames_of,
)
from tests.server.security_support import (
    KeyPair,
    StartServer,
    claims,
    closed_after,
    hello_outcome,
    module_backend,
    server_starter,
    write_jwks,
)

pytestmark = pytest.mark.timeout(180)

AUDIENCE = "parley-tests"
ISSUER = "https://host.example"
COOKIE = "parley_session"


class Keys:
    """The deployment's keys (PEM file and JWKS file) and some nobody configured."""

    def __init__(self, folder: Path) -> None:
        self.pem = KeyPair.rsa("pem")
        self.jwks_rsa = KeyPair.rsa("rsa-2")
        self.jwks_ec = KeyPair.ec("ec-1")
        self.stranger_rsa = KeyPair.rsa("rsa-2")  # same kid as a real key, different key
        self.stranger_ec = KeyPair.ec("ec-1")
        self.pem_file = folder / "public.pem"
        self.pem_file.write_text(self.pem.public_pem)
        self.jwks_file = write_jwks(folder / "jwks.json", self.jwks_rsa, self.jwks_ec)


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, dev_model: DevModel, keys: Keys
) -> Iterator[ParleyServer]:
    """One server with every kind of key, audience, issuer and the cookie configured."""
    tmp = tmp_path_factory.mktemp("auth")
    backends = module_backend(tmp)
    backend = next(backends)
    config = backend.config(
        dev_model,
        PARLEY_JWT_AUDIENCE=AUDIENCE,
        PARLEY_JWT_ISSUER=ISSUER,
        PARLEY_JWT_PUBLIC_KEY_FILE=str(keys.pem_file),
        PARLEY_JWT_JWKS_FILE=str(keys.jwks_file),
        PARLEY_AUTH_COOKIE=COOKIE,
        PARLEY_JWT_LEEWAY_S="0",
        PARLEY_REAUTH_GRACE_S="2",
    )
    server = ParleyServer(tmp, config)
    yield server
    server.stop()
    next(backends, None)


def good_claims(server: ParleyServer, **extra: Any) -> dict[str, Any]:
    return claims(server.user, aud=AUDIENCE, iss=ISSUER, **extra)


def hs256(payload: dict[str, Any], secret: str = TEST_JWT_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned(payload: dict[str, Any], header: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand: ``alg: none`` (no key) or HS256 over an arbitrary key."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(payload)}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


# -- accepted ---------------------------------------------------------------------------------


async def test_every_configured_key_kind_is_accepted(auth_server: ParleyServer, keys: Keys) -> None:
    payload = good_claims(auth_server)
    tokens = {
        "HS256 secret": hs256(payload),
        "RS256 PEM file": keys.pem.sign(payload),
        "RS256 JWKS by kid": keys.jwks_rsa.sign(payload, kid="rsa-2"),
        "ES256 JWKS by kid": keys.jwks_ec.sign(payload, kid="ec-1"),
        "ES256 JWKS without kid": keys.jwks_ec.sign(payload),
    }
    for kind, token in tokens.items():
        tab = await auth_server.tab(token)
        assert tab.ready["user"]["id"] == auth_server.user, kind
        await tab.close()


# -- refused ----------------------------------------------------------------------------------


def bad_tokens(server: ParleyServer, keys: Keys) -> dict[str, tuple[str, str, str]]:
    """kind -> (token, expected error code, expected close reason)."""
    good = good_claims(server)
    rejected = ("unauthenticated", "token signature or format is invalid")
    no_key = ("unauthenticated", "token is not signed with an accepted algorithm and key")
    return {
        "expired": (
            hs256(good_claims(server, exp=int(good["iat"]) - 60)),
            "token_expired",
            "token expired",
        ),
        "wrong signature": (hs256(good, "another-secret-another-secret-1234"), *rejected),
        "wrong audience": (
            hs256({**good, "aud": "someone-else"}),
            "unauthenticated",
            "token audience is not accepted",
        ),
        "no audience": (
            hs256({k: v for k, v in good.items() if k != "aud"}),
            "unauthenticated",
            "token lacks the 'aud' claim",
        ),
        "wrong issuer": (
            hs256({**good, "iss": "https://evil.example"}),
            "unauthenticated",
            "token issuer is not accepted",
        ),
        "missing tenant": (
            hs256({k: v for k, v in good.items() if k != "tenant"}),
            "unauthenticated",
            "token lacks the 'tenant' claim",
        ),
        "missing sub": (
            hs256({k: v for k, v in good.items() if k != "sub"}),
            "unauthenticated",
            "token lacks the 'sub' claim",
        ),
        "missing exp": (
            hs256({k: v for k, v in good.items() if k != "exp"}),
            "unauthenticated",
            "token lacks the 'exp' claim",
        ),
        "empty tenant": (
            hs256({**good, "tenant": ""}),
            "unauthenticated",
            "token 'tenant' must be a non-empty string",
        ),
        "RS256 with the wrong key": (keys.stranger_rsa.sign(good), *rejected),
        "RS256 with a known kid but the wrong key": (
            keys.stranger_rsa.sign(good, kid="rsa-2"),
            *rejected,
        ),
        "ES256 with the wrong key": (keys.stranger_ec.sign(good, kid="ec-1"), *rejected),
        "RS384 (not accepted)": (
            jwt.encode(good, keys.pem.private, algorithm="RS384"),
            *no_key,
        ),
        "alg none": (unsigned(good, {"alg": "none", "typ": "JWT"}, None), *no_key),
        "HS256 keyed with the public key (algorithm confusion)": (
            unsigned(good, {"alg": "HS256", "typ": "JWT"}, keys.pem.public_pem.encode()),
            *rejected,
        ),
        "garbage": ("not-a-token", *rejected),
        "too long": ("x" * 9000, "unauthenticated", "token missing or too long"),
    }


async def test_each_bad_token_kind_closes_4401_with_a_reason(
    auth_server: ParleyServer, keys: Keys
) -> None:
    for kind, (token, code, reason) in bad_tokens(auth_server, keys).items():
        close_code, close_reason, frames = await hello_outcome(auth_server.ws_url, token)
        assert close_code == 4401, kind
        assert close_reason == reason, kind
        errors = frames_of(frames, "error")
        assert [error["code"] for error in errors] == [code], kind
        assert token not in close_reason
        assert token not in json.dumps(frames)
    # Each refusal is logged with its reason, never with the token.
    await asyncio.sleep(0.2)
    log = auth_server.output()
    assert "token audience is not accepted" in log
    for token, _, _ in bad_tokens(auth_server, keys).values():
        if len(token) > 20:
            assert token not in log


async def test_a_token_in_the_query_string_is_never_used(auth_server: ParleyServer) -> None:
    token = hs256(good_claims(auth_server))
    url = f"{auth_server.ws_url}?token={token}&access_token={token}"
    code, reason, frames = await hello_outcome(url, None)
    assert (code, reason) == (4401, "no token")
    assert frames_of(frames, "error")[0]["code"] == "unauthenticated"
    await asyncio.sleep(0.2)
    assert token not in auth_server.output()


async def test_bearer_header_and_cookie_authenticate_without_a_token_in_hello(
    auth_server: ParleyServer,
) -> None:
    token = hs256(good_claims(auth_server))
    for options in (
        {"additional_headers": {"Authorization": f"Bearer {token}"}},
        {"additional_headers": {"Cookie": f"{COOKIE}={token}"}},
    ):
        tab = await Tab.connect(auth_server.ws_url, **options)
        await tab.send({"type": "hello", "protocol": 1})
        ready = await tab.expect("ready")
        assert ready["user"]["id"] == auth_server.user
        await tab.close()
    # A cookie under another name is not a credential.
    code, _, _ = await hello_outcome(
        auth_server.ws_url, None, additional_headers={"Cookie": f"other={token}"}
    )
    assert code == 4401


async def test_an_expiring_token_is_renewed_in_place(auth_server: ParleyServer) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server, ttl_s=4)))
    expired = await tab.expect("error", timeout=10)
    assert expired["code"] == "token_expired"
    assert expired["retryable"] is True
    await tab.send({"type": "hello", "protocol": 1, "token": hs256(good_claims(auth_server))})
    await asyncio.sleep(2.5)  # past the grace period: a renewed socket stays open
    await tab.send({"type": "ping", "t": 1})
    assert (await tab.expect("pong"))["t"] == 1
    await tab.close()


async def test_an_expired_token_not_renewed_closes_4401(auth_server: ParleyServer) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server, ttl_s=4)))
    code, reason, frames = await closed_after(tab)
    assert [frame["code"] for frame in frames_of(frames, "error")] == ["token_expired"]
    assert (code, reason) == (4401, "token expired")


async def test_a_renewal_must_name_the_same_user(auth_server: ParleyServer) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server)))
    other = hs256(claims("mallory", aud=AUDIENCE, iss=ISSUER))
    await tab.send({"type": "hello", "protocol": 1, "token": other})
    code, reason, _ = await closed_after(tab)
    assert (code, reason) == (4401, "a new token must name the same user")


async def test_a_bad_renewal_token_closes_4401(auth_server: ParleyServer) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server)))
    forged = hs256(good_claims(auth_server), "x" * 40)
    await tab.send({"type": "hello", "protocol": 1, "token": forged})
    code, _, _ = await closed_after(tab)
    assert code == 4401


async def test_jwks_file_is_read_again_when_keys_rotate(
    start_server: StartServer, tmp_path: Path
) -> None:
    old, new = KeyPair.ec("2024"), KeyPair.ec("2025")
    jwks = write_jwks(tmp_path / "rotating.json", old)
    server = start_server(PARLEY_JWT_JWKS_FILE=str(jwks))
    code, _, _ = await hello_outcome(server.ws_url, new.sign(claims(server.user), kid="2025"))
    assert code == 4401
    write_jwks(jwks, old, new)
    tab = await server.tab(new.sign(claims(server.user), kid="2025"))
    assert tab.ready["user"]["id"] == server.user
    await tab.close()


# -- dev-only doors and compression ----------------------------------------------------------


async def test_dev_token_route_exists_only_in_dev_mode(
    start_server: StartServer, auth_server: ParleyServer
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.get(f"{auth_server.url}/dev/token?user=u1&tenant=acme")
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "no-store"
        production = start_server(PARLEY_DEV="0")
        assert (await client.get(f"{production.url}/dev/token")).status_code == 404


@pytest.mark.slow  # the README's `parley token` command, as processes
def test_parley_token_refuses_outside_dev_mode(tmp_path: Path) -> None:
    env = base_env()
    command = [sys.executable, "-m", "server.cli", "token", "--user", "u", "--tenant", "t"]
    refused = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "only in dev mode" in refused.stderr
    assert refused.stdout == ""
    env.update({"PARLEY_DEV": "1", "PARLEY_DEV_SECRET_FILE": str(tmp_path / "secret")})
    issued = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert issued.returncode == 0
    secret = (tmp_path / "secret").read_text().strip()
    assert jwt.decode(issued.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "u"


async def test_compression_is_off_unless_switched_on(
    auth_server: ParleyServer, start_server: StartServer
) -> None:
    tab = await Tab.connect(auth_server.ws_url, compression="deflate")
    assert tab.ws.response is not None
    assert "permessage-deflate" not in tab.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    await tab.close()
    compressed = start_server(PARLEY_WS_COMPRESSION="1")
    tab = await Tab.connect(compressed.ws_url, compression="deflate")
    assert tab.ws.response is not None
    assert "permessage-deflate" in tab.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    await tab.send({"type": "hello", "protocol": 1, "token": compressed.token()})
    await tab.expect("ready")
    await tab.close()


# -- size limits ------------------------------------------------------------------------------


async def test_an_oversized_frame_closes_1009(auth_server: ParleyServer) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server)))
    await tab.ws.send('{"type":"ping","pad":"' + "x" * (64 * 1024) + '"}')
    code, _, frames = await closed_after(tab)
    assert code == 1009
    assert [frame["code"] for frame in frames_of(frames, "error")] == ["frame_too_large"]


async def test_an_overlong_message_is_refused_and_the_socket_stays(
    auth_server: ParleyServer, dev_model: DevModel
) -> None:
    tab = await auth_server.tab(hs256(good_claims(auth_server)))
    before = len(dev_model.requests())
    await tab.send({"type": "user_message", "client_msg_id": "long-1", "text": "y" * 8001})
    error = await tab.expect("error")
    assert (error["code"], error["ref"], error["retryable"]) == (
        "message_too_long",
        "long-1",
        False,
    )
    await tab.send({"type": "ping", "t": 2})
    assert (await tab.expect("pong"))["t"] == 2
    assert len(dev_model.requests()) == before
    await tab.close()
