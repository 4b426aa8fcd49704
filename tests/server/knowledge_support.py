"""Documents and a database for the knowledge tests: Markdown, HTML and a PDF made here."""

from __future__ import annotations

from fpdf import FPDF

from server.config import Settings
from server.knowledge.chunking import ChunkBudget, Chunker
from server.knowledge.embeddings import Embedder
from server.knowledge.ingest import KnowledgeIngest
from server.turns.token_counting import TokenCounter
from storage.knowledge import KnowledgeStore

POLICY_MD = b"""# Purchasing policy

Every purchase goes through a purchase order raised in the ERP before the goods are ordered.

## Approval limits

A buyer may approve purchase orders up to 5,000 EUR. Orders above 5,000 EUR need the finance
manager; above 50,000 EUR the managing director signs as well.

## Preferred suppliers

Office furniture comes from Nordholz; laptops from Brightline.
"""

TRAVEL_HTML = b"""<!doctype html><html><head><title>Travel guide</title>
<style>p { color: red }</style></head><body>
<nav>Home | Policies</nav>
<h1>Travel guide</h1>
<p>Book trains for journeys under four hours.</p>
<h2>Hotels</h2>
<p>Hotel nights are reimbursed up to <b>140 EUR</b> in capital cities.</p>
<script>var hidden = "never indexed";</script>
</body></html>"""


def safety_pdf() -> bytes:
    """A one-page PDF with a known sentence, written with fpdf2."""
    pdf = FPDF()
    pdf.set_title("Warehouse safety")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Forklift drivers renew their licence every three years.")
    return bytes(pdf.output())


def ingest_for(store: KnowledgeStore, embedder: Embedder | None = None) -> KnowledgeIngest:
    settings = Settings()
    budget = ChunkBudget(settings.knowledge_chunk_tokens, settings.knowledge_chunk_overlap_tokens)
    chunker = Chunker(TokenCounter(settings.model), budget)
    return KnowledgeIngest(store, chunker, budget, settings.knowledge_document_max_bytes, embedder)
