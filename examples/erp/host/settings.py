"""The host app's configuration: one typed object, read from ``ERP_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["HostSettings", "SettingsError"]

MIN_SECRET_CHARS = 32


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"doc": doc})


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSettings:
    """Every setting of the demo ERP host app, with its default; ``ERP_<FIELD>`` in the env."""

    host: str = _setting("127.0.0.1", "address the app binds to")
    port: int = _setting(8100, "port the app listens on")
    database_url: str = _setting(
        "sqlite+aiosqlite:///./erp-demo.db",
        "SQLAlchemy URL of the ERP's own database; postgresql+asyncpg://... works too",
    )
    seed: bool = _setting(False, "create the demo companies acme and globex if missing, on start")
    parley_secret: str | None = _setting(
        None, "HS256 secret Parley signs this app's tokens with (one per tool source)", secret=True
    )
    parley_jwks_url: str | None = _setting(
        None, "Parley's JWKS URL, for RS256/ES256 tokens (e.g. .../.well-known/jwks.json)"
    )
    audience: str = _setting("erp", "required `aud` claim: the tool source's name in Parley")
    issuer: str = _setting("parley", "required `iss` claim; empty accepts any issuer")
    token_max_lifetime_s: float = _setting(60.0, "longest token lifetime accepted (exp - now)")
    token_leeway_s: float = _setting(5.0, "clock skew allowed on `exp` and `iat`")
    max_body_bytes: int = _setting(64 * 1024, "largest request body accepted (413 above)")
    max_list_items: int = _setting(100, "most items of any list argument")
    idempotency_ttl_s: float = _setting(
        7 * 24 * 3600.0, "how long the answer to an Idempotency-Key is kept for replays"
    )
    demo_data: bool = _setting(
        False, "serve /api/demo/* without a token: read-only live data for the demo page"
    )
    demo_origins: tuple[str, ...] = _setting(
        ("*",), "origins allowed to read /api/demo/* from a browser (CORS), comma-separated"
    )

    def __post_init__(self) -> None:
        if not self.parley_secret and not self.parley_jwks_url:
            raise SettingsError(
                "no token key configured: set ERP_PARLEY_SECRET (HS256) or ERP_PARLEY_JWKS_URL"
            )
        if self.parley_secret is not None and len(self.parley_secret) < MIN_SECRET_CHARS:
            raise SettingsError(f"ERP_PARLEY_SECRET must be at least {MIN_SECRET_CHARS} characters")
        if not self.audience:
            raise SettingsError("ERP_AUDIENCE must not be empty")
        for name in ("token_max_lifetime_s", "max_body_bytes", "max_list_items"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"ERP_{name.upper()} must be positive")
        if not 0 < self.port < 65536:
            raise SettingsError("ERP_PORT must be between 1 and 65535")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HostSettings:
        """Settings from ``ERP_*`` variables, then `overrides` (command-line flags) on top.

        Raises:
            SettingsError: a value cannot be read as its type, or the settings do not fit.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = f"ERP_{spec.name.upper()}"
            raw = env.get(name)
            # An empty variable means "unset", except for text settings (ERP_ISSUER="").
            if raw is None or (not raw.strip() and not isinstance(spec.default, str)):
                continue
            values[spec.name] = _parse(name, raw, spec.default)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, meaning)`` of every setting, for the docs and ``--help``."""
        rows = []
        for spec in fields(cls):
            default = spec.default
            if isinstance(default, bool):
                shown = str(default).lower()
            elif isinstance(default, tuple):
                shown = ",".join(default)
            else:
                shown = "" if default is None else str(default)
            rows.append((f"ERP_{spec.name.upper()}", shown, spec.metadata["doc"]))
        return rows


def _parse(name: str, raw: str, default: Any) -> Any:
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if isinstance(default, tuple):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text
