"""Token counts: exact with tiktoken's files, an estimate (said once) without them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from server.turns.token_counting import TokenCounter

REPO = Path(__file__).resolve().parents[2]


def test_counts_with_tiktoken() -> None:
    counter = TokenCounter("gpt-4o-mini")
    assert counter.exact
    assert counter.count_text("hello world") == 2
    assert counter.count_messages([{"role": "user", "content": "hello world"}]) == 3 + 2 + 3


def test_without_an_encoding_counts_are_estimates_and_logged_once(tmp_path: Path) -> None:
    script = (
        "import logging; logging.basicConfig(level=logging.WARNING);"
        "from server.turns.token_counting import TokenCounter;"
        "a = TokenCounter('gpt-4o-mini'); b = TokenCounter('gpt-4o-mini');"
        "print(a.exact, a.count_text('x' * 40), b.count_text('hello'))"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"), "PYTHONPATH": str(REPO)}
    # No network here either way: point tiktoken's download at a closed local port.
    env["TIKTOKEN_ENCODINGS_BASE"] = "http://127.0.0.1:9"
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "10", "2"]
    assert done.stderr.count("token counts are estimates") == 1
