"""Assistant profiles (copilots, session types) and the catalog a deployment offers.

A profile is what one kind of conversation runs under: its system prompt, the tools it may use
(names or glob patterns over every loaded tool, tool sources' ones included), its model and
temperature, who may use it, its per-conversation budgets, what the widget shows for a new
conversation (greeting, suggestions), the knowledge collections it searches and the profiles it
may hand a conversation over to. A conversation is bound to one profile when it starts.

Without a profiles file the catalog holds one default profile built from the settings, which
behaves exactly as Parley did before profiles: the global system prompt, every tool, the
configured model and budgets.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from protocol import ErrorCode, ProfileSummary
from server.config import Settings
from server.errors import ClientError
from server.knowledge.citations import SEARCH_TOOL

__all__ = ["DEFAULT_PROFILE_ID", "Profile", "ProfileCatalog"]

# The id of the one profile made from the settings when there is no profiles file.
DEFAULT_PROFILE_ID = "default"


@dataclass(frozen=True, slots=True)
class Profile:
    """One profile, checked, with every optional value resolved against the settings.

    Attributes:
        id: what ``user_message.profile`` names; stored on the conversation.
        title: display name.
        description: one line on what it is for, or None.
        system_prompt: placed first in every model request of its conversations.
        tools: names or glob patterns (``"crm__*"``) of the tools it offers; None offers every
            tool (the user's roles still apply), an empty tuple none.
        model: the model its turns ask for.
        temperature: the sampling temperature its turns ask for; None leaves the endpoint's
            default.
        roles: roles of which a user needs one to use it; empty: everyone.
        budget_conversation_tokens: tokens one of its conversations may use (0: no limit).
        budget_conversation_usd: cost in USD one of its conversations may run up (0: no limit).
        max_messages_per_conversation: messages one of its conversations may hold (0: no limit).
        greeting: the assistant's first words in a new conversation, for the widget.
        suggestions: example prompts for a new conversation.
        knowledge: knowledge collections its conversations search.
        default: whether a conversation that names no profile gets this one.
        handoff: ids of the profiles it may hand a conversation over to.
    """

    id: str
    title: str
    system_prompt: str
    model: str
    budget_conversation_tokens: int
    budget_conversation_usd: float
    max_messages_per_conversation: int
    description: str | None = None
    tools: tuple[str, ...] | None = None
    temperature: float | None = None
    roles: frozenset[str] = frozenset()
    greeting: str | None = None
    suggestions: tuple[str, ...] = ()
    knowledge: tuple[str, ...] = ()
    default: bool = False
    handoff: tuple[str, ...] = field(default=())

    def offers(self, tool: str) -> bool:
        """Whether the tool named ``tool`` belongs to this profile (before roles apply).

        A profile that names knowledge collections offers ``search_knowledge`` whatever its
        tool patterns say: naming them is what asks for it.
        """
        if self.tools is None or (self.knowledge and tool == SEARCH_TOOL):
            return True
        return any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.tools)

    def allowed(self, roles: Iterable[str]) -> bool:
        """Whether a user holding ``roles`` may use this profile."""
        return not self.roles or not self.roles.isdisjoint(roles)

    def summary(self) -> ProfileSummary:
        """The profile as ``ready.profiles`` lists it."""
        return ProfileSummary(
            id=self.id,
            title=self.title,
            description=self.description,
            greeting=self.greeting,
            suggestions=self.suggestions or None,
            default=True if self.default else None,
        )


class ProfileCatalog:
    """The profiles of a deployment: exactly one of them is the default."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        defaults = [profile for profile in profiles if profile.default]
        if len(defaults) != 1:
            raise RuntimeError("a profile catalog needs exactly one default profile")
        self.profiles: tuple[Profile, ...] = tuple(profiles)
        self.default = defaults[0]
        self._by_id = {profile.id: profile for profile in profiles}

    def get(self, profile_id: str | None) -> Profile | None:
        """The profile ``profile_id``, if configured."""
        return self._by_id.get(profile_id) if profile_id is not None else None

    def of_conversation(self, stored: str | None) -> Profile:
        """The profile a stored conversation runs under: its own, or the default for a
        conversation that started before profiles (or whose profile left the file)."""
        return self._by_id.get(stored, self.default) if stored is not None else self.default

    def choose(self, profile_id: str | None, roles: Iterable[str], *, ref: str | None) -> Profile:
        """The profile a new conversation asks for (the default when it names none).

        Raises:
            ClientError: ``profile_not_found`` for an id that is not configured, ``forbidden``
                when the user's roles do not allow the profile.
        """
        profile = self.default if profile_id is None else self._by_id.get(profile_id)
        if profile is None:
            raise ClientError(
                ErrorCode.PROFILE_NOT_FOUND, f"profile '{profile_id}' not found", ref=ref
            )
        self.check_allowed(profile, roles, ref=ref)
        return profile

    def check_allowed(self, profile: Profile, roles: Iterable[str], *, ref: str | None) -> None:
        """Refuse a user whose roles do not allow ``profile``.

        Raises:
            ClientError: ``forbidden``.
        """
        if not profile.allowed(roles):
            raise ClientError(
                ErrorCode.FORBIDDEN, f"profile '{profile.id}' is not allowed for this user", ref=ref
            )

    def available_to(self, roles: Iterable[str]) -> list[Profile]:
        """The profiles a user holding ``roles`` may start conversations with, in file order."""
        held = frozenset(roles)
        return [profile for profile in self.profiles if profile.allowed(held)]

    def handoff_targets(self, profile: Profile, roles: Iterable[str]) -> list[Profile]:
        """The profiles ``profile`` may hand a conversation to that the user may also use."""
        held = frozenset(roles)
        targets = (self._by_id[target] for target in profile.handoff if target in self._by_id)
        return [target for target in targets if target.allowed(held)]


def settings_profile(settings: Settings) -> Profile:
    """The one profile of a deployment without a profiles file: today's settings."""
    return Profile(
        id=DEFAULT_PROFILE_ID,
        title="Assistant",
        system_prompt=settings.system_prompt,
        model=settings.model,
        budget_conversation_tokens=settings.budget_conversation_tokens,
        budget_conversation_usd=settings.budget_conversation_usd,
        max_messages_per_conversation=settings.max_messages_per_conversation,
        default=True,
    )
