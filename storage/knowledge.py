"""Knowledge collections, their documents and the chunks a search finds.

Every read and write names its tenant; a search names the collections it may look in, which
the caller has already narrowed to those the user's roles allow (``visible_collections``).
Writes are incremental: a document whose content hash has not changed is left untouched, a
changed one has its chunks replaced in one transaction, so a search never sees half of a
document.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import knowledge_search
from storage.db import Database
from storage.errors import Conflict, NotFound
from storage.knowledge_vectors import VectorSearch, detect_vector_search, pgvector_nearest
from storage.models import KnowledgeChunk, KnowledgeCollection, KnowledgeDocument, utcnow

logger = logging.getLogger(__name__)

RRF_K = 60
"""Reciprocal-rank fusion's constant: a chunk scores ``1 / (RRF_K + rank)`` in each ranking."""

FUSION_DEPTH = 4
"""Each ranking contributes this many times the wanted number of results to the fusion."""


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]]) -> list[int]:
    """Ids of several best-first rankings in one order, by the sum of ``1 / (RRF_K + rank)``."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))


def cosine(left: Sequence[float], right: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros or they differ in size)."""
    if len(left) != len(right):
        return 0.0
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    norms = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norms if norms else 0.0


class PutOutcome(StrEnum):
    """What adding a document did."""

    CREATED = "created"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A passage ready to be stored: its place in the document, headings, text and size."""

    position: int
    heading: str
    text: str
    tokens: int
    embedding: list[float] | None = None


@dataclass(frozen=True, slots=True)
class DocumentDraft:
    """A document ready to be stored, already split into chunks."""

    document_id: str
    title: str
    url: str | None
    content_hash: str
    chunks: Sequence[ChunkDraft]


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """A chunk a search found, with what a citation needs, best first."""

    chunk_id: int
    collection: str
    document_id: str
    title: str
    url: str | None
    heading: str
    text: str
    position: int


def may_search(collection: KnowledgeCollection, roles: frozenset[str]) -> bool:
    """Whether a user holding ``roles`` may search ``collection``."""
    return not collection.roles or not roles.isdisjoint(collection.roles)


class KnowledgeStore:
    """SQL access to knowledge: collections, documents, chunks and full-text search."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # The exact scan until detect_vectors() finds pgvector (see knowledge_vectors.py).
        self.vector_search = VectorSearch.EXACT_SCAN

    async def detect_vectors(self, *, allow_pgvector: bool) -> VectorSearch:
        """Decide, once at startup, how vector similarity is searched: with pgvector when it
        is allowed and installed in the database, else by the bounded exact scan."""
        self.vector_search = await detect_vector_search(self._db, allow_pgvector=allow_pgvector)
        logger.info("knowledge vector search: %s", self.vector_search.value)
        return self.vector_search

    # -- collections ---------------------------------------------------------------------

    async def collections(self, tenant: str) -> list[KnowledgeCollection]:
        """Every collection of ``tenant``, by name."""
        async with self._db.session() as session:
            result = await session.exec(
                select(KnowledgeCollection)
                .where(KnowledgeCollection.tenant == tenant)
                .order_by(col(KnowledgeCollection.name))
            )
            return list(result.all())

    async def visible_collections(
        self, tenant: str, roles: frozenset[str], names: Iterable[str] = ()
    ) -> list[KnowledgeCollection]:
        """The collections of ``tenant`` a user with ``roles`` may search, limited to ``names``
        when any are given."""
        wanted = set(names)
        return [
            found
            for found in await self.collections(tenant)
            if may_search(found, roles) and (not wanted or found.name in wanted)
        ]

    async def put_collection(
        self, tenant: str, name: str, *, title: str | None = None, roles: list[str] | None = None
    ) -> KnowledgeCollection:
        """Create the collection, or change the title or roles given; the others stay."""
        async with self._db.session() as session:
            found = await self._collection(session, tenant, name)
            if found is None:
                found = KnowledgeCollection(
                    tenant=tenant, name=name, title=title or name, roles=sorted(set(roles or ()))
                )
            else:
                if title is not None:
                    found.title = title
                if roles is not None:
                    found.roles = sorted(set(roles))
            session.add(found)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(f"collection '{name}' was created at the same time") from exc
            await session.refresh(found)
            return found

    async def _collection(
        self, session: AsyncSession, tenant: str, name: str
    ) -> KnowledgeCollection | None:
        result = await session.exec(
            select(KnowledgeCollection).where(
                KnowledgeCollection.tenant == tenant, KnowledgeCollection.name == name
            )
        )
        found: KnowledgeCollection | None = result.first()
        return found

    # -- documents -----------------------------------------------------------------------

    async def put_document(self, tenant: str, collection: str, draft: DocumentDraft) -> PutOutcome:
        """Store ``draft`` in ``collection`` (created if missing), replacing an earlier version.

        Raises:
            Conflict: the same document was added at the same moment by someone else.
        """
        async with self._db.session() as session:
            if await self._collection(session, tenant, collection) is None:
                session.add(KnowledgeCollection(tenant=tenant, name=collection, title=collection))
            existing = await self._document(session, tenant, collection, draft.document_id)
            if existing is not None and existing.content_hash == draft.content_hash:
                return PutOutcome.UNCHANGED
            if existing is None:
                document = KnowledgeDocument(
                    tenant=tenant,
                    collection=collection,
                    document_id=draft.document_id,
                    title=draft.title,
                    content_hash=draft.content_hash,
                )
                outcome = PutOutcome.CREATED
            else:
                document = existing
                await session.exec(
                    delete(KnowledgeChunk).where(col(KnowledgeChunk.document_key) == existing.id)
                )
                outcome = PutOutcome.REPLACED
            document.title = draft.title
            document.url = draft.url
            document.content_hash = draft.content_hash
            document.chunk_count = len(draft.chunks)
            document.updated_at = utcnow()
            session.add(document)
            await session.flush()
            session.add_all(
                KnowledgeChunk(
                    document_key=document.id,
                    tenant=tenant,
                    collection=collection,
                    position=chunk.position,
                    heading=chunk.heading,
                    text=chunk.text,
                    tokens=chunk.tokens,
                    embedding=chunk.embedding,
                )
                for chunk in draft.chunks
            )
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(f"document '{draft.document_id}' was added concurrently") from exc
            return outcome

    async def content_hash(self, tenant: str, collection: str, document_id: str) -> str | None:
        """The stored content hash of a document, or None when there is no such document."""
        async with self._db.session() as session:
            found = await self._document(session, tenant, collection, document_id)
        return found.content_hash if found is not None else None

    async def document(self, tenant: str, collection: str, document_id: str) -> KnowledgeDocument:
        """One document.

        Raises:
            NotFound: ``collection`` of ``tenant`` has no such document.
        """
        async with self._db.session() as session:
            found = await self._document(session, tenant, collection, document_id)
        if found is None:
            raise NotFound(f"document '{document_id}' in collection '{collection}'")
        return found

    async def documents(self, tenant: str, collection: str, limit: int) -> list[KnowledgeDocument]:
        """The first ``limit`` documents of a collection, by id."""
        async with self._db.session() as session:
            result = await session.exec(
                select(KnowledgeDocument)
                .where(
                    KnowledgeDocument.tenant == tenant, KnowledgeDocument.collection == collection
                )
                .order_by(col(KnowledgeDocument.document_id))
                .limit(limit)
            )
            return list(result.all())

    async def delete_document(self, tenant: str, collection: str, document_id: str) -> None:
        """Remove a document and its chunks.

        Raises:
            NotFound: ``collection`` of ``tenant`` has no such document.
        """
        async with self._db.session() as session:
            found = await self._document(session, tenant, collection, document_id)
            if found is None:
                raise NotFound(f"document '{document_id}' in collection '{collection}'")
            await session.exec(
                delete(KnowledgeChunk).where(col(KnowledgeChunk.document_key) == found.id)
            )
            await session.delete(found)
            await session.commit()

    async def chunk_count(self, tenant: str, collection: str | None = None) -> int:
        """How many chunks ``tenant`` has stored (in one collection, when named)."""
        statement = select(func.count()).where(KnowledgeChunk.tenant == tenant)
        if collection is not None:
            statement = statement.where(KnowledgeChunk.collection == collection)
        async with self._db.session() as session:
            result = await session.exec(statement)
            return int(result.one())

    async def _document(
        self, session: AsyncSession, tenant: str, collection: str, document_id: str
    ) -> KnowledgeDocument | None:
        result = await session.exec(
            select(KnowledgeDocument).where(
                KnowledgeDocument.tenant == tenant,
                KnowledgeDocument.collection == collection,
                KnowledgeDocument.document_id == document_id,
            )
        )
        found: KnowledgeDocument | None = result.first()
        return found

    # -- search --------------------------------------------------------------------------

    async def search(
        self,
        tenant: str,
        collections: Sequence[str],
        question: str,
        *,
        limit: int,
        max_terms: int,
        query_vector: Sequence[float] | None = None,
        vector_scan_max: int = 0,
    ) -> list[ChunkHit]:
        """The chunks of ``tenant``'s ``collections`` that best match ``question``, best first.

        With a ``query_vector``, the full-text ranking and a vector-similarity ranking (an exact
        cosine scan of at most ``vector_scan_max`` chunks, or pgvector over all of them when
        :meth:`detect_vectors` found it) are combined by reciprocal-rank fusion, so a passage
        either ranks high finds its place. The caller names the
        collections the user may search; nothing outside them, and nothing of another tenant,
        can be returned.
        """
        if not collections:
            return []
        candidates = limit * FUSION_DEPTH if query_vector is not None else limit
        async with self._db.session() as session:
            rankings = [
                await self._full_text(session, tenant, collections, question, max_terms, candidates)
            ]
            if query_vector is not None:
                rankings.append(
                    await self._nearest(
                        session, tenant, collections, query_vector, candidates, vector_scan_max
                    )
                )
            ids = reciprocal_rank_fusion(rankings)[:limit]
            return await self._hits(session, tenant, ids)

    async def _full_text(
        self,
        session: AsyncSession,
        tenant: str,
        collections: Sequence[str],
        question: str,
        max_terms: int,
        limit: int,
    ) -> list[int]:
        words = knowledge_search.query_words(question, max_terms)
        if not words:
            return []
        if self._db.is_sqlite:
            statement = knowledge_search.sqlite_search(collections)
            match = knowledge_search.sqlite_match(words)
        else:
            statement = knowledge_search.postgres_search(collections)
            match = knowledge_search.postgres_match(words)
        ranked = await session.exec(  # type: ignore[call-overload]
            statement, params={"tenant": tenant, "match": match, "limit": limit}
        )
        return [int(row[0]) for row in ranked.all()]

    async def _nearest(
        self,
        session: AsyncSession,
        tenant: str,
        collections: Sequence[str],
        query_vector: Sequence[float],
        limit: int,
        scan_max: int,
    ) -> list[int]:
        """The ``limit`` chunks most similar to ``query_vector``: by pgvector when the database
        has it, else by an exact scan of at most ``scan_max`` embedded chunks (the oldest
        first, so the scanned set is stable)."""
        if self.vector_search is VectorSearch.PGVECTOR:
            return await self._pgvector_nearest(session, tenant, collections, query_vector, limit)
        result = await session.exec(
            select(KnowledgeChunk.id, KnowledgeChunk.embedding)
            .where(
                KnowledgeChunk.tenant == tenant,
                col(KnowledgeChunk.collection).in_(list(collections)),
                col(KnowledgeChunk.embedding).is_not(None),
            )
            .order_by(col(KnowledgeChunk.id))
            .limit(scan_max)
        )
        scored = [
            (cosine(query_vector, embedding), chunk_id)
            for chunk_id, embedding in result.all()
            if chunk_id is not None and embedding
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [chunk_id for score, chunk_id in scored[:limit] if score > 0]

    async def _pgvector_nearest(
        self,
        session: AsyncSession,
        tenant: str,
        collections: Sequence[str],
        query_vector: Sequence[float],
        limit: int,
    ) -> list[int]:
        # Not exercised by this repository's tests: their PostgreSQL has no pgvector.
        ranked = await session.exec(  # type: ignore[call-overload]
            pgvector_nearest(collections),
            params={
                "tenant": tenant,
                "query": "[" + ",".join(repr(float(value)) for value in query_vector) + "]",
                "dimensions": len(query_vector),
                "limit": limit,
            },
        )
        return [int(row[0]) for row in ranked.all()]

    async def _hits(self, session: AsyncSession, tenant: str, ids: list[int]) -> list[ChunkHit]:
        if not ids:
            return []
        result = await session.exec(
            select(KnowledgeChunk, KnowledgeDocument)
            .join(KnowledgeDocument, col(KnowledgeDocument.id) == KnowledgeChunk.document_key)
            .where(col(KnowledgeChunk.id).in_(ids), KnowledgeChunk.tenant == tenant)
        )
        by_id: dict[int, ChunkHit] = {}
        for chunk, document in result.all():
            assert chunk.id is not None  # a stored chunk always has its key
            by_id[chunk.id] = ChunkHit(
                chunk_id=chunk.id,
                collection=chunk.collection,
                document_id=document.document_id,
                title=document.title,
                url=document.url,
                heading=chunk.heading,
                text=chunk.text,
                position=chunk.position,
            )
        return [by_id[chunk_id] for chunk_id in ids if chunk_id in by_id]
