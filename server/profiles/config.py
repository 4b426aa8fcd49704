"""The profiles file (``PARLEY_PROFILES``): the assistants a deployment offers.

A TOML file of ``[[profile]]`` tables::

    [[profile]]
    id = "sales"                            # what user_message.profile names
    title = "Sales copilot"
    description = "Deals, quotes and customers"
    system_prompt = "You are the sales copilot of ACME's CRM. ..."
    tools = ["crm__*", "cash_balance"]      # names or glob patterns; absent: every tool
    model = "gpt-4o"                        # absent: PARLEY_MODEL
    temperature = 0.3                       # absent: the endpoint's default
    roles = ["sales", "manager"]            # who may use it; absent or empty: everyone
    budget_conversation_tokens = 200000     # absent: PARLEY_BUDGET_CONVERSATION_TOKENS
    budget_conversation_usd = 2.0           # absent: PARLEY_BUDGET_CONVERSATION_USD
    max_messages_per_conversation = 200     # absent: PARLEY_MAX_MESSAGES_PER_CONVERSATION
    greeting = "Hi! Which deal are we working on?"
    suggestions = ["Show my open deals", "Draft a quote for ACME"]
    knowledge = ["sales-playbook"]          # knowledge collections it searches
    handoff = ["ops"]                       # profiles it may hand a conversation to
    default = true                          # the one a conversation gets when it names none

Exactly one profile is the default (a file with a single profile needs no ``default``). Unknown
keys are errors, so a misspelt key cannot silently turn a rule off, and so are hand-off targets
that are not in the file. Every error names the file, the profile and the key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from server.config import Settings
from server.profiles.catalog import Profile, ProfileCatalog, settings_profile
from server.profiles.errors import ProfileConfigError
from server.toml_file import read_toml_file

__all__ = ["load_profile_catalog", "load_profiles_file", "parse_profiles"]

PROFILE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PROFILE_ID_MAX = 64
TITLE_MAX = 200
SUGGESTIONS_MAX = 10
TEMPERATURE_MAX = 2.0
_PROFILE_KEYS = frozenset(
    {
        "id",
        "title",
        "description",
        "system_prompt",
        "tools",
        "model",
        "temperature",
        "roles",
        "budget_conversation_tokens",
        "budget_conversation_usd",
        "max_messages_per_conversation",
        "greeting",
        "suggestions",
        "knowledge",
        "default",
        "handoff",
    }
)


def load_profile_catalog(settings: Settings) -> ProfileCatalog:
    """The profiles of ``PARLEY_PROFILES``, or the one default profile of the settings.

    Raises:
        ProfileConfigError: the profiles file is wrong; the message names the file, the
            profile and the key.
    """
    if settings.profiles:
        return ProfileCatalog(load_profiles_file(settings.profiles, settings))
    return ProfileCatalog([settings_profile(settings)])


def load_profiles_file(path: str, settings: Settings) -> tuple[Profile, ...]:
    """Read and check the profiles file at ``path``; absent values come from ``settings``.

    Raises:
        ProfileConfigError: the file cannot be read, is not TOML, or a profile is wrong; the
            message names the file, the profile and the key.
    """
    document = read_toml_file(path, lambda reason: ProfileConfigError(path, None, None, reason))
    return parse_profiles(document, path, settings)


def parse_profiles(
    document: Mapping[str, Any], path: str, settings: Settings
) -> tuple[Profile, ...]:
    """Check a parsed profiles document; ``path`` only names the file in errors.

    Raises:
        ProfileConfigError: see `load_profiles_file`.
    """
    unknown = sorted(set(document) - {"profile"})
    if unknown:
        raise ProfileConfigError(
            path, None, unknown[0], "unknown key (expected [[profile]] tables)"
        )
    tables = document.get("profile", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ProfileConfigError(path, None, "profile", "must be an array of tables ([[profile]])")
    if not tables:
        raise ProfileConfigError(path, None, "profile", "the file defines no profile")
    profiles: list[Profile] = []
    for index, table in enumerate(tables):
        profile = _parse_profile(_Table(table, path, index), settings)
        if any(known.id == profile.id for known in profiles):
            raise ProfileConfigError(path, profile.id, "id", "is used by two profiles")
        profiles.append(profile)
    return _with_default(_check_handoffs(profiles, path), path)


class _Table:
    """Reads the keys of one ``[[profile]]`` table, raising errors that name the file, the
    profile and the key."""

    def __init__(self, table: Mapping[str, Any], path: str, index: int) -> None:
        self.table = table
        self.path = path
        named = table.get("id")
        self.label = named if isinstance(named, str) and named else f"profile[{index}]"

    def error(self, key: str | None, reason: str) -> ProfileConfigError:
        return ProfileConfigError(self.path, self.label, key, reason)

    def check_keys(self) -> None:
        unknown = sorted(set(self.table) - _PROFILE_KEYS)
        if unknown:
            allowed = ", ".join(sorted(_PROFILE_KEYS))
            raise self.error(unknown[0], f"unknown key (allowed: {allowed})")

    def text(
        self, key: str, *, required: bool = False, max_length: int | None = None
    ) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        if max_length is not None and len(value) > max_length:
            raise self.error(key, f"must be at most {max_length} characters")
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(value)

    def count(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, "must be a whole number, 0 or more (0: no limit)")
        return value

    def amount(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(key, "must be a number, 0 or more (0: no limit)")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value


def _parse_profile(table: _Table, settings: Settings) -> Profile:
    table.check_keys()
    profile_id = table.text("id", required=True)
    assert profile_id is not None
    if not PROFILE_ID.match(profile_id) or len(profile_id) > PROFILE_ID_MAX:
        raise table.error(
            "id",
            f"must be letters, digits, '-' and '_', start with a letter or digit and be at most "
            f"{PROFILE_ID_MAX} characters",
        )
    title = table.text("title", required=True, max_length=TITLE_MAX)
    assert title is not None
    temperature = table.table.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= TEMPERATURE_MAX
    ):
        raise table.error("temperature", f"must be a number from 0 to {TEMPERATURE_MAX:g}")
    suggestions = table.strings("suggestions") or ()
    if len(suggestions) > SUGGESTIONS_MAX:
        raise table.error("suggestions", f"must list at most {SUGGESTIONS_MAX} prompts")
    handoff = table.strings("handoff") or ()
    if profile_id in handoff:
        raise table.error("handoff", "a profile cannot hand a conversation to itself")
    return Profile(
        id=profile_id,
        title=title,
        description=table.text("description"),
        system_prompt=table.text("system_prompt") or settings.system_prompt,
        tools=table.strings("tools"),
        model=table.text("model", max_length=TITLE_MAX) or settings.model,
        temperature=float(temperature) if temperature is not None else None,
        roles=frozenset(table.strings("roles") or ()),
        budget_conversation_tokens=table.count(
            "budget_conversation_tokens", settings.budget_conversation_tokens
        ),
        budget_conversation_usd=table.amount(
            "budget_conversation_usd", settings.budget_conversation_usd
        ),
        max_messages_per_conversation=table.count(
            "max_messages_per_conversation", settings.max_messages_per_conversation
        ),
        greeting=table.text("greeting"),
        suggestions=suggestions,
        knowledge=table.strings("knowledge") or (),
        default=table.flag("default"),
        handoff=handoff,
    )


def _check_handoffs(profiles: list[Profile], path: str) -> list[Profile]:
    ids = {profile.id for profile in profiles}
    for profile in profiles:
        for target in profile.handoff:
            if target not in ids:
                raise ProfileConfigError(
                    path, profile.id, "handoff", f"names {target!r}, which is not a profile here"
                )
    return profiles


def _with_default(profiles: list[Profile], path: str) -> tuple[Profile, ...]:
    defaults = [profile for profile in profiles if profile.default]
    if len(defaults) > 1:
        raise ProfileConfigError(
            path,
            defaults[1].id,
            "default",
            f"only one profile may be the default ({defaults[0].id!r} is)",
        )
    if not defaults:
        if len(profiles) > 1:
            raise ProfileConfigError(
                path,
                None,
                "default",
                "set default = true on the profile a conversation gets when it names none",
            )
        only = profiles[0]
        profiles = [dataclasses.replace(only, default=True)]
    return tuple(profiles)
