"""Calls made as the user: the headers each request to a tool source carries.

With ``auth = "user-jwt"`` (the default) every request carries ``Authorization: Bearer <JWT>``,
a token Parley signs for that one call: lifetime at most 60 s, ``aud`` the source's name, and
claims naming the user, the tenant, the roles and the call (``conversation_id``, ``turn_id``,
``call_id``, a fresh ``jti``; for an approved action also ``confirmation``, its token). A source
with a ``secret`` gets HS256 tokens with that secret; every other source gets tokens signed with
Parley's own key (ES256 or RS256), whose public half is served at ``/.well-known/jwks.json`` so
the host can fetch it like any identity provider's keys. ``auth = "passthrough"`` sends the
token the user authenticated with instead, and ``auth = "none"`` sends nothing (the static
headers may carry an API key).

Parley's key comes from ``PARLEY_TOOL_SIGNING_KEY_FILE`` (a PEM private key), or in dev mode is
made once and kept in ``PARLEY_DEV_SIGNING_KEY_FILE``, so every worker signs with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.config import Settings
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.sources.config import SourceConfig

__all__ = [
    "TOKEN_TTL_MAX_S",
    "CallAuth",
    "SigningKey",
    "jwks_endpoint",
    "load_signing_key",
]

logger = logging.getLogger(__name__)

TOKEN_TTL_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    """Parley's own key pair for tool-source tokens.

    Attributes:
        algorithm: ``"ES256"`` (EC P-256) or ``"RS256"`` (RSA).
        kid: the key's RFC 7638 thumbprint, sent in each token's header.
        private_key: the private key object.
        public_jwk: the public half as a JWK (with ``kid``, ``alg`` and ``use``).
    """

    algorithm: str
    kid: str
    private_key: Any
    public_jwk: dict[str, Any]

    @classmethod
    def from_pem(cls, pem: bytes, origin: str) -> SigningKey:
        """The key of a PEM private key.

        Raises:
            RuntimeError: not a private key, or neither EC P-256 nor RSA of 2048+ bits.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise RuntimeError(f"{origin} holds no unencrypted PEM private key") from exc
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            algorithm = "ES256"
            jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        elif isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            algorithm = "RS256"
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            raise RuntimeError(f"{origin} must be an EC P-256 or an RSA (2048+ bits) private key")
        kid = _thumbprint(jwk)
        return cls(algorithm, kid, key, {**jwk, "kid": kid, "alg": algorithm, "use": "sig"})

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of the public half."""
        return {"keys": [self.public_jwk]}


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_signing_key(settings: Settings, *, create: bool = True) -> SigningKey | None:
    """Parley's tool-signing key: the configured PEM file, in dev mode the kept dev key (made
    first when ``create``), else None (then only sources with a ``secret`` can use
    ``auth = "user-jwt"``).

    Raises:
        RuntimeError: the configured file cannot be read or holds no usable key.
    """
    if settings.tool_signing_key_file:
        path = Path(settings.tool_signing_key_file)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"PARLEY_TOOL_SIGNING_KEY_FILE {path} is unreadable") from exc
        return SigningKey.from_pem(pem, f"PARLEY_TOOL_SIGNING_KEY_FILE {path}")
    if not settings.dev:
        return None
    path = Path(settings.dev_signing_key_file)
    if not path.exists():
        if not create:
            return None
        _create_dev_key(path)
    return SigningKey.from_pem(path.read_bytes(), f"dev signing key {path}")


def _create_dev_key(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write aside, then link into place: of two workers starting at once exactly one key wins.
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    staging.write_bytes(pem)
    staging.chmod(0o600)
    try:
        os.link(staging, path)
        logger.info("created a dev tool-signing key in %s", path)
    except FileExistsError:
        pass
    finally:
        staging.unlink(missing_ok=True)


class CallAuth:
    """The identity headers of calls to one source."""

    def __init__(
        self,
        source: SourceConfig,
        *,
        issuer: str,
        ttl_s: float,
        signing_key: SigningKey | None,
        clock: Any = time.time,
    ) -> None:
        """Raises:
        ValueError: ``ttl_s`` is above 60 s, or the source signs with Parley's key and
            there is none.
        """
        if not 0 < ttl_s <= TOKEN_TTL_MAX_S:
            raise ValueError(
                f"tool token lifetime must be above 0 and at most {TOKEN_TTL_MAX_S:g}s"
            )
        if source.auth == "user-jwt" and source.secret is None and signing_key is None:
            raise ValueError(
                f"source {source.name!r} signs its tokens with Parley's key: set its `secret`, "
                "or PARLEY_TOOL_SIGNING_KEY_FILE"
            )
        self.source = source
        self.issuer = issuer
        self.ttl_s = ttl_s
        self.signing_key = signing_key
        self._clock = clock

    def headers(self, ctx: ToolContext, *, action: bool) -> dict[str, str]:
        """Headers for one request: the static ones, then who the user is.

        Raises:
            ToolError: passthrough is configured and this call has no user token (a
                continuation after the user's socket is gone).
        """
        headers = dict(self.source.headers)
        if self.source.auth == "user-jwt":
            headers["Authorization"] = f"Bearer {self.token(ctx, action=action)}"
        elif self.source.auth == "passthrough":
            if not ctx.user_token:
                raise ToolError(
                    f"tool source {self.source.name!r} needs the user's own token, and this "
                    "call has none; ask the user to try again",
                    code="no_user_token",
                )
            headers["Authorization"] = f"Bearer {ctx.user_token}"
        return headers

    def token(self, ctx: ToolContext, *, action: bool) -> str:
        """A JWT for this one call, naming the user, the tenant, the roles and the call."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.source.name,
            "sub": ctx.user,
            "tenant": ctx.tenant,
            "roles": sorted(ctx.roles),
            "conversation_id": ctx.conversation_id,
            "turn_id": ctx.turn_id,
            "call_id": ctx.call_id,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + int(self.ttl_s),
        }
        if action and ctx.confirmation:
            claims["confirmation"] = ctx.confirmation
        if self.source.secret is not None:
            return jwt.encode(claims, self.source.secret, algorithm="HS256")
        key = self.signing_key
        assert key is not None  # checked in __init__
        return jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )


async def jwks_endpoint(request: Request) -> Response:
    """``GET /.well-known/jwks.json``: the public key hosts verify Parley's call tokens with."""
    settings: Settings = request.app.state.settings
    # Read per request, never made here: a GET must not write a key file, and a key that a
    # deploy replaced is served at once.
    key = await run_in_threadpool(load_signing_key, settings, create=False)
    body = key.jwks() if key is not None else {"keys": []}
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})
