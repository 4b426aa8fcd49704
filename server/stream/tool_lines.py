"""The tool lines of stored answers, for a tab that rebuilds from the ``ready`` snapshot.

A tab that watched a turn shows a line for each read-only tool call (and the view of its
result) before the answer, from the ``tool_result`` frames. A tab that rebuilds never sees those
frames, so the tool runner keeps each ``tool_result`` it sent beside the call's result in the
turn's tool rounds (under :data:`SHOWN_KEY`, as its wire form), and the snapshot turns them back
into :class:`protocol.ToolLine` objects on the answer's :class:`protocol.MessageSnapshot`.

Views are the large part (each up to ``PARLEY_VIEW_MAX_BYTES``), so a snapshot carries at most
``PARLEY_SNAPSHOT_TOOL_LINES`` lines and only the newest ``PARLEY_SNAPSHOT_TOOL_VIEWS`` with
their view; the others keep their line and export link. ``0`` turns either limit off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from protocol import ProtocolError, ToolLine, ToolResult, decode_server, to_dict
from storage.models import Message

logger = logging.getLogger(__name__)

SHOWN_KEY = "shown"
"""The key of a tool round's result that holds the ``tool_result`` frame the tabs were sent."""


def shown_entry(frame: ToolResult) -> dict[str, object]:
    """A sent ``tool_result`` as it is kept with its call's result."""
    return to_dict(frame)


def tool_lines(
    answers: Sequence[Message], *, max_lines: int, max_views: int
) -> dict[str, tuple[ToolLine, ...]]:
    """The tool lines of each of ``answers`` (oldest first) that has any, by message id.

    The newest lines win the limits: they are what the user looked at last.
    """
    lines_left = max_lines or None
    views_left = max_views or None
    found: dict[str, tuple[ToolLine, ...]] = {}
    for answer in reversed(answers):
        kept: list[ToolLine] = []
        for frame in reversed(list(_shown_results(answer.tool_rounds or ()))):
            if lines_left is not None:
                if lines_left == 0:
                    break
                lines_left -= 1
            line = _line_of(frame)
            if line.view is not None and views_left is not None:
                if views_left == 0:
                    line = replace(line, view=None)
                else:
                    views_left -= 1
            kept.append(line)
        if kept:
            found[answer.id] = tuple(reversed(kept))
        if lines_left == 0:
            break
    return found


def _shown_results(tool_rounds: Iterable[dict[str, Any]]) -> Iterable[ToolResult]:
    for round_ in tool_rounds:
        for result in round_.get("results", ()):
            stored = result.get(SHOWN_KEY)
            if stored is None:
                continue
            try:
                frame = decode_server(orjson.dumps(stored))
            except ProtocolError:
                # Written by a release whose views read differently: the line is left out
                # rather than the snapshot failing.
                logger.warning("a stored tool result does not read; its line is left out")
                continue
            if isinstance(frame, ToolResult):
                yield frame


def _line_of(frame: ToolResult) -> ToolLine:
    return ToolLine(
        call_id=frame.call_id,
        name=frame.name,
        ok=frame.ok,
        summary=frame.summary,
        view=frame.view,
        export=frame.export,
    )
