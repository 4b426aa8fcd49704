"""Knowledge search with embeddings on, through a running server: documents added over REST are
embedded by the model endpoint's ``/v1/embeddings`` (the dev model's deterministic vectors),
and a question over the socket is answered from full-text and vector rankings fused.

The dev model's vectors are hashed words, so they know no synonyms: the vector side can only
rank differently, not find a word the full text misses. The question here is one whose cited
answer changes with it: the full text alone ranks first the passage with the question's rare
word, the vectors rank first the short passage made of its common one, and the fused answer
cites that one as [1].
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from server.devllm.embeddings import DIMENSIONS, embed
from storage.db import Database
from storage.knowledge import KnowledgeStore
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of
from tests.server.rest_support import Callers, start_server

pytestmark = pytest.mark.timeout(180)

QUESTION = "hotel wifi"
DOCUMENTS = {
    # "wifi" is in this document only, so BM25 weighs it high; the passage is long.
    "network.md": "# Office network\n\nGuests connect to the visitor network; the wifi password "
    "changes every Monday and reception hands it out with the visitor badge, together with the "
    "printer code and the meeting room booking sheet for the day.\n",
    # "hotel" is in most documents (little weight in full text), twice in this short passage.
    "hotels.md": "# Hotels\n\nHotel nights: book the hotel through the travel desk.\n",
    "travel.md": "# Travel\n\nTrains for journeys under four hours; the hotel is booked "
    "separately.\n",
    "expenses.md": "# Expenses\n\nReceipts for the hotel, meals and taxis go into the expense "
    "report.\n",
}


@pytest.fixture(scope="module")
def embedded_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
) -> Iterator[ParleyServer]:
    """One in-process server on SQLite with embeddings from the dev model."""
    server = start_server(
        "embedded",
        request,
        tmp_path_factory.mktemp("vectors"),
        dev_model,
        PARLEY_KNOWLEDGE_EMBEDDINGS="1",
        PARLEY_KNOWLEDGE_EMBEDDING_MODEL="dev-embedding",
    )
    yield server
    server.stop()


@pytest.fixture
async def callers(embedded_server: ParleyServer) -> AsyncIterator[Callers]:
    made = Callers(embedded_server)
    yield made
    await made.aclose()


async def ranked_apart(database_url: str, tenant: str) -> tuple[list[str], list[str]]:
    """The documents the full text alone and the vectors alone rank for the question, read
    from the server's own database."""
    db = Database(database_url)
    try:
        store = KnowledgeStore(db)
        full_text = await store.search(tenant, ["travel"], QUESTION, limit=4, max_terms=32)
        # "zzz" matches no chunk: what comes back, the vector side found.
        by_vector = await store.search(
            tenant,
            ["travel"],
            "zzz",
            limit=4,
            max_terms=32,
            query_vector=embed(QUESTION),
            vector_scan_max=100,
        )
    finally:
        await db.close()
    return [hit.document_id for hit in full_text], [hit.document_id for hit in by_vector]


async def test_an_answer_over_the_socket_is_ranked_by_full_text_and_vectors_fused(
    embedded_server: ParleyServer, callers: Callers
) -> None:
    tenant = f"t-{secrets.token_hex(4)}"
    admin = callers.new(tenant=tenant, roles=("admin",))
    for document_id, text in DOCUMENTS.items():
        stored = await admin.http.put(
            f"/knowledge/travel/documents/{document_id}",
            json={"format": "markdown", "content": text},
        )
        assert stored.status_code == 200, stored.text
    # The worker found no pgvector (SQLite) and embedded every chunk through the endpoint.
    assert "knowledge vector search: exact_scan" in embedded_server.output()
    vectors = await rows(
        embedded_server.config.database_url,
        "SELECT embedding FROM knowledge_chunk WHERE tenant = :t",
        t=tenant,
    )
    assert len(vectors) == len(DOCUMENTS)
    for (stored_vector,) in vectors:
        values = json.loads(stored_vector) if isinstance(stored_vector, str) else stored_vector
        assert len(values) == DIMENSIONS

    full_text, by_vector = await ranked_apart(embedded_server.config.database_url, tenant)
    assert full_text[0] == "network.md"
    assert by_vector[0] == "hotels.md"

    member = callers.new(tenant=tenant)
    tab = await member.tab()
    frames = await tab.ask(QUESTION, "v-1")
    (call,) = frames_of(frames, "tool_call")
    assert call["name"] == "search_knowledge"
    (response,) = frames_of(frames, "response")
    markers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", response["text"])})
    citations = response["citations"]
    assert [citation["n"] for citation in citations] == markers
    # Fused, the vectors' first passage leads (the full text alone put it second): by
    # reciprocal rank it scores 1/62 + 1/61 against network.md's 1/61 + 1/64...
    assert citations[0]["document_id"] == "hotels.md"
    assert response["text"].startswith("From the documents: Hotel nights")
    # ...and the full text's first is still cited, just after it.
    assert citations[1]["document_id"] == "network.md"
    await tab.close()

    # REST search goes through the same fused ranking.
    found = (await member.get("/knowledge/search", q=QUESTION)).json()["items"]
    assert [item["document_id"] for item in found][:2] == ["hotels.md", "network.md"]
