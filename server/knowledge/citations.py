"""The sources of an answer: which ``[n]`` markers its text uses, and the passages behind them.

The passages come from the turn's own ``search_knowledge`` results (as the model saw them), so
a citation always names something the model was actually given; a marker with no passage
behind it (a number the model made up) gets no citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from protocol import Citation

SEARCH_TOOL = "search_knowledge"
"""The name of the built-in search tool whose results carry numbered passages."""

_MARKER = re.compile(r"\[(\d{1,4})\]")


def markers_in(text: str) -> list[int]:
    """The distinct marker numbers of ``text``, in order of first use."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        number = int(match.group(1))
        if number not in seen:
            seen.append(number)
    return seen


def passages_of(tool_rounds: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The numbered passages the turn's searches returned, by number."""
    found: dict[int, dict[str, Any]] = {}
    for round_ in tool_rounds:
        for result in round_.get("results", ()):
            if result.get("name") != SEARCH_TOOL:
                continue
            try:
                content = orjson.loads(result.get("content") or "")
            except orjson.JSONDecodeError:
                continue  # cut short by the result limit: its passages cannot be cited
            if not isinstance(content, dict):
                continue
            for passage in content.get("passages") or ():
                if isinstance(passage, dict) and isinstance(passage.get("n"), int):
                    found.setdefault(passage["n"], passage)
    return found


def citations_for(
    text: str, tool_rounds: Iterable[dict[str, Any]], snippet_chars: int
) -> list[dict[str, Any]]:
    """``[{n, document_id, title, url?, snippet}]`` for the markers ``text`` uses, by number."""
    passages = passages_of(tool_rounds)
    cited: list[dict[str, Any]] = []
    for number in sorted(markers_in(text)):
        passage = passages.get(number)
        if passage is None:
            continue
        citation: dict[str, Any] = {
            "n": number,
            "document_id": str(passage.get("document_id", "")),
            "title": str(passage.get("title", "")),
        }
        if passage.get("url"):
            citation["url"] = str(passage["url"])
        citation["snippet"] = _snippet(str(passage.get("text", "")), snippet_chars)
        cited.append(citation)
    return cited


def _snippet(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def wire_citations(stored: list[dict[str, Any]] | None) -> tuple[Citation, ...] | None:
    """Stored citations (a message's ``citations`` column) as frame values; None for none."""
    if not stored:
        return None
    return tuple(
        Citation(
            n=int(item["n"]),
            document_id=str(item["document_id"]),
            title=str(item["title"]),
            url=item.get("url"),
            snippet=str(item["snippet"]),
        )
        for item in stored
    )
