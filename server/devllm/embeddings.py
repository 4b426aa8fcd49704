"""``POST /v1/embeddings`` of the dev model: deterministic vectors, so tests and the demo
exercise vector search without a network.

A text's vector is its words hashed into a fixed number of dimensions (the hashing trick),
L2-normalised: texts sharing words point the same way, the same text always gives the same
vector, and nothing is learned. It is a stand-in for a real embedding model's shape, not its
quality.
"""

from __future__ import annotations

import hashlib
import math
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DIMENSIONS = 256
MAX_INPUTS = 2048
_WORD = re.compile(r"\w+")


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The deterministic vector of ``text`` (all zeros for a text without words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


async def embeddings(request: Request) -> Response:
    """OpenAI's embeddings call: ``{"model", "input": str | [str]}`` → ``{"data": [...]}``."""
    try:
        body = await request.json()
    except ValueError:
        return _error("the body is not JSON")
    texts = body.get("input") if isinstance(body, dict) else None
    if isinstance(texts, str):
        texts = [texts]
    if (
        not isinstance(texts, list)
        or not texts
        or len(texts) > MAX_INPUTS
        or not all(isinstance(text, str) for text in texts)
    ):
        return _error(f"'input' must be a string or 1 to {MAX_INPUTS} strings")
    model = str(body.get("model") or "dev-embedding")
    data = [
        {"object": "embedding", "index": index, "embedding": embed(text)}
        for index, text in enumerate(texts)
    ]
    tokens = sum(len(_WORD.findall(text)) for text in texts)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _error(message: str) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}},
        status_code=400,
    )
