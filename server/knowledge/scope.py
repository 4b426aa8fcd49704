"""Which collections a turn searches.

The one place that decides it, so that what a conversation may search can later come from
something finer than a deployment-wide setting (its profile, for one) without touching the
search itself. Roles narrow the answer further in `KnowledgeSearch`.
"""

from __future__ import annotations

from collections.abc import Callable

from server.config import Settings

CollectionsFor = Callable[[str, str], tuple[str, ...]]
"""``(tenant, conversation_id) -> collection names``; empty means every collection of the
tenant that the user's roles allow."""


def configured_collections(settings: Settings) -> CollectionsFor:
    """Every conversation searches ``PARLEY_KNOWLEDGE_COLLECTIONS``."""

    def collections_for(tenant: str, conversation_id: str) -> tuple[str, ...]:
        return settings.knowledge_collections

    return collections_for
