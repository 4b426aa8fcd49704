"""Which collections a turn searches.

The one place that decides it, so that what a conversation may search can later come from
something finer than a deployment-wide setting (its profile, for one) without touching the
search itself. Roles narrow the answer further in `KnowledgeSearch`.
"""

from __future__ import annotations

from collections.abc import Callable

from server.config import Settings

CollectionsFor = Callable[[tuple[str, ...]], tuple[str, ...] | None]
"""``(the conversation's profile's knowledge) -> collection names`` to search: empty means
every collection of the tenant that the user's roles allow, None nothing at all."""


def configured_collections(settings: Settings) -> CollectionsFor:
    """A profile that names collections searches those. Without a profiles file (one default
    profile made from the settings) a conversation searches ``PARLEY_KNOWLEDGE_COLLECTIONS``;
    with one, a profile that names no collections searches nothing."""

    def collections_for(profile_knowledge: tuple[str, ...]) -> tuple[str, ...] | None:
        if profile_knowledge:
            return profile_knowledge
        if settings.profiles:
            return None
        return settings.knowledge_collections

    return collections_for
