"""Log output: JSON lines for machines, plain text on a terminal.

Each record is one line. Context about what a line concerns (connection, tenant, user,
conversation, turn) comes from two places: fields passed with ``extra={...}`` and the *log
context*, a context variable that a socket, a turn or an HTTP request binds once with
``bind_log_context`` and that every line logged in that task (and in tasks it starts) then
carries without repeating it. asyncio copies context variables into each new task, so a
binding never leaks into another connection's lines.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from server.config import Settings

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_STANDARD.add("color_message")  # uvicorn's ANSI-coloured copy of the message

# The fields a log context may carry, in the order the text format shows them.
CONTEXT_FIELDS = ("connection", "tenant", "user", "conversation", "turn")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "parley_log_context", default=None
)


def bind_log_context(**fields: str | None) -> None:
    """Add fields to the log context of the current task (None removes a field).

    Raises:
        RuntimeError: a field name outside ``CONTEXT_FIELDS`` (a programming mistake).
    """
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise RuntimeError(f"unknown log context fields: {sorted(unknown)}")
    merged = dict(_context.get() or {})
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    _context.set(merged)


def log_context() -> dict[str, str]:
    """The current task's log context (a copy)."""
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Copies the log context onto each record, without overriding ``extra`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra`` and log-context fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the context fields in brackets at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        ]
        if not context:
            return line
        # Keep a traceback (if any) last, after the context of the line it belongs to.
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(context)}]{newline}{rest}"


def configure_logging(settings: Settings) -> None:
    """Install one handler on the root logger (idempotent: a second call replaces it)."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name("parley")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "parley":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Started from the uvicorn command line (several workers), uvicorn has given its loggers
    # handlers of its own; route them through ours so every line has the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        for existing in list(uvicorn_logger.handlers):
            uvicorn_logger.removeHandler(existing)
        uvicorn_logger.propagate = True
    # The SDKs log every request at INFO with URLs and headers; keep them to warnings.
    for noisy in ("httpx", "httpx2", "openai", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
