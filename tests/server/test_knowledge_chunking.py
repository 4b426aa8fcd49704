"""Chunking and extraction, on their own (no I/O): chunks follow headings, stay within the
token budget, and consecutive chunks of a section share their overlap."""

from __future__ import annotations

import itertools

import pytest

from server.knowledge.chunking import ChunkBudget, Chunker
from server.knowledge.extraction import DocumentFormat, Section, extract
from server.turns.token_counting import TokenCounter

COUNTER = TokenCounter("gpt-4o-mini")


def sentences(prefix: str, count: int) -> str:
    return " ".join(f"{prefix} sentence number {index} ends here." for index in range(count))


def test_chunks_keep_their_heading_path_and_never_cross_a_heading() -> None:
    extracted = extract(
        b"# Policy\n\nIntro.\n\n## Limits\n\nUp to 5,000.\n\n```\n# not a heading\n```\n\n"
        b"### Exceptions\n\nNone.\n\n# Appendix\n\nMore.\n",
        DocumentFormat.MARKDOWN,
    )
    chunks = Chunker(COUNTER, ChunkBudget(64, 8)).chunks(extracted.sections)
    assert [(chunk.position, chunk.heading) for chunk in chunks] == [
        (0, "Policy"),
        (1, "Policy > Limits"),
        (2, "Policy > Limits > Exceptions"),
        (3, "Appendix"),
    ]
    assert "# not a heading" in chunks[1].text
    assert extracted.title == "Policy"


def test_chunks_fit_the_budget_and_consecutive_ones_overlap() -> None:
    budget = ChunkBudget(60, 12)
    paragraphs = [sentences(f"p{index}", 3) for index in range(8)]
    chunks = Chunker(COUNTER, budget).chunks([Section(("Guide",), paragraphs)])
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.tokens == COUNTER.count_text(chunk.text)
        assert chunk.tokens <= budget.tokens
    for before, after in itertools.pairwise(chunks):
        # The next chunk starts with the last words of the one before.
        shared = after.text.split("\n\n")[0]
        assert before.text.endswith(shared)
        assert 0 < COUNTER.count_text(shared) <= budget.overlap
    # Nothing is lost: every paragraph's last sentence is in some chunk.
    for paragraph in paragraphs:
        assert any(paragraph.split(". ")[-1] in chunk.text for chunk in chunks)


def test_a_paragraph_longer_than_the_budget_is_cut_by_tokens() -> None:
    budget = ChunkBudget(40, 8)
    long = sentences("long", 30)
    chunks = Chunker(COUNTER, budget).chunks([Section((), [long])])
    assert len(chunks) > 3
    assert all(chunk.tokens <= budget.tokens for chunk in chunks)
    assert chunks[0].text.startswith("long sentence number 0")
    assert chunks[-1].text.endswith("number 29 ends here.")


def test_html_drops_scripts_and_navigation_and_follows_headings() -> None:
    extracted = extract(
        b"<html><head><title>Guide</title><script>secret()</script></head><body>"
        b"<nav>Home</nav><h1>Travel</h1><p>Trains <b>first</b>.</p><h2>Hotels</h2>"
        b"<ul><li>Up to 140 EUR</li></ul></body></html>",
        DocumentFormat.HTML,
    )
    assert extracted.title == "Guide"
    assert [(section.headings, section.paragraphs) for section in extracted.sections] == [
        (("Travel",), ["Trains first ."]),
        (("Travel", "Hotels"), ["Up to 140 EUR"]),
    ]


def test_a_budget_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ChunkBudget(100, 60)
