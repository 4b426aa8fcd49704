"""Token counting with tiktoken, and a plain estimate when no encoding can be loaded.

tiktoken downloads its BPE files on first use; an offline machine without a pre-seeded cache
(``TIKTOKEN_CACHE_DIR``) cannot load one. Parley then estimates, and says so once in the log
and in every usage figure it reports (``estimated: true``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

logger = logging.getLogger(__name__)

# OpenAI's chat format adds a few tokens around every message and primes the reply with three.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMER = 3
CHARS_PER_TOKEN_ESTIMATE = 4


class TokenCounter:
    """Counts tokens the way the model will, or estimates them."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._encoding = _load_encoding(model)

    @property
    def exact(self) -> bool:
        """False when counts are estimates because no encoding could be loaded."""
        return self._encoding is not None

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is None:
            return max(1, -(-len(text) // CHARS_PER_TOKEN_ESTIMATE))
        return len(self._encoding.encode(text, disallowed_special=()))

    def count_message(self, message: Mapping[str, Any]) -> int:
        """Tokens one chat message costs in a request, tool calls included."""
        total = TOKENS_PER_MESSAGE + self.count_text(str(message.get("content") or ""))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            total += self.count_text(function.get("name", ""))
            total += self.count_text(function.get("arguments", ""))
        return total

    def count_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        return TOKENS_REPLY_PRIMER + sum(self.count_message(message) for message in messages)

    def count_tools(self, tools: Iterable[Mapping[str, Any]]) -> int:
        """An approximation of what tool definitions cost: their JSON text, tokenised."""
        return sum(self.count_text(orjson.dumps(tool).decode()) for tool in tools)


@functools.cache
def _load_encoding(model: str) -> Any:
    try:
        import tiktoken

        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # no network, no cache, a damaged file: all end the same way
        logger.warning(
            "no tiktoken encoding could be loaded (%s); token counts are estimates",
            type(exc).__name__,
        )
        return None
