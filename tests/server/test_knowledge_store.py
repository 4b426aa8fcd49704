"""Ingesting documents and searching them with the database's own full-text engine, on SQLite
(FTS5) and PostgreSQL (tsvector + GIN): the right chunk is found, unchanged documents write
nothing, changed ones replace their chunks, deleted ones leave nothing behind, and a search
never crosses a tenant or a collection it was not given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.devllm.app import create_devllm_app
from server.devllm.transport import in_process_client
from server.knowledge.embeddings import Embedder
from server.knowledge.extraction import DocumentFormat
from server.knowledge.ingest import DocumentInput
from storage.db import Database
from storage.errors import NotFound
from storage.knowledge import KnowledgeStore, PutOutcome, reciprocal_rank_fusion
from storage.knowledge_vectors import VectorSearch
from tests.server.db import rows
from tests.server.knowledge_support import POLICY_MD, TRAVEL_HTML, ingest_for, safety_pdf

TERMS = 32


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'knowledge.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[KnowledgeStore]:
    db = Database(database_url)
    await db.migrate()
    try:
        yield KnowledgeStore(db)
    finally:
        await db.close()


def _doc(document_id: str, kind: DocumentFormat, data: bytes, **extra: str) -> DocumentInput:
    return DocumentInput(document_id=document_id, kind=kind, data=data, **extra)  # type: ignore[arg-type]


async def test_markdown_html_and_pdf_are_found_by_their_own_words(
    store: KnowledgeStore,
) -> None:
    ingest = ingest_for(store)
    added = [
        await ingest.add(
            "acme",
            "policies",
            _doc(
                "purchasing.md",
                DocumentFormat.MARKDOWN,
                POLICY_MD,
                url="https://erp.example/wiki/purchasing",
            ),
        ),
        await ingest.add("acme", "policies", _doc("travel.html", DocumentFormat.HTML, TRAVEL_HTML)),
        await ingest.add("acme", "policies", _doc("safety.pdf", DocumentFormat.PDF, safety_pdf())),
    ]
    assert added == [PutOutcome.CREATED] * 3

    hits = await store.search(
        "acme",
        ["policies"],
        "What is the approval limit for purchase orders?",
        limit=3,
        max_terms=TERMS,
    )
    assert hits[0].document_id == "purchasing.md"
    assert hits[0].heading == "Purchasing policy > Approval limits"
    assert "5,000 EUR" in hits[0].text
    assert hits[0].title == "Purchasing policy"
    assert hits[0].url == "https://erp.example/wiki/purchasing"

    hotel = await store.search(
        "acme", ["policies"], "hotel night reimbursed", limit=3, max_terms=TERMS
    )
    assert hotel[0].document_id == "travel.html"
    assert hotel[0].title == "Travel guide"
    assert hotel[0].heading == "Travel guide > Hotels"
    assert "140 EUR" in hotel[0].text
    # Script, style and navigation are not text of the page.
    assert (
        await store.search("acme", ["policies"], "hidden indexed", limit=3, max_terms=TERMS) == []
    )

    forklift = await store.search(
        "acme", ["policies"], "forklift licence", limit=3, max_terms=TERMS
    )
    assert [hit.document_id for hit in forklift] == ["safety.pdf"]
    assert forklift[0].title == "Warehouse safety"
    assert "three years" in forklift[0].text


async def test_unchanged_writes_nothing_changed_replaces_deleted_removes(
    store: KnowledgeStore, database_url: str
) -> None:
    ingest = ingest_for(store)
    document = _doc("purchasing.md", DocumentFormat.MARKDOWN, POLICY_MD)
    assert await ingest.add("acme", "policies", document) is PutOutcome.CREATED
    before = await rows(database_url, "SELECT id, updated_at FROM knowledge_document")
    chunks_before = await rows(database_url, "SELECT id FROM knowledge_chunk ORDER BY id")

    assert await ingest.add("acme", "policies", document) is PutOutcome.UNCHANGED
    assert await rows(database_url, "SELECT id, updated_at FROM knowledge_document") == before
    assert await rows(database_url, "SELECT id FROM knowledge_chunk ORDER BY id") == chunks_before

    changed = POLICY_MD.replace(b"A buyer may", b"A purchaser may")
    replaced = _doc("purchasing.md", DocumentFormat.MARKDOWN, changed)
    assert await ingest.add("acme", "policies", replaced) is PutOutcome.REPLACED
    chunks_after = await rows(database_url, "SELECT id FROM knowledge_chunk ORDER BY id")
    assert len(chunks_after) == len(chunks_before)
    assert set(chunks_after).isdisjoint(chunks_before)
    hits = await store.search("acme", ["policies"], "approval limits", limit=1, max_terms=TERMS)
    assert "A purchaser may" in hits[0].text
    # The old words are gone from the full-text index too, not only from the table.
    assert await store.search("acme", ["policies"], "buyer", limit=5, max_terms=TERMS) == []

    await store.delete_document("acme", "policies", "purchasing.md")
    assert await rows(database_url, "SELECT count(*) FROM knowledge_chunk") == [(0,)]
    assert (
        await store.search("acme", ["policies"], "approval limits", limit=5, max_terms=TERMS) == []
    )
    with pytest.raises(NotFound):
        await store.delete_document("acme", "policies", "purchasing.md")


async def test_a_search_keeps_to_its_tenant_and_collections(store: KnowledgeStore) -> None:
    ingest = ingest_for(store)
    policy = _doc("purchasing.md", DocumentFormat.MARKDOWN, POLICY_MD)
    await ingest.add("acme", "policies", policy)
    await ingest.add("globex", "policies", policy)
    await ingest.add(
        "acme",
        "board",
        _doc(
            "minutes.md",
            DocumentFormat.MARKDOWN,
            b"# Minutes\n\nThe approval limit of buyers rises next year.",
        ),
    )
    await store.put_collection("acme", "board", roles=["director"])

    only_acme = await store.search(
        "acme", ["policies"], "approval limit", limit=10, max_terms=TERMS
    )
    assert {hit.collection for hit in only_acme} == {"policies"}
    globex = await store.search(
        "globex", ["policies", "board"], "approval limit", limit=10, max_terms=TERMS
    )
    assert {hit.document_id for hit in globex} == {"purchasing.md"}

    clerk = await store.visible_collections("acme", frozenset({"clerk"}))
    director = await store.visible_collections("acme", frozenset({"director"}))
    assert [found.name for found in clerk] == ["policies"]
    assert [found.name for found in director] == ["board", "policies"]


async def test_with_embeddings_vector_similarity_is_fused_with_full_text(
    store: KnowledgeStore,
) -> None:
    """The dev model's deterministic embeddings through the real openai client: a passage
    that shares no searchable word with the question can still be found by its vector, and
    one found both ways ranks first."""
    client = in_process_client(create_devllm_app(token_rate=0))
    embedder = Embedder(client, "dev-embedding", batch=2)
    ingest = ingest_for(store, embedder=embedder)
    await ingest.add("acme", "policies", _doc("purchasing.md", DocumentFormat.MARKDOWN, POLICY_MD))
    stored = await store.search("acme", ["policies"], "laptops", limit=1, max_terms=TERMS)
    assert stored[0].document_id == "purchasing.md"

    (vector,) = await embedder.embed(["Office furniture comes from Nordholz"])
    # No word of the question is in the full-text index ("zzz" matches nothing), yet the
    # vector finds the passage with those words.
    by_vector = await store.search(
        "acme",
        ["policies"],
        "zzz",
        limit=1,
        max_terms=TERMS,
        query_vector=vector,
        vector_scan_max=100,
    )
    assert by_vector[0].heading == "Purchasing policy > Preferred suppliers"
    # A scan bound of zero compares nothing: only full text is left, and it finds nothing.
    assert (
        await store.search(
            "acme", ["policies"], "zzz", limit=1, max_terms=TERMS, query_vector=vector
        )
        == []
    )
    # Another tenant's vectors are never compared.
    assert (
        await store.search(
            "globex",
            ["policies"],
            "zzz",
            limit=1,
            max_terms=TERMS,
            query_vector=vector,
            vector_scan_max=100,
        )
        == []
    )


async def test_without_pgvector_the_exact_scan_is_used_and_keeps_to_its_bound(
    store: KnowledgeStore,
) -> None:
    """Neither database here has pgvector (SQLite never does; this PostgreSQL has not the
    extension): detection says so and searches compare vectors by the exact scan, which reads
    at most its bound of chunks, the oldest first."""
    assert await store.detect_vectors(allow_pgvector=True) is VectorSearch.EXACT_SCAN
    assert await store.detect_vectors(allow_pgvector=False) is VectorSearch.EXACT_SCAN
    assert store.vector_search is VectorSearch.EXACT_SCAN

    client = in_process_client(create_devllm_app(token_rate=0))
    embedder = Embedder(client, "dev-embedding", batch=8)
    ingest = ingest_for(store, embedder=embedder)
    older = b"# Canteen\n\nLunch served daily from noon upstairs.\n"
    newer = b"# Parking\n\nVisitors park behind the warehouse gate.\n"
    await ingest.add("acme", "notes", _doc("canteen.md", DocumentFormat.MARKDOWN, older))
    await ingest.add("acme", "notes", _doc("parking.md", DocumentFormat.MARKDOWN, newer))
    (vector,) = await embedder.embed(["Visitors park behind the warehouse gate"])

    async def by_vector(scan_max: int) -> list[str]:
        # "zzz" is in no chunk: whatever is found, the vector side found.
        hits = await store.search(
            "acme",
            ["notes"],
            "zzz",
            limit=2,
            max_terms=TERMS,
            query_vector=vector,
            vector_scan_max=scan_max,
        )
        return [hit.document_id for hit in hits]

    assert await by_vector(2) == ["parking.md"]
    # With room for one chunk only the older one is compared, and it shares no word: the
    # newer passage is beyond the bound, so nothing is found.
    assert await by_vector(1) == []


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    assert reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]]) == [1, 3, 2, 4]
    assert reciprocal_rank_fusion([[], [7]]) == [7]
