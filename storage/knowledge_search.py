"""The database's own full-text engines over knowledge chunks: SQLite FTS5 and PostgreSQL
``tsvector`` with a GIN index.

The two need DDL that SQLModel cannot describe, so the migration creates them with the
statements here, and the schema comparison (``include_name``) leaves them out. Queries are
built from the words of the question, joined by OR and ranked by the engine (BM25 on SQLite,
``ts_rank_cd`` on PostgreSQL): a question in plain language should find the passage that
shares most of its rarer words, not only one that contains every word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from sqlalchemy import TextClause, bindparam, text

FTS_TABLE: Final = "knowledge_fts"
"""SQLite: the FTS5 table over ``knowledge_chunk`` (external content, kept by triggers)."""

SEARCH_COLUMN: Final = "search_vector"
"""PostgreSQL: the generated ``tsvector`` column of ``knowledge_chunk``."""

SEARCH_INDEX: Final = "ix_knowledge_chunk_search"
"""PostgreSQL: the GIN index on :data:`SEARCH_COLUMN`."""

TEXT_SEARCH_CONFIG: Final = "english"
"""PostgreSQL text-search configuration (stemming and stop words)."""

SQLITE_DDL: Final = (
    # The Porter stemmer lets "limits" find "limit"; unicode61 folds case and diacritics.
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(heading, text, content='knowledge_chunk', "
    "content_rowid='id', tokenize='porter unicode61')",
    f"CREATE TRIGGER knowledge_chunk_fts_insert AFTER INSERT ON knowledge_chunk BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    f"CREATE TRIGGER knowledge_chunk_fts_delete AFTER DELETE ON knowledge_chunk BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); END",
)
SQLITE_DROP: Final = (
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_delete",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_insert",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)
POSTGRES_DDL: Final = (
    f"ALTER TABLE knowledge_chunk ADD COLUMN {SEARCH_COLUMN} tsvector GENERATED ALWAYS AS "
    f"(setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', heading), 'A') || "
    f"to_tsvector('{TEXT_SEARCH_CONFIG}', text)) STORED",
    f"CREATE INDEX {SEARCH_INDEX} ON knowledge_chunk USING gin ({SEARCH_COLUMN})",
)
POSTGRES_DROP: Final = (
    f"DROP INDEX IF EXISTS {SEARCH_INDEX}",
    f"ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS {SEARCH_COLUMN}",
)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name``: False for the search engines' objects, which the models do not
    describe (the FTS5 table and its shadow tables, the ``tsvector`` column and its index)."""
    if name is None:
        return True
    if type_ == "table" and name.startswith(FTS_TABLE):
        return False
    if type_ == "column" and name == SEARCH_COLUMN:
        return False
    return not (type_ == "index" and name == SEARCH_INDEX)


_WORD = re.compile(r"\w+")


def query_words(question: str, max_terms: int) -> list[str]:
    """The distinct words of a question, lowercased, at most ``max_terms`` of them.

    Only word characters pass, so nothing of either engine's query syntax can reach it.
    """
    words: list[str] = []
    for word in _WORD.findall(question.lower()):
        if word not in words:
            words.append(word)
        if len(words) == max_terms:
            break
    return words


def sqlite_search(collections: Sequence[str]) -> TextClause:
    """FTS5 search of one tenant's ``collections``; binds ``tenant``, ``match``, ``limit``."""
    return text(
        f"SELECT c.id, bm25({FTS_TABLE}, 2.0, 1.0) AS rank FROM {FTS_TABLE} "
        f"JOIN knowledge_chunk c ON c.id = {FTS_TABLE}.rowid "
        f"WHERE {FTS_TABLE} MATCH :match AND c.tenant = :tenant "
        "AND c.collection IN :collections ORDER BY rank LIMIT :limit"
    ).bindparams(bindparam("collections", value=list(collections), expanding=True))


def sqlite_match(words: Sequence[str]) -> str:
    """An FTS5 query matching any of ``words``; each is quoted, so none is an operator."""
    return " OR ".join(f'"{word}"' for word in words)


def postgres_search(collections: Sequence[str]) -> TextClause:
    """tsvector search of one tenant's ``collections``; binds ``tenant``, ``match``, ``limit``."""
    return text(
        f"SELECT c.id, ts_rank_cd(c.{SEARCH_COLUMN}, q.query) AS rank "
        f"FROM knowledge_chunk c, to_tsquery('{TEXT_SEARCH_CONFIG}', :match) AS q(query) "
        f"WHERE c.{SEARCH_COLUMN} @@ q.query AND c.tenant = :tenant "
        "AND c.collection IN :collections ORDER BY rank DESC, c.id LIMIT :limit"
    ).bindparams(bindparam("collections", value=list(collections), expanding=True))


def postgres_match(words: Sequence[str]) -> str:
    """A ``to_tsquery`` text matching any of ``words`` (word characters only, so no syntax)."""
    return " | ".join(words)
