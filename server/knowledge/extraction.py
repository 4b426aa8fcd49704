"""Text out of the formats a collection takes: Markdown, HTML, plain text and PDF.

Each format becomes a list of `Section`: the headings above a stretch of text and its
paragraphs. Chunking (``chunking.py``) works only on sections, so it never needs to know where
the text came from. Parsing is done by real parsers: markdown-it-py finds Markdown headings
(so a ``#`` inside a code block is not one), Beautiful Soup walks HTML, pypdf reads PDF pages.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath

# The parsers are imported when a document of their format is first read, not when a worker
# starts: most workers never ingest anything.


class DocumentFormat(StrEnum):
    """The formats a document may be given in."""

    MARKDOWN = "markdown"
    HTML = "html"
    TEXT = "text"
    PDF = "pdf"


SUFFIXES: dict[str, DocumentFormat] = {
    ".md": DocumentFormat.MARKDOWN,
    ".markdown": DocumentFormat.MARKDOWN,
    ".html": DocumentFormat.HTML,
    ".htm": DocumentFormat.HTML,
    ".txt": DocumentFormat.TEXT,
    ".text": DocumentFormat.TEXT,
    ".pdf": DocumentFormat.PDF,
}


class ExtractionError(ValueError):
    """A document could not be read as its format (a broken PDF, text that is not UTF-8)."""


@dataclass(slots=True)
class Section:
    """Paragraphs under one heading path (outermost heading first)."""

    headings: tuple[str, ...]
    paragraphs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Extracted:
    """A document's text: its sections in order, and the title it names itself, if any."""

    sections: list[Section]
    title: str | None


def format_of(path: PurePath) -> DocumentFormat | None:
    """The format a file's suffix says, or None for a file a collection does not take."""
    return SUFFIXES.get(path.suffix.lower())


def extract(data: bytes, kind: DocumentFormat) -> Extracted:
    """The sections of a document.

    Raises:
        ExtractionError: the bytes are not a readable document of that format.
    """
    if kind is DocumentFormat.PDF:
        return _pdf(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"not UTF-8 text ({kind.value})") from exc
    if kind is DocumentFormat.MARKDOWN:
        return _markdown(text)
    if kind is DocumentFormat.HTML:
        return _html(text)
    return Extracted([Section((), _paragraphs(text))], None)


_BLANK_LINE = re.compile(r"\n\s*\n")


def _paragraphs(text: str) -> list[str]:
    return [" ".join(part.split()) for part in _BLANK_LINE.split(text) if part.strip()]


def _markdown(text: str) -> Extracted:
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    # (first line, line after, level, heading text) of every heading, from the parser.
    headings: list[tuple[int, int, int, str]] = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            inline = tokens[index + 1]
            headings.append((token.map[0], token.map[1], int(token.tag[1]), inline.content))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    start = 0
    title: str | None = None
    for first, after, level, heading in [*headings, (len(lines), len(lines), 0, "")]:
        body = _paragraphs("\n".join(lines[start:first]))
        if body:
            sections.append(Section(tuple(name for _, name in path), body))
        if not level:
            break
        if title is None and level == 1:
            title = heading
        path = [(known, name) for known, name in path if known < level] + [(level, heading)]
        start = after
    return Extracted(sections, title)


_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCK_TAGS = {"p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption"}
_DROPPED_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer")


def _html(text: str) -> Extracted:
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(text, "html.parser")
    for dropped in soup.find_all(_DROPPED_TAGS):
        dropped.decompose()
    page_title = soup.title.get_text(" ", strip=True) if soup.title else None
    if soup.title is not None:
        soup.title.decompose()
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    current = Section(())
    root = soup.body or soup
    for element in root.find_all([*_HEADING_TAGS, *_BLOCK_TAGS]):
        if not isinstance(element, Tag):
            continue
        if element.name in _BLOCK_TAGS and element.find_parent(list(_BLOCK_TAGS)) is not None:
            continue  # its text is part of the enclosing block's
        words = " ".join(element.get_text(" ", strip=True).split())
        if not words:
            continue
        if element.name in _HEADING_TAGS:
            if current.paragraphs:
                sections.append(current)
            level = int(element.name[1])
            path = [(known, name) for known, name in path if known < level] + [(level, words)]
            current = Section(tuple(name for _, name in path))
            if page_title is None and level == 1:
                page_title = words
        else:
            current.paragraphs.append(words)
    if current.paragraphs:
        sections.append(current)
    return Extracted(sections, page_title or None)


def _pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError(f"not a readable PDF ({exc})") from exc
    sections = [
        Section((f"Page {number}",), _pdf_paragraphs(page))
        for number, page in enumerate(pages, start=1)
        if page.strip()
    ]
    return Extracted(sections, title or None)


def _pdf_paragraphs(page: str) -> list[str]:
    # PDF text comes out one visual line per line; blank lines (when there are any) part
    # paragraphs, else the page is one paragraph that chunking splits by its budget.
    return _paragraphs(page)
