"""The vector side of knowledge search: how a query's nearest chunks are found.

Embeddings are stored as JSON lists of floats on ``knowledge_chunk`` in both databases, so
either way of comparing them works on the same rows:

* **exact scan** (always available): the stored vectors of at most a named number of chunks
  (``PARLEY_KNOWLEDGE_VECTOR_SCAN_MAX``, the oldest first, so the scanned set is stable) are
  read and compared by cosine similarity in the worker. Its cost grows with the bound; chunks
  past it are found by full text only.
* **pgvector**: when the PostgreSQL database has the ``vector`` extension installed
  (``CREATE EXTENSION vector``), PostgreSQL compares every embedded chunk of the searched
  collections itself, with pgvector's cosine distance over the stored JSON cast to ``vector``,
  and returns only the nearest ids. Nothing is read into the worker and no bound applies.
  There is no approximate (HNSW) index: that needs a column of one fixed dimension, and the
  dimension belongs to whichever embedding model a deployment configures.

Which one a worker uses is decided once, at startup (:func:`detect_vector_search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Final

from sqlalchemy import TextClause, bindparam, text

from storage.db import Database


class VectorSearch(StrEnum):
    """How the nearest chunks to a query vector are found."""

    EXACT_SCAN = "exact_scan"
    PGVECTOR = "pgvector"


PGVECTOR_INSTALLED: Final = "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
"""Whether this PostgreSQL database has the pgvector extension installed (not merely available
to install: only an installed extension has its type and operators in the database)."""


async def detect_vector_search(db: Database, *, allow_pgvector: bool) -> VectorSearch:
    """pgvector when it is allowed, the database is PostgreSQL and the extension is installed;
    the exact scan otherwise."""
    if not allow_pgvector or db.is_sqlite:
        return VectorSearch.EXACT_SCAN
    async with db.engine.connect() as connection:
        found = (await connection.exec_driver_sql(PGVECTOR_INSTALLED)).first()
    return VectorSearch.PGVECTOR if found is not None else VectorSearch.EXACT_SCAN


def pgvector_nearest(collections: Sequence[str]) -> TextClause:
    """pgvector search of one tenant's ``collections``: the ids of the chunks nearest to the
    query by cosine distance, nearest first; binds ``tenant``, ``query`` (the vector as a
    JSON-style list), ``dimensions`` (its length) and ``limit``.

    Chunks embedded with a different number of dimensions (another model) are skipped rather
    than failing the query, and only chunks with a positive similarity (distance below 1) are
    kept, as the exact scan does.
    """
    return text(
        "SELECT id FROM ("
        "SELECT c.id, CAST(CAST(c.embedding AS text) AS vector) "
        "<=> CAST(CAST(:query AS text) AS vector) AS distance "
        "FROM knowledge_chunk c "
        "WHERE c.tenant = :tenant AND c.collection IN :collections "
        "AND c.embedding IS NOT NULL AND json_array_length(c.embedding) = :dimensions"
        ") AS scored WHERE distance < 1 ORDER BY distance, id LIMIT :limit"
    ).bindparams(bindparam("collections", value=list(collections), expanding=True))
