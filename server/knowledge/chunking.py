"""Splitting a document's sections into chunks that fit a token budget.

A chunk never crosses a heading: each section is packed paragraph by paragraph until the next
paragraph would pass the budget. Consecutive chunks of one section share their last
``overlap`` tokens, so a sentence cut at a boundary is whole in one of them. A paragraph
longer than the budget on its own is cut by tokens. Tokens are counted with tiktoken, the way
the model counts them (``server/turns/token_counting.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.knowledge.extraction import Section
from server.turns.token_counting import TokenCounter
from storage.knowledge import ChunkDraft

HEADING_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class ChunkBudget:
    """How big a chunk may be and how much consecutive chunks share, in tokens."""

    tokens: int
    overlap: int

    def __post_init__(self) -> None:
        if self.tokens < 16 or not 0 <= self.overlap < self.tokens // 2:
            raise ValueError("a chunk needs at least 16 tokens and an overlap below half of them")


class Chunker:
    """Cuts sections into `ChunkDraft` under a `ChunkBudget`."""

    def __init__(self, counter: TokenCounter, budget: ChunkBudget) -> None:
        self._counter = counter
        self._budget = budget

    def chunks(self, sections: list[Section]) -> list[ChunkDraft]:
        """The chunks of a document, numbered from 0 in reading order."""
        drafts: list[ChunkDraft] = []
        for section in sections:
            heading = HEADING_SEPARATOR.join(section.headings)
            for text in self._pack(section.paragraphs):
                drafts.append(
                    ChunkDraft(
                        position=len(drafts),
                        heading=heading,
                        text=text,
                        tokens=self._counter.count_text(text),
                    )
                )
        return drafts

    def _pack(self, paragraphs: list[str]) -> list[str]:
        pieces = [piece for paragraph in paragraphs for piece in self._fit(paragraph)]
        chunks: list[str] = []
        current: list[str] = []
        size = 0
        for piece in pieces:
            cost = self._counter.count_text(piece)
            if current and size + cost > self._budget.tokens:
                chunks.append("\n\n".join(current))
                current = [self._tail(current[-1])] if self._budget.overlap else []
                current = [part for part in current if part]
                size = sum(self._counter.count_text(part) for part in current)
                if size + cost > self._budget.tokens:
                    current, size = [], 0
            current.append(piece)
            size += cost
        if current:
            chunks.append("\n\n".join(current))
        return chunks

    def _fit(self, paragraph: str) -> list[str]:
        """The paragraph, cut by tokens when it alone passes the budget."""
        if self._counter.count_text(paragraph) <= self._budget.tokens:
            return [paragraph]
        step = self._budget.tokens - self._budget.overlap
        words = paragraph.split()
        pieces: list[str] = []
        start = 0
        while start < len(words):
            end = self._words_within(words, start, self._budget.tokens)
            pieces.append(" ".join(words[start:end]))
            if end >= len(words):
                break
            start = max(start + 1, self._words_within(words, start, step))
        return pieces

    def _words_within(self, words: list[str], start: int, tokens: int) -> int:
        """The index after the most words from ``start`` whose text fits in ``tokens``."""
        low, high = start + 1, len(words)
        while low < high:
            middle = (low + high + 1) // 2
            if self._counter.count_text(" ".join(words[start:middle])) <= tokens:
                low = middle
            else:
                high = middle - 1
        return low

    def _tail(self, text: str) -> str:
        """The last words of ``text`` that fit in the overlap."""
        words = text.split()
        low, high = 0, len(words)
        while low < high:
            middle = (low + high) // 2
            if self._counter.count_text(" ".join(words[middle:])) <= self._budget.overlap:
                high = middle
            else:
                low = middle + 1
        return " ".join(words[low:])
