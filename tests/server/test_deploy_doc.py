"""docs/deploy.md stays true: its environment reference lists every setting of
``server/config.py`` with its default, and nothing that is not a setting; the Procfile runs what
the doc says.

After adding or changing a setting, regenerate the reference with
``.venv/bin/python -m tests.server.test_deploy_doc``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from server.config import describe

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "deploy.md"
BEGIN = "<!-- settings:begin (generated from server/config.py describe()) -->"
END = "<!-- settings:end -->"
LONG_DEFAULT = 60  # characters; longer defaults are left to server/config.py


def settings_table() -> str:
    """The environment reference as a Markdown table, one row per setting."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, default, meaning in describe():
        if not default:
            shown = "unset"
        elif len(default) > LONG_DEFAULT:
            shown = "(long; see `server/config.py`)"
        else:
            shown = f"`{default}`"
        lines.append(f"| `{name}` | {shown} | {_cell(meaning)} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _block(text: str) -> str:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    assert match, f"{DOC} lacks the generated settings block"
    return match.group(1)


def write() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(f"{text[:start]}\n{settings_table()}\n{text[end:]}")


def test_the_doc_lists_every_setting_with_its_default() -> None:
    block = _block(DOC.read_text())
    documented = {
        row.split("|")[1].strip().strip("`"): row.split("|")[2].strip()
        for row in block.splitlines()[2:]
    }
    names = [name for name, _, _ in describe()]
    missing = [name for name in names if name not in documented]
    stale = [name for name in documented if name not in names]
    hint = "regenerate with: .venv/bin/python -m tests.server.test_deploy_doc"
    assert not missing, f"settings missing from docs/deploy.md: {missing}; {hint}"
    assert not stale, f"docs/deploy.md lists settings that no longer exist: {stale}; {hint}"
    assert block == settings_table(), f"a default or meaning changed; {hint}"


def test_the_procfile_runs_the_commands_the_doc_names() -> None:
    procfile = (REPO / "Procfile").read_text().splitlines()
    processes = dict(line.split(":", 1) for line in procfile if line.strip())
    assert processes["release"].strip() == "parley migrate"
    assert processes["web"].strip().startswith("parley serve")
    doc = DOC.read_text()
    for line in procfile:
        if line.strip():
            assert line in doc, f"docs/deploy.md should show the Procfile line {line!r}"


if __name__ == "__main__":
    write()
    print(f"wrote the settings reference of {DOC}", file=sys.stderr)
