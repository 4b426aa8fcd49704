"""Token counts for the usage the dev model reports.

Counts use tiktoken's ``o200k_base`` (the encoding of current OpenAI models). tiktoken loads its
BPE file from ``TIKTOKEN_CACHE_DIR`` or downloads it; an offline machine without the cache
cannot load it, and then counts are estimated at about four characters per token and the log
says so once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson

from server.devllm.wire import message_text

logger = logging.getLogger(__name__)

ENCODING_NAME = "o200k_base"
CHARS_PER_TOKEN_ESTIMATE = 4
# OpenAI's chat format wraps every message in a few tokens and primes the reply with three more.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMER = 3


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: Any = ...) -> list[int]: ...


_lock = threading.Lock()
_loaded = False
_encoding: _Encoding | None = None


def _load_encoding() -> _Encoding | None:
    """Load the encoding once per process; None (and one warning) when it cannot be loaded."""
    global _loaded, _encoding
    with _lock:
        if not _loaded:
            try:
                import tiktoken

                _encoding = tiktoken.get_encoding(ENCODING_NAME)
            except Exception as exc:  # no cache and no network, or a damaged file: all the same
                logger.warning(
                    "no tiktoken encoding could be loaded (%s: %s); the dev model estimates "
                    "token counts at %d characters per token",
                    type(exc).__name__,
                    exc,
                    CHARS_PER_TOKEN_ESTIMATE,
                )
                _encoding = None
            _loaded = True
        return _encoding


def ready() -> bool:
    """Whether loading the encoding was already attempted (so counting will not block)."""
    return _loaded


def warm_up() -> None:
    """Load the encoding now (it takes a fraction of a second), e.g. in a worker thread."""
    _load_encoding()


def count_text(text: str) -> int:
    """Tokens in ``text``: exact with tiktoken, otherwise an estimate."""
    if not text:
        return 0
    encoding = _load_encoding()
    if encoding is None:
        return -(-len(text) // CHARS_PER_TOKEN_ESTIMATE)
    return len(encoding.encode(text, disallowed_special=()))


def count_prompt(messages: Iterable[Mapping[str, Any]], tools: Iterable[Any] = ()) -> int:
    """Prompt tokens of a request: every message with its framing, plus the tool definitions."""
    total = TOKENS_REPLY_PRIMER
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += count_text(str(message.get("role", "")))
        total += count_text(message_text(message))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            total += count_text(str(function.get("name", "")))
            total += count_text(str(function.get("arguments", "")))
    # Tool definitions reach the model as text; their JSON is a fair approximation of its size.
    total += sum(count_text(orjson.dumps(tool).decode()) for tool in tools)
    return total


def count_completion(text: str, calls: Iterable[tuple[str, str]]) -> int:
    """Completion tokens of a reply: its text and each ``(name, arguments)`` tool call."""
    return count_text(text) + sum(count_text(name) + count_text(args) for name, args in calls)
