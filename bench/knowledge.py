"""Knowledge search benchmark: ingest throughput and search latency for 10,000 chunks, on SQLite
(FTS5) and PostgreSQL (tsvector + GIN).

    .venv/bin/python -m bench.knowledge [--chunks 10000] [--queries 300] [--out result.json]

Documents are made up here, deterministically: Markdown pages of ten sections, each section a
paragraph of about 70 words drawn from a vocabulary of 6,000 made-up words with a Zipf-like
skew, so some words are in most chunks and most words in few, as in real text. Each document
is added through the same ingest path as ``parley knowledge add`` (extraction, tiktoken
chunking, one transaction per document). Queries are four words of a random chunk plus two
common words, searched through ``KnowledgeStore.search`` as ``search_knowledge`` does; each
query's latency is its wall time in this process. PostgreSQL runs in a database made for the
run and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.config import Settings
from server.knowledge.chunking import ChunkBudget, Chunker
from server.knowledge.extraction import DocumentFormat
from server.knowledge.ingest import DocumentInput, KnowledgeIngest
from server.turns.token_counting import TokenCounter
from storage.db import Database
from storage.knowledge import KnowledgeStore

SECTIONS_PER_DOCUMENT = 10
WORDS_PER_SECTION = 70
VOCABULARY = 6_000
POSTGRES_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SYLLABLES = ["ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "vu", "xe", "yo", "za", "bri", "dan"]


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def document(rng: random.Random, words: list[str], weights: list[float], number: int) -> bytes:
    lines = [f"# Handbook page {number}", ""]
    for section in range(SECTIONS_PER_DOCUMENT):
        lines += [f"## Section {section}", ""]
        lines += [" ".join(rng.choices(words, weights, k=WORDS_PER_SECTION)) + ".", ""]
    return "\n".join(lines).encode()


async def run_backend(url: str, chunks: int, queries: int) -> dict[str, Any]:
    db = Database(url)
    await db.migrate()
    settings = Settings()
    store = KnowledgeStore(db)
    # Sections of ~70 words stay under the default budget: one chunk each.
    budget = ChunkBudget(settings.knowledge_chunk_tokens, settings.knowledge_chunk_overlap_tokens)
    ingest = KnowledgeIngest(
        store,
        Chunker(TokenCounter(settings.model), budget),
        budget,
        settings.knowledge_document_max_bytes,
    )
    rng = random.Random(7)
    words = vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    documents = [
        document(rng, words, weights, number) for number in range(chunks // SECTIONS_PER_DOCUMENT)
    ]
    started = time.perf_counter()
    for number, data in enumerate(documents):
        await ingest.add(
            "bench", "handbook", DocumentInput(f"page-{number}.md", DocumentFormat.MARKDOWN, data)
        )
    ingest_s = time.perf_counter() - started
    stored = await store.chunk_count("bench", "handbook")

    latencies: list[float] = []
    found = 0
    for _ in range(queries):
        page = rng.choice(documents).decode().split("\n\n")
        paragraph = rng.choice([part for part in page if not part.startswith("#")]).split()
        question = " ".join([*rng.sample(paragraph, 4), "the", words[0]])
        began = time.perf_counter()
        hits = await store.search(
            "bench",
            ["handbook"],
            question,
            limit=settings.knowledge_search_results,
            max_terms=settings.knowledge_query_max_terms,
        )
        latencies.append((time.perf_counter() - began) * 1000)
        found += bool(hits)
    await db.close()
    latencies.sort()
    return {
        "chunks": stored,
        "documents": len(documents),
        "ingest_s": round(ingest_s, 2),
        "ingest_chunks_per_s": round(stored / ingest_s, 1),
        "queries": queries,
        "queries_with_hits": found,
        "search_p50_ms": round(statistics.median(latencies), 2),
        "search_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
    }


async def _postgres(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def main(chunks: int, queries: int) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="parley-bench-knowledge-") as folder:
        sqlite_url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        results["sqlite"] = await run_backend(sqlite_url, chunks, queries)
    name = f"parley_bench_{secrets.token_hex(4)}"
    await _postgres(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        results["postgresql"] = await run_backend(url, chunks, queries)
    finally:
        await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    results["load_average_after"] = os.getloadavg()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main(args.chunks, args.queries))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
