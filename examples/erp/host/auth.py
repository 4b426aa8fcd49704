"""Who is calling: verifying the short-lived JWT Parley signs for each call it makes as a user.

Parley signs one token per call with HS256 and a secret it shares with this app, or with its
own RS256/ES256 key published at its JWKS URL. The token's header picks the algorithm, and each
algorithm only ever meets its own kind of key, so a public key can never be used as an HMAC
secret. Beyond the signature, the app checks that the token is meant for it (``aud``), comes
from the expected issuer (``iss``), has not expired and lives at most
``ERP_TOKEN_MAX_LIFETIME_S``, and names the user, tenant, roles and the call it was made for.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import jwt

from examples.erp.host.errors import Unauthorized
from examples.erp.host.settings import HostSettings

__all__ = ["Caller", "TokenVerifier"]

MAX_TOKEN_CHARS = 8192
SECRET_ALGORITHMS = frozenset({"HS256"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "ES256"})
# Claims every call's token carries; `confirmation` is added for actions.
REQUIRED_CLAIMS = ("exp", "aud", "sub", "jti")
_CALL_CLAIMS = ("tenant", "conversation_id", "turn_id", "call_id")
_MAX_CLAIM_CHARS = 200
_MAX_TENANT_CHARS = 64  # the width of the books' tenant columns
_MAX_USER_CHARS = 120  # the width of the columns naming who decided or recorded something
_MAX_ROLES = 50


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a verified token names, and the assistant call it was issued for.

    Attributes:
        confirmation: the confirmation the user approved, present only on action tokens.
    """

    user: str
    tenant: str
    roles: frozenset[str]
    conversation_id: str
    turn_id: str
    call_id: str
    token_id: str
    confirmation: str | None


class TokenVerifier:
    """Checks bearer tokens against the configured secret and/or Parley's published keys."""

    def __init__(self, settings: HostSettings) -> None:
        self._settings = settings
        self._secret = settings.parley_secret
        self._keys: jwt.PyJWKClient | None = None
        if settings.parley_jwks_url:
            # Keys are fetched on first use and cached; an unknown `kid` fetches them again,
            # so Parley can rotate keys without this app restarting.
            self._keys = jwt.PyJWKClient(settings.parley_jwks_url, cache_keys=True, lifespan=300)

    async def verify(self, authorization: str | None) -> Caller:
        """The caller named by an ``Authorization: Bearer <token>`` header.

        Raises:
            Unauthorized: no bearer token; a bad signature, algorithm or key; expired, too
                long-lived, not yet valid; wrong audience or issuer; a claim missing or malformed.
        """
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is required")
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("token signature or format is invalid") from None
        algorithm = header.get("alg")
        key = await self._key_for(token, algorithm)
        claims = self._decode(token, key, str(algorithm))
        return _caller(claims)

    async def _key_for(self, token: str, algorithm: object) -> Any:
        if algorithm in SECRET_ALGORITHMS and self._secret:
            return self._secret
        if algorithm in PUBLIC_KEY_ALGORITHMS and self._keys is not None:
            keys = self._keys
            try:
                # PyJWKClient fetches with blocking I/O: keep it off the event loop.
                signing_key = await asyncio.to_thread(keys.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError:
                raise Unauthorized("the token's signing keys could not be fetched") from None
            except jwt.PyJWTError:
                raise Unauthorized("token is not signed with a known key") from None
            if signing_key.algorithm_name != algorithm:
                raise Unauthorized("token is not signed with an accepted algorithm and key")
            return signing_key.key
        raise Unauthorized("token is not signed with an accepted algorithm and key")

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        settings = self._settings
        required = [*REQUIRED_CLAIMS, "iss"] if settings.issuer else list(REQUIRED_CLAIMS)
        kwargs: dict[str, Any] = {
            "algorithms": [algorithm],
            "audience": settings.audience,
            "leeway": settings.token_leeway_s,
            "options": {"require": required},
        }
        if settings.issuer:
            kwargs["issuer"] = settings.issuer
        try:
            claims: dict[str, Any] = jwt.decode(token, key, **kwargs)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token is not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issuer is not accepted") from None
        except jwt.PyJWTError:
            raise Unauthorized("token signature or format is invalid") from None
        # A token that outlives a call by much could be replayed: only short-lived ones pass.
        now = time.time()
        longest = settings.token_max_lifetime_s + settings.token_leeway_s
        expires = float(claims["exp"])
        issued = claims.get("iat")
        if expires - now > longest or (
            isinstance(issued, int | float) and expires - float(issued) > longest
        ):
            raise Unauthorized(
                f"token lives longer than {settings.token_max_lifetime_s:g} s; "
                "call tokens must be short-lived"
            )
        return claims


def _caller(claims: dict[str, Any]) -> Caller:
    values = {name: _text_claim(claims, name) for name in ("sub", "jti", *_CALL_CLAIMS)}
    roles = claims.get("roles")
    if (
        not isinstance(roles, list)
        or len(roles) > _MAX_ROLES
        or not all(isinstance(role, str) and 0 < len(role) <= _MAX_CLAIM_CHARS for role in roles)
    ):
        raise Unauthorized("token claim 'roles' must be a list of role names")
    if len(values["tenant"]) > _MAX_TENANT_CHARS:
        raise Unauthorized(f"token claim 'tenant' is longer than {_MAX_TENANT_CHARS} characters")
    if len(values["sub"]) > _MAX_USER_CHARS:
        raise Unauthorized(f"token claim 'sub' is longer than {_MAX_USER_CHARS} characters")
    confirmation = claims.get("confirmation")
    if confirmation is not None:
        confirmation = _text_claim(claims, "confirmation")
    return Caller(
        user=values["sub"],
        tenant=values["tenant"],
        roles=frozenset(roles),
        conversation_id=values["conversation_id"],
        turn_id=values["turn_id"],
        call_id=values["call_id"],
        token_id=values["jti"],
        confirmation=confirmation,
    )


def _text_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None:
        raise Unauthorized(f"token lacks the '{name}' claim")
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_CLAIM_CHARS:
        raise Unauthorized(f"token claim '{name}' must be a non-empty string")
    return value
