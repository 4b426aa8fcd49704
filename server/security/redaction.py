"""Sensitive values: kept away from the model, and secrets kept out of the logs.

Tool results and the host page's context pass through :func:`redact_for_model` before they are
put in front of the model. Fields whose name is configured (``PARLEY_REDACT_FIELDS``: ``ssn``,
``password``, ``api_key``, ``card_number``, ``iban`` by default; case, ``-`` and ``_`` do not
matter, so ``apiKey`` and ``API-KEY`` count as ``api_key``) are removed with their values, at
any depth. Text anywhere in the value is searched for configured patterns
(``PARLEY_REDACT_PATTERNS``) and, unless turned off, for card numbers (Luhn-checked), IBANs
(checksum-checked), signed tokens (JWTs) and API keys; each match becomes ``[redacted]``. How
much was removed is counted and logged by field name and pattern name, never with the values.

:class:`SecretScrubber` is a logging filter that masks the server's own secrets (the JWT secret,
the model API keys) and anything shaped like a JWT in every log line, as a last line of defence
behind code that never logs them on purpose.
"""

from __future__ import annotations

import collections
import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from server.config import Settings

logger = logging.getLogger(__name__)

MASK = "[redacted]"
MAX_DEPTH = 64  # deeper values are dropped whole: nothing below them is inspected

# Process-wide totals by "field:<name>" / "pattern:<name>", for metrics.
_TOTALS: collections.Counter[str] = collections.Counter()


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(char, 36)) for char in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _card_number(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A named pattern; ``check`` (if any) confirms a match before it is masked."""

    name: str
    regex: re.Pattern[str]
    check: Callable[[re.Match[str]], bool] | None = None


BUILTIN_PATTERNS = (
    Pattern("card_number", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card_number),
    Pattern(
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
        lambda match: _iban_ok(match.group(0)),
    ),
    Pattern("jwt", re.compile(r"\beyJ[\w-]{6,}\.eyJ[\w-]{6,}\.[\w-]*")),
    Pattern("api_key", re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}")),
)


def normalise_field(name: str) -> str:
    """The form field names are compared in: lowercase, without ``-``, ``_`` or spaces."""
    return re.sub(r"[-_\s]", "", name).lower()


class Redactor:
    """Removes configured fields and masks configured patterns in JSON-like values."""

    def __init__(self, fields: Iterable[str], patterns: Iterable[Pattern]) -> None:
        self._fields = frozenset(normalise_field(name) for name in fields if name.strip())
        self._patterns = tuple(patterns)

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        """The redactor ``settings`` describe.

        Raises:
            ValueError: a configured pattern is not a valid regular expression.
        """
        patterns: list[Pattern] = []
        for index, source in enumerate(_pattern_sources(settings.redact_patterns), start=1):
            try:
                patterns.append(Pattern(f"custom_{index}", re.compile(source)))
            except re.error as exc:
                raise ValueError(
                    f"PARLEY_REDACT_PATTERNS entry {index} is invalid: {exc}"
                ) from None
        if settings.redact_builtin_patterns:
            patterns.extend(BUILTIN_PATTERNS)
        return cls(settings.redact_fields, patterns)

    def redact(self, value: Any) -> tuple[Any, collections.Counter[str]]:
        """A copy of ``value`` with sensitive fields removed and patterns masked, and how many
        of each were found (``"field:<name>"``, ``"pattern:<name>"``)."""
        counts: collections.Counter[str] = collections.Counter()
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            # A tool may hand back JSON as text: look inside it, so field names still count.
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
            else:
                cleaned = self._walk(parsed, counts, 0)
                return (orjson.dumps(cleaned).decode() if counts else value), counts
        return self._walk(value, counts, 0), counts

    def _walk(self, value: Any, counts: collections.Counter[str], depth: int) -> Any:
        if depth > MAX_DEPTH:
            counts["field:too_deep"] += 1
            return MASK
        if isinstance(value, str):
            return self._mask(value, counts)
        if isinstance(value, Mapping):
            kept: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and normalise_field(key) in self._fields:
                    counts[f"field:{normalise_field(key)}"] += 1
                    continue
                kept[key] = self._walk(item, counts, depth + 1)
            return kept
        if isinstance(value, list | tuple):
            return [self._walk(item, counts, depth + 1) for item in value]
        return value

    def _mask(self, text: str, counts: collections.Counter[str]) -> str:
        for pattern in self._patterns:

            def replace(match: re.Match[str], pattern: Pattern = pattern) -> str:
                if pattern.check is not None and not pattern.check(match):
                    return match.group(0)
                counts[f"pattern:{pattern.name}"] += 1
                return MASK

            text = pattern.regex.sub(replace, text)
        return text


def _pattern_sources(raw: str) -> list[str]:
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("PARLEY_REDACT_PATTERNS is not a valid JSON list") from None
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise ValueError("PARLEY_REDACT_PATTERNS must be a JSON list of strings")
        return [item for item in parsed if item]
    return [line.strip() for line in raw.splitlines() if line.strip()]


@functools.lru_cache(maxsize=8)
def redactor_for(settings: Settings) -> Redactor:
    """The redactor of ``settings``, built once."""
    return Redactor.from_settings(settings)


def redact_for_model(value: Any, settings: Settings, *, source: str) -> Any:
    """``value`` as the model may see it; ``source`` ("tool result", "context") names it in
    the log line that counts what was removed."""
    cleaned, counts = redactor_for(settings).redact(value)
    if counts:
        _TOTALS.update(counts)
        summary = ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))
        logger.info("redacted from a %s before the model: %s", source, summary)
    return cleaned


def redaction_totals() -> dict[str, int]:
    """How many fields and pattern matches this process has removed, by name."""
    return dict(_TOTALS)


# -- secrets in logs ---------------------------------------------------------------------------

_JWT_SHAPE = re.compile(r"eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*")
# One ``name=value`` pair of a query string (or a form body) as a URL spells it.
_QUERY_PAIR = re.compile(r"(?<=[?&;])([\w.~%+-]{1,64})=([^&;\s\"'#]*)")
# Parameter names whose values are credentials, whatever they look like.
_CREDENTIAL_PARAMS = frozenset(
    {"accesstoken", "token", "idtoken", "refreshtoken", "jwt", "auth", "authorization"}
    | {"apikey", "key", "secret", "clientsecret", "password", "sig", "signature"}
)
_MIN_SECRET_CHARS = 6  # shorter "secrets" would mask ordinary words


class SecretScrubber(logging.Filter):
    """Masks known secrets and JWT-shaped strings in log records before they are written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("parley.secrets")
        self._secrets = tuple(
            sorted({s for s in secrets if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)
        )

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _JWT_SHAPE.sub(MASK, _QUERY_PAIR.sub(_mask_query_value, text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken log call: the handler reports it, without our help
        cleaned = self.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            cleaned_trace = self.scrub(trace)
            if cleaned_trace != trace:
                # Formatters re-render exc_info themselves; carry the cleaned text instead.
                record.msg, record.args = f"{cleaned}\n{cleaned_trace}", None
                record.exc_info, record.exc_text = None, None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


def _mask_query_value(pair: re.Match[str]) -> str:
    """A query pair with its value masked if the name says credential or the value, once
    percent-decoded, is shaped like a JWT (``%2E`` for the dots hides it from the plain form)."""
    name, value = pair.group(1), pair.group(2)
    if normalise_field(unquote_plus(name)) in _CREDENTIAL_PARAMS or (
        "%" in value and _JWT_SHAPE.search(unquote_plus(value))
    ):
        return f"{name}={MASK}"
    return pair.group(0)


_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def install_secret_scrubber(settings: Settings, extra_secrets: Iterable[str] = ()) -> None:
    """Put a :class:`SecretScrubber` for ``settings``' secrets on every root log handler."""
    secrets = [*settings.openai_api_keys, *extra_secrets]
    if settings.jwt_secret:
        secrets.append(settings.jwt_secret)
    elif settings.dev:
        from server.security.auth import dev_secret

        secrets.append(dev_secret(settings))
    scrubber = SecretScrubber(secrets)
    for handler in logging.getLogger().handlers:
        for existing in [f for f in handler.filters if isinstance(f, SecretScrubber)]:
            handler.removeFilter(existing)
        handler.addFilter(scrubber)
