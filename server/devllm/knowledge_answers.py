"""The dev model's answer to a ``search_knowledge`` result: the top passages, each followed by
its marker, so the answer cites its sources as a real model is asked to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEARCH_TOOL = "search_knowledge"
# Passages quoted and characters quoted of each: together well within MAX_ANSWER_CHARS, so
# shortening the answer never cuts a marker off.
QUOTED_PASSAGES = 3
QUOTE_CHARS = 220
NOTHING_FOUND = "I found nothing about that in the documents I can search."


def answer_knowledge(data: Any) -> str | None:
    """The cited answer to a search result; None when ``data`` is not one."""
    if not isinstance(data, Mapping) or not isinstance(data.get("passages"), list):
        return None
    passages = [
        passage
        for passage in data["passages"]
        if isinstance(passage, Mapping) and isinstance(passage.get("marker"), str)
    ][:QUOTED_PASSAGES]
    if not passages:
        return NOTHING_FOUND
    quoted = [f"{_quote(str(passage.get('text', '')))} {passage['marker']}" for passage in passages]
    return "From the documents: " + " ".join(quoted)


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= QUOTE_CHARS:
        return flat
    return flat[: QUOTE_CHARS - 1].rsplit(" ", 1)[0] + "…"
