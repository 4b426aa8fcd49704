"""Who is on the other end of a socket: verifying the host app's JWTs.

The host app signs a short-lived token naming the user, the tenant and the user's roles: with
HS256 and a shared secret, or with RS256/ES256 and a private key whose public half Parley is
given as a PEM file or as a JWKS file (keys chosen by the token's ``kid``; the file is read again
when it changes, so keys rotate without a restart). The token's header picks the algorithm, and
each algorithm only ever meets its own kind of key, so an RSA public key can never be used as an
HMAC secret (the classic algorithm-confusion attack). In dev mode a secret is made once and kept
in a git-ignored file, so ``parley token`` and the server always agree.

Every refusal is an :class:`AuthError` whose reason names what was wrong and never echoes the
token or anything read from it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jwt

from server.config import Settings

logger = logging.getLogger(__name__)

REQUIRED_CLAIMS = ("sub", "tenant", "exp")
DEV_TOKEN_TTL_S = 3600
MAX_TOKEN_CHARS = 8192
SECRET_ALGORITHMS = frozenset({"HS256"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "ES256"})


class AuthError(Exception):
    """A token that cannot be accepted; ``reason`` is safe to show and to log."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user of one tenant."""

    tenant: str
    user: str
    roles: frozenset[str]
    expires_at: float
    name: str | None = None
    # The user's language and region (BCP 47, e.g. ``de-DE``) from the ``locale`` claim.
    locale: str | None = None
    # The token itself, for tool sources that pass the user's own token on to the host app.
    token: str | None = field(default=None, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class KeySetFile:
    """The public keys of a JWKS file, read again whenever the file changes."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: list[jwt.PyJWK] = []
        self.current()  # a broken file fails at startup, not on the first login

    def current(self) -> list[jwt.PyJWK]:
        """The usable signing keys: RS256/ES256, not marked for encryption only.

        Raises:
            RuntimeError: the file is unreadable or holds no usable key.
        """
        try:
            stat = self._path.stat()
        except OSError as exc:
            if self._stamp is not None:
                # Keep the last good keys while a deploy replaces the file.
                logger.warning("JWKS file %s unreadable (%s)", self._path, type(exc).__name__)
                return self._keys
            raise RuntimeError(f"JWKS file {self._path} is unreadable") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._keys = self._load()
            self._stamp = stamp
        return self._keys

    def _load(self) -> list[jwt.PyJWK]:
        try:
            key_set = jwt.PyJWKSet.from_json(self._path.read_text())
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise RuntimeError(f"JWKS file {self._path} holds no usable key set") from exc
        usable = [
            key
            for key in key_set.keys
            if key.algorithm_name in PUBLIC_KEY_ALGORITHMS and key.public_key_use in (None, "sig")
        ]
        if not usable:
            raise RuntimeError(f"JWKS file {self._path} holds no RS256/ES256 signing key")
        return usable


class TokenVerifier:
    """Checks signatures and claims of the host app's tokens."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        secret = settings.jwt_secret
        if secret is None and settings.dev:
            secret = dev_secret(settings)
        self._secret = secret or None
        self._public_key: str | None = None
        if settings.jwt_public_key_file:
            self._public_key = Path(settings.jwt_public_key_file).read_text()
        self._key_set = KeySetFile(settings.jwt_jwks_file) if settings.jwt_jwks_file else None
        if self._secret is None and self._public_key is None and self._key_set is None:
            raise RuntimeError(
                "no token key configured: set PARLEY_JWT_SECRET, PARLEY_JWT_PUBLIC_KEY_FILE or "
                "PARLEY_JWT_JWKS_FILE (or PARLEY_DEV=1 for a local dev secret)"
            )

    def verify(self, token: str) -> Principal:
        """The principal a token names.

        Raises:
            AuthError: bad signature or algorithm, unknown key, expired or not yet valid, wrong
                audience/issuer, or a claim missing or malformed.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("token missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("token signature or format is invalid") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        candidates = self._keys_for(algorithm, kid if isinstance(kid, str) else None)
        if not candidates:
            raise AuthError("token is not signed with an accepted algorithm and key")
        for key in candidates:
            claims = self._decode(token, key, str(algorithm))
            if claims is not None:
                return replace(_principal(claims), token=token)
        raise AuthError("token signature or format is invalid")

    def _keys_for(self, algorithm: object, kid: str | None) -> list[Any]:
        """The keys a token with this header may be checked against, most specific first."""
        if algorithm in SECRET_ALGORITHMS:
            return [self._secret] if self._secret else []
        if algorithm not in PUBLIC_KEY_ALGORITHMS:
            return []
        keys: list[Any] = []
        if self._key_set is not None:
            matching = [key for key in self._key_set.current() if key.algorithm_name == algorithm]
            if kid is not None:
                matching = [key for key in matching if key.key_id == kid]
            keys.extend(key.key for key in matching)
        if self._public_key is not None:
            keys.append(self._public_key)
        return keys

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any] | None:
        """The claims, or None when ``key`` did not sign the token (the next may have).

        Raises:
            AuthError: the signature is good but the claims are not acceptable.
        """
        settings = self._settings
        options: dict[str, Any] = {"require": list(REQUIRED_CLAIMS)}
        kwargs: dict[str, Any] = {"leeway": settings.jwt_leeway_s, "options": options}
        if settings.jwt_audience:
            kwargs["audience"] = settings.jwt_audience
        else:
            options["verify_aud"] = False
        if settings.jwt_issuer:
            kwargs["issuer"] = settings.jwt_issuer
        # PyJWT checks the signature before any claim, so every claim error below means the
        # token really comes from a key holder.
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], **kwargs)
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired", expired=True) from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer is not accepted") from None
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
            return None
        except jwt.PyJWTError:
            raise AuthError("token signature or format is invalid") from None
        return claims


def _principal(claims: dict[str, Any]) -> Principal:
    user, tenant, roles = claims.get("sub"), claims.get("tenant"), claims.get("roles", [])
    if not isinstance(user, str) or not user or len(user) > 200:
        raise AuthError("token 'sub' must be a non-empty string")
    if not isinstance(tenant, str) or not tenant or len(tenant) > 200:
        raise AuthError("token 'tenant' must be a non-empty string")
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AuthError("token 'roles' must be a list of strings")
    name = claims.get("name")
    return Principal(
        tenant=tenant,
        user=user,
        roles=frozenset(roles),
        expires_at=float(claims["exp"]),
        name=name if isinstance(name, str) else None,
        locale=_locale(claims.get("locale")),
    )


# A BCP 47 tag as people write them: a language, then optional subtags (`de`, `de-DE`,
# `zh-Hant-TW`). Only the shape is checked; the widget falls back to English for languages it
# has no words for.
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


def _locale(claim: Any) -> str | None:
    """The ``locale`` claim when it is a well-formed tag; a bad one is ignored, not refused,
    because the user can still be served in the default language."""
    if isinstance(claim, str) and _LOCALE.match(claim):
        return claim
    return None


def issue_token(
    settings: Settings,
    *,
    user: str,
    tenant: str,
    roles: list[str],
    name: str | None = None,
    locale: str | None = None,
    ttl_s: int = DEV_TOKEN_TTL_S,
) -> str:
    """Sign a token as a host app would (dev mode and tests)."""
    secret = settings.jwt_secret or dev_secret(settings)
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "tenant": tenant,
        "roles": roles,
        "iat": now,
        "exp": now + ttl_s,
    }
    if name:
        claims["name"] = name
    if locale:
        claims["locale"] = locale
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def dev_secret(settings: Settings) -> str:
    """The dev secret, made on first use and kept in ``settings.dev_secret_file``."""
    if not settings.dev:
        raise RuntimeError("the dev secret exists only in dev mode (PARLEY_DEV=1)")
    path = Path(settings.dev_secret_file)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    # Write aside, then link into place: link fails if the file exists, so of two processes
    # starting at once exactly one secret wins and both read that one, never a half-written file.
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    staging.write_text(secret)
    staging.chmod(0o600)
    try:
        os.link(staging, path)
        logger.info("created a dev token secret in %s", path)
    except FileExistsError:
        secret = path.read_text().strip()
    finally:
        staging.unlink(missing_ok=True)
    return secret
