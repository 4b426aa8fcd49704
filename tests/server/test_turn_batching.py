"""Streamed text is logged in batches, not one Redis append per token, and arrives intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, frames_of

pytestmark = pytest.mark.timeout(120)

WORDS = [f"w{number}" for number in range(200)]


async def test_a_fast_model_is_logged_in_batches_and_loses_no_text(
    backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    # 200 tokens at 400 a second take at least half a second: with a 50 ms window that is
    # about ten appends, each carrying many tokens (the bound below allows for a slow machine).
    parley = ParleyServer(tmp_path, backend.config(model, PARLEY_DELTA_FLUSH_MS="50"))
    try:
        model.set_faults([{"fault": "token_rate", "rate": 400}])
        tab = await parley.tab()
        frames = await tab.ask("[say] " + " ".join(WORDS), "m-1")
        deltas = [frame["delta"] for frame in frames_of(frames, "response_delta")]
        assert 2 <= len(deltas) <= len(WORDS) // 4, len(deltas)
        assert "".join(deltas) == " ".join(WORDS) == frames_of(frames, "response")[0]["text"]
        seqs = [frame["seq"] for frame in frames_of(frames, "response_delta")]
        assert seqs == sorted(seqs)
        await tab.close()
    finally:
        parley.stop()
