"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` (the model's endpoint; the dev
model serves deterministic ones), for vector similarity beside full-text search."""

from __future__ import annotations

from collections.abc import Sequence

import openai


class EmbeddingError(RuntimeError):
    """The endpoint did not give embeddings (down, refused, or answered the wrong shape)."""


class Embedder:
    """Embeds texts in batches of at most ``batch`` with one model."""

    def __init__(self, client: openai.AsyncOpenAI, model: str, batch: int) -> None:
        self._client = client
        self.model = model
        self._batch = batch

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order.

        Raises:
            EmbeddingError: the endpoint failed or answered something else.
        """
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            part = list(texts[start : start + self._batch])
            try:
                answer = await self._client.embeddings.create(model=self.model, input=part)
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embeddings endpoint failed: {exc}") from exc
            ordered = sorted(answer.data, key=lambda item: item.index)
            if len(ordered) != len(part):
                raise EmbeddingError(f"asked for {len(part)} embeddings, got {len(ordered)}")
            vectors.extend([float(value) for value in item.embedding] for item in ordered)
        return vectors
