"""Adding documents to a collection: from bytes (REST) or from a folder (the CLI).

A document's content hash is taken over what decides its chunks (the bytes, the format, the
title and URL given, the chunk budget) before anything is parsed, so adding an unchanged
document again costs one hash and one indexed read, and writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from server.knowledge.chunking import ChunkBudget, Chunker
from server.knowledge.embeddings import Embedder, EmbeddingError
from server.knowledge.extraction import DocumentFormat, ExtractionError, extract, format_of
from storage.knowledge import DocumentDraft, KnowledgeStore, PutOutcome

logger = logging.getLogger(__name__)


class DocumentTooLarge(ValueError):
    """A document is bigger than ``PARLEY_KNOWLEDGE_DOCUMENT_MAX_BYTES``."""


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document as its owner gives it: an id of their choosing, bytes in a known format,
    and optionally a title (else the one the document names, else its id) and a URL back into
    the host app."""

    document_id: str
    kind: DocumentFormat
    data: bytes
    title: str | None = None
    url: str | None = None


@dataclass(slots=True)
class FolderReport:
    """What adding a folder did, file by file."""

    outcomes: dict[str, PutOutcome] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: PutOutcome) -> int:
        return sum(1 for seen in self.outcomes.values() if seen is outcome)


class KnowledgeIngest:
    """Turns documents into chunks and stores them, incrementally."""

    def __init__(
        self,
        store: KnowledgeStore,
        chunker: Chunker,
        budget: ChunkBudget,
        document_max_bytes: int,
        embedder: Embedder | None = None,
    ) -> None:
        self._store = store
        self._chunker = chunker
        self._budget = budget
        self._max_bytes = document_max_bytes
        self._embedder = embedder

    async def add(self, tenant: str, collection: str, document: DocumentInput) -> PutOutcome:
        """Add or replace one document of ``collection``.

        Raises:
            DocumentTooLarge: the document passes the size limit.
            ExtractionError: the bytes are not a readable document of their format.
            storage.errors.Conflict: the same document was being added at the same time.
        """
        if len(document.data) > self._max_bytes:
            raise DocumentTooLarge(
                f"document '{document.document_id}' has {len(document.data)} bytes, "
                f"more than the {self._max_bytes} allowed"
            )
        content_hash = self._hash(document)
        current = await self._store.content_hash(tenant, collection, document.document_id)
        if current == content_hash:
            return PutOutcome.UNCHANGED
        extracted = extract(document.data, document.kind)
        title = document.title or extracted.title or document.document_id
        chunks = self._chunker.chunks(extracted.sections)
        if self._embedder is not None and chunks:
            # The heading path is part of what a passage is about.
            vectors = await self._embedder.embed(
                [f"{chunk.heading}\n{chunk.text}" for chunk in chunks]
            )
            chunks = [
                replace(chunk, embedding=vector)
                for chunk, vector in zip(chunks, vectors, strict=True)
            ]
        draft = DocumentDraft(
            document_id=document.document_id,
            title=title[:500],
            url=document.url,
            content_hash=content_hash,
            chunks=chunks,
        )
        return await self._store.put_document(tenant, collection, draft)

    async def add_folder(
        self,
        tenant: str,
        collection: str,
        folder: Path,
        *,
        url_for: Callable[[str], str | None] = lambda _document_id: None,
    ) -> FolderReport:
        """Add every file of ``folder`` (recursively) whose suffix names a known format; a
        file's id is its path under the folder."""
        report = FolderReport()
        for document_id, kind, path in await asyncio.to_thread(documents_in, folder):
            try:
                document = DocumentInput(
                    document_id=document_id,
                    kind=kind,
                    data=await asyncio.to_thread(path.read_bytes),
                    url=url_for(document_id),
                )
                report.outcomes[document_id] = await self.add(tenant, collection, document)
            except (OSError, DocumentTooLarge, ExtractionError, EmbeddingError) as exc:
                logger.warning("knowledge: %s was not added: %s", path, exc)
                report.failed[document_id] = str(exc)
        return report

    def _hash(self, document: DocumentInput) -> str:
        decisive = [
            document.kind.value,
            document.title,
            document.url,
            self._budget.tokens,
            self._budget.overlap,
            # Turning embeddings on (or changing their model) embeds documents added again.
            self._embedder.model if self._embedder is not None else None,
            hashlib.sha256(document.data).hexdigest(),
        ]
        return hashlib.sha256(orjson.dumps(decisive)).hexdigest()


def documents_in(folder: Path) -> list[tuple[str, DocumentFormat, Path]]:
    """``(document id, format, path)`` of every file under ``folder`` a collection takes, by id.

    Raises:
        FileNotFoundError: there is no such folder.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {str(folder)!r}")
    found: list[tuple[str, DocumentFormat, Path]] = []
    for path in sorted(folder.rglob("*")):
        kind = format_of(path)
        if kind is not None and path.is_file():
            found.append((path.relative_to(folder).as_posix(), kind, path))
    return found
