"""Settings shared by every suite."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.state_store import STORE_KINDS, StateRedis, open_state_redis

# tiktoken cannot download on offline machines; the repo's neighbour folder holds its files.
_TIKTOKEN = Path(__file__).resolve().parents[1].parent / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_TIKTOKEN)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Runs in each test process once its tests are imported and before any runs.
    if "tests.server.inprocess" in sys.modules:
        from tests.server.inprocess import freeze_long_lived_objects

        freeze_long_lived_objects()


@pytest.fixture(params=STORE_KINDS)
async def state_redis(request: pytest.FixtureRequest) -> AsyncIterator[StateRedis]:
    """The state store under test, parametrised over the embedded store and real Redis."""
    async with open_state_redis(request.param) as state:
        yield state
