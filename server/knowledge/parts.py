"""The knowledge parts of a worker, built from the settings in one step for the assembly and
for the ``parley knowledge`` command."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from server.config import Settings
from server.knowledge.chunking import ChunkBudget, Chunker
from server.knowledge.embeddings import Embedder
from server.knowledge.ingest import KnowledgeIngest
from server.knowledge.scope import CollectionsFor, configured_collections
from server.knowledge.search_tool import KnowledgeSearch
from server.turns.token_counting import TokenCounter
from storage.db import Database
from storage.knowledge import KnowledgeStore


@dataclass(frozen=True, slots=True)
class KnowledgeParts:
    """The store, the ingest pipeline and the search tool's logic."""

    store: KnowledgeStore
    ingest: KnowledgeIngest
    search: KnowledgeSearch


def knowledge_parts(
    settings: Settings,
    db: Database,
    model_client: openai.AsyncOpenAI | None = None,
    collections_for: CollectionsFor | None = None,
) -> KnowledgeParts:
    """Build the knowledge parts over ``db``; with ``PARLEY_KNOWLEDGE_EMBEDDINGS`` on, the
    embeddings come from ``model_client`` (the model's endpoint).

    Raises:
        ValueError: the chunk budget settings are not usable, or embeddings are on without a
            client to ask.
    """
    embedder = None
    if settings.knowledge_embeddings:
        if model_client is None:
            raise ValueError("PARLEY_KNOWLEDGE_EMBEDDINGS needs the model endpoint's client")
        embedder = Embedder(
            model_client, settings.knowledge_embedding_model, settings.knowledge_embedding_batch
        )
    store = KnowledgeStore(db)
    budget = ChunkBudget(settings.knowledge_chunk_tokens, settings.knowledge_chunk_overlap_tokens)
    ingest = KnowledgeIngest(
        store,
        Chunker(TokenCounter(settings.model), budget),
        budget,
        settings.knowledge_document_max_bytes,
        embedder,
    )
    scope = collections_for or configured_collections(settings)
    return KnowledgeParts(store, ingest, KnowledgeSearch(store, settings, scope, embedder))
