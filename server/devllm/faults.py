"""Fault injection: the failures a real model endpoint has, on demand.

Faults come from two places. The app keeps a list of fault rules, replaced through
``POST /_dev/faults`` (a JSON list) and cleared by ``DELETE /_dev/faults``. A single request can
also carry markers in its last user message: ``[fault:NAME]`` or ``[fault:NAME=VALUE]``. They
act on the request answering that message (not on the rounds after tool results) and are taken
out of the text before the script sees it.

A fault rule in JSON::

    {"fault": "rate_limit", "retry_after": 2, "api_keys": ["sk-team-a"], "times": 1}

``fault`` is one of ``FaultKind``; ``api_keys`` (optional) restricts the rule to requests whose
``Authorization: Bearer`` key is listed; ``times`` (optional) is how often it fires before it
stops. The remaining field depends on the kind, and is also what a marker's ``=VALUE`` sets:

- ``rate_limit``: 429 with ``Retry-After``; ``retry_after`` seconds (default 1);
- ``server_error``: 500;
- ``slow_first_token``: the first chunk waits ``delay_s`` seconds (default 1);
- ``drop_stream``: the stream breaks off after ``after_chunks`` content chunks (default 3);
- ``no_usage``: no usage chunk, even when the request asks for one;
- ``token_rate``: stream at ``rate`` tokens per second (0 = as fast as possible).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """The faults the dev model can inject."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    SLOW_FIRST_TOKEN = "slow_first_token"
    DROP_STREAM = "drop_stream"
    NO_USAGE = "no_usage"
    TOKEN_RATE = "token_rate"


# Faults that answer the request with an error instead of a completion.
REJECTING = frozenset({FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR})

# The one numeric setting of each kind: its JSON field, default, and whether it must be whole.
_SETTING: dict[FaultKind, tuple[str, float, bool]] = {
    FaultKind.RATE_LIMIT: ("retry_after", 1.0, False),
    FaultKind.SLOW_FIRST_TOKEN: ("delay_s", 1.0, False),
    FaultKind.DROP_STREAM: ("after_chunks", 3, True),
    FaultKind.TOKEN_RATE: ("rate", 0.0, False),
}
_COMMON_FIELDS = frozenset({"fault", "api_keys", "times"})
_MARKER = re.compile(r"\[fault:(?P<name>[a-z_]+)(?:=(?P<value>\d+(?:\.\d+)?))?\]")


class FaultSpecError(ValueError):
    """A fault rule that cannot be used; the message names the offending rule and field."""


@dataclass(slots=True)
class FaultRule:
    """One configured fault. ``times`` counts down as it fires; None means without end."""

    kind: FaultKind
    value: float = 0.0
    api_keys: frozenset[str] | None = None
    times: int | None = None

    def applies_to(self, api_key: str | None) -> bool:
        """Whether the rule would fire for a request made with ``api_key``."""
        if self.times is not None and self.times <= 0:
            return False
        return self.api_keys is None or api_key in self.api_keys

    def fire(self) -> None:
        """Count one firing."""
        if self.times is not None:
            self.times -= 1

    def to_json(self) -> dict[str, Any]:
        """The rule as ``POST /_dev/faults`` takes it (remaining ``times``)."""
        data: dict[str, Any] = {"fault": self.kind.value}
        if self.kind in _SETTING:
            name, _, whole = _SETTING[self.kind]
            data[name] = int(self.value) if whole else self.value
        if self.api_keys is not None:
            data["api_keys"] = sorted(self.api_keys)
        if self.times is not None:
            data["times"] = self.times
        return data


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the faults that fire do to one request."""

    reject: FaultRule | None = None
    first_token_delay_s: float | None = None
    drop_after_chunks: int | None = None
    omit_usage: bool = False
    token_rate: float | None = None
    fired: tuple[FaultKind, ...] = field(default=())


def parse_fault_rules(data: Any) -> list[FaultRule]:
    """Read a JSON list of fault rules.

    Raises:
        FaultSpecError: the value is not a list of valid rules.
    """
    if not isinstance(data, list):
        raise FaultSpecError("faults must be a json list of fault rules")
    return [_parse_rule(index, item) for index, item in enumerate(data)]


def _parse_rule(index: int, item: Any) -> FaultRule:
    where = f"fault rule {index}"
    if not isinstance(item, Mapping):
        raise FaultSpecError(f"{where}: must be an object")
    try:
        kind = FaultKind(str(item.get("fault")))
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise FaultSpecError(
            f"{where}: unknown fault {item.get('fault')!r} (known: {known})"
        ) from None
    setting = _SETTING.get(kind)
    allowed = _COMMON_FIELDS | ({setting[0]} if setting else set())
    if unknown := sorted(set(item) - allowed):
        raise FaultSpecError(f"{where}: unknown field {unknown[0]!r} for {kind.value}")
    value = 0.0
    if setting is not None:
        name, default, whole = setting
        raw = item.get(name, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise FaultSpecError(f"{where}: field {name!r} must be a number >= 0")
        if whole and int(raw) != raw:
            raise FaultSpecError(f"{where}: field {name!r} must be a whole number")
        value = float(raw)
    api_keys = item.get("api_keys")
    if api_keys is not None and (
        not isinstance(api_keys, list) or not all(isinstance(key, str) for key in api_keys)
    ):
        raise FaultSpecError(f"{where}: field 'api_keys' must be a list of strings")
    times = item.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
        raise FaultSpecError(f"{where}: field 'times' must be a whole number >= 0")
    return FaultRule(
        kind=kind,
        value=value,
        api_keys=frozenset(api_keys) if api_keys is not None else None,
        times=times,
    )


def take_markers(text: str) -> tuple[str, list[FaultRule]]:
    """Remove ``[fault:NAME]`` markers from a message; return the rest and the rules they ask.

    An unknown name is left in the text, so a typo shows instead of silently doing nothing.
    """
    rules: list[FaultRule] = []

    def replace(match: re.Match[str]) -> str:
        try:
            kind = FaultKind(match.group("name"))
        except ValueError:
            return match.group(0)
        setting = _SETTING.get(kind)
        value = float(match.group("value")) if match.group("value") else None
        if value is None:
            value = float(setting[1]) if setting else 0.0
        rules.append(FaultRule(kind=kind, value=value, times=1))
        return ""

    rest = _MARKER.sub(replace, text)
    return (rest.strip() if rules else text), rules


def plan_faults(rules: Iterable[FaultRule], api_key: str | None) -> FaultPlan:
    """Decide which rules fire for one request, counting each one that does.

    The first rejecting rule (429, 500) that applies wins and nothing else fires; otherwise every
    applicable modifier fires, a later rule of the same kind overriding an earlier one.
    """
    applicable: Sequence[FaultRule] = [rule for rule in rules if rule.applies_to(api_key)]
    for rule in applicable:
        if rule.kind in REJECTING:
            rule.fire()
            return FaultPlan(reject=rule, fired=(rule.kind,))
    delay: float | None = None
    drop: int | None = None
    rate: float | None = None
    omit_usage = False
    for rule in applicable:
        rule.fire()
        if rule.kind is FaultKind.SLOW_FIRST_TOKEN:
            delay = rule.value
        elif rule.kind is FaultKind.DROP_STREAM:
            drop = int(rule.value)
        elif rule.kind is FaultKind.TOKEN_RATE:
            rate = rule.value
        elif rule.kind is FaultKind.NO_USAGE:
            omit_usage = True
    return FaultPlan(
        first_token_delay_s=delay,
        drop_after_chunks=drop,
        omit_usage=omit_usage,
        token_rate=rate,
        fired=tuple(rule.kind for rule in applicable),
    )
