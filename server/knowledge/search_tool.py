"""The built-in ``search_knowledge`` tool: full-text search over the collections a turn may
search, with numbered markers the model cites as ``[1]``, ``[2]``.

Numbers run on across the searches of one turn (a second search starts after the first one's
last number; a passage found twice keeps its number), so every marker in an answer names one
passage. They are remembered per running turn on this worker, for at most
``PARLEY_KNOWLEDGE_NUMBERED_TURNS_MAX`` turns; a turn's tool calls all run on the worker that
runs the turn.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from server.config import Settings
from server.knowledge.citations import SEARCH_TOOL
from server.knowledge.embeddings import Embedder, EmbeddingError
from server.knowledge.scope import CollectionsFor
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn
from storage.knowledge import ChunkHit, KnowledgeStore

PACK_NAME = "knowledge"

logger = logging.getLogger(__name__)

CITE_NOTE = (
    "Answer from these passages and cite each one you use with its marker, e.g. [1]. "
    "If they do not answer the question, say so."
)


class KnowledgeSearch:
    """Searches knowledge for a tool call, within the turn's collections and the user's roles."""

    def __init__(
        self,
        store: KnowledgeStore,
        settings: Settings,
        collections_for: CollectionsFor,
        embedder: Embedder | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._collections_for = collections_for
        self._embedder = embedder
        # turn id -> {chunk id: marker number}, oldest turn first.
        self._numbers: OrderedDict[str, dict[int, int]] = OrderedDict()

    async def searchable(
        self, tenant: str, roles: frozenset[str], profile_knowledge: tuple[str, ...]
    ) -> list[str]:
        """The collections a user holding ``roles`` searches in a conversation whose profile
        names ``profile_knowledge``."""
        names = self._collections_for(profile_knowledge)
        if names is None:
            return []
        visible = await self._store.visible_collections(tenant, roles, names)
        return [collection.name for collection in visible]

    async def available(
        self, tenant: str, roles: frozenset[str], profile_knowledge: tuple[str, ...]
    ) -> bool:
        """Whether ``search_knowledge`` has anything to search for this user and conversation:
        it is offered only then."""
        return bool(await self.searchable(tenant, roles, profile_knowledge))

    async def offered(
        self,
        tools: list[dict[str, Any]],
        tenant: str,
        roles: frozenset[str],
        profile_knowledge: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """``tools`` (OpenAI format) without ``search_knowledge`` when there is nothing to
        search."""
        names = [tool.get("function", {}).get("name") for tool in tools]
        if SEARCH_TOOL not in names or await self.available(tenant, roles, profile_knowledge):
            return tools
        return [tool for tool, name in zip(tools, names, strict=True) if name != SEARCH_TOOL]

    def pack(self) -> ToolPack:
        """A pack holding the ``search_knowledge`` tool, for the tool registry."""
        pack = ToolPack(PACK_NAME)
        search = self

        @pack.query(name=SEARCH_TOOL)
        async def search_knowledge(
            ctx: ToolContext, query: str, collection: str | None = None
        ) -> ToolReturn:
            """Search the company's documents (policies, guides, reference pages) for passages
            that answer a question; cite what you use with the passages' markers, e.g. [1].

            Args:
                query: the question or the words to look for, in plain language.
                collection: only this collection; leave it out to search every one.
            """
            return await search.run(ctx, query, collection)

        return pack

    async def run(self, ctx: ToolContext, query: str, collection: str | None) -> ToolReturn:
        """Search and number the passages found.

        Raises:
            ToolError: the collection named is not one this conversation may search.
        """
        names = await self.searchable(ctx.tenant, ctx.roles, ctx.knowledge)
        if collection is not None:
            if collection not in names:
                # The same answer for "no such collection" and "not yours": nothing leaks.
                raise ToolError(f"no collection {collection!r} to search")
            names = [collection]
        hits = await self.find(ctx.tenant, names, query)
        numbers = self._turn_numbers(ctx.turn_id)
        passages = [self._passage(hit, numbers) for hit in hits]
        titles = sorted({hit.title for hit in hits})
        summary = (
            f"{len(hits)} passage{'s' if len(hits) != 1 else ''} from {', '.join(titles)}"
            if hits
            else "no passages found"
        )
        return ToolReturn({"passages": passages, "note": CITE_NOTE}, summary)

    async def find(self, tenant: str, collections: list[str], query: str) -> list[ChunkHit]:
        """The best passages of ``collections`` (already narrowed to what the user may search)
        for ``query``: full text, fused with vector similarity when embeddings are on."""
        vector = None
        if self._embedder is not None and collections:
            try:
                (vector,) = await self._embedder.embed([query])
            except EmbeddingError as exc:
                # Full-text search still answers; the endpoint's trouble is logged, not fatal.
                logger.warning("knowledge search without vectors: %s", exc)
        return await self._store.search(
            tenant,
            collections,
            query,
            limit=self._settings.knowledge_search_results,
            max_terms=self._settings.knowledge_query_max_terms,
            query_vector=vector,
            vector_scan_max=self._settings.knowledge_vector_scan_max,
        )

    def _turn_numbers(self, turn_id: str) -> dict[int, int]:
        numbers = self._numbers.pop(turn_id, None) or {}
        self._numbers[turn_id] = numbers
        while len(self._numbers) > self._settings.knowledge_numbered_turns_max:
            self._numbers.popitem(last=False)
        return numbers

    def _passage(self, hit: ChunkHit, numbers: dict[int, int]) -> dict[str, Any]:
        number = numbers.setdefault(hit.chunk_id, len(numbers) + 1)
        passage: dict[str, Any] = {
            "marker": f"[{number}]",
            "n": number,
            "chunk_id": hit.chunk_id,
            "document_id": hit.document_id,
            "title": hit.title,
        }
        if hit.url:
            passage["url"] = hit.url
        if hit.heading:
            passage["section"] = hit.heading
        passage["text"] = hit.text
        return passage
