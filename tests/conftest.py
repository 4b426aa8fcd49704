"""Settings shared by every suite."""

from __future__ import annotations

import os
from pathlib import Path

# tiktoken cannot download on offline machines; the repo's neighbour folder holds its files.
_TIKTOKEN = Path(__file__).resolve().parents[1].parent / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_TIKTOKEN)
