"""``parley knowledge add`` and ``remove`` as an operator runs them: a real process on a real
folder, writing to the database a server then reads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.db import rows
from tests.server.knowledge_support import POLICY_MD, TRAVEL_HTML, safety_pdf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]


def parley(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "knowledge", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_folder_is_added_incrementally_and_a_document_removed(tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    (folder / "travel").mkdir(parents=True)
    (folder / "purchasing.md").write_bytes(POLICY_MD)
    (folder / "travel" / "guide.html").write_bytes(TRAVEL_HTML)
    (folder / "safety.pdf").write_bytes(safety_pdf())
    (folder / "notes.docx").write_bytes(b"not a format a collection takes")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    scope = ("--tenant", "acme", "--collection", "handbook")

    first = parley(database_url, "add", str(folder), *scope, "--roles", "staff,admin")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created   purchasing.md",
        "created   safety.pdf",
        "created   travel/guide.html",
        "handbook: 3 created, 0 replaced, 0 unchanged, 0 failed",
    ]
    (folder / "purchasing.md").write_bytes(POLICY_MD.replace(b"Nordholz", b"Eichwerk"))
    second = parley(database_url, "add", str(folder), *scope)
    assert second.returncode == 0, second.stderr
    assert "handbook: 0 created, 1 replaced, 2 unchanged, 0 failed" in second.stdout

    removed = parley(database_url, "remove", "safety.pdf", *scope)
    assert removed.returncode == 0, removed.stderr
    documents = asyncio.run(
        rows(database_url, "SELECT document_id FROM knowledge_document ORDER BY document_id")
    )
    assert documents == [("purchasing.md",), ("travel/guide.html",)]
    (roles,) = asyncio.run(rows(database_url, "SELECT roles FROM knowledge_collection"))
    assert "staff" in str(roles[0])
    again = parley(database_url, "remove", "safety.pdf", *scope)
    assert again.returncode == 1
    assert "no document 'safety.pdf'" in again.stderr
