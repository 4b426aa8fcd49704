"""docs/protocol.md stays in step with the package: every frame, field, example, error code and
close code the code defines is documented as the code defines it."""

import json
import re

import pytest
from protocol_support import REPO

from protocol import (
    CLIENT_FRAMES,
    CLOSE_INFO,
    ERROR_INFO,
    SERVER_FRAMES,
    ActiveTurn,
    Citation,
    ConversationSummary,
    MessageSnapshot,
    PageToolSpec,
    PendingConfirmation,
    ProfileSummary,
    ToolLine,
    TurnError,
    Usage,
    UserInfo,
    decode_client,
    decode_server,
)
from protocol.layout import layout_of

DOC = (REPO / "docs" / "protocol.md").read_text("utf-8")
VALUE_CLASSES = [
    UserInfo,
    Usage,
    Citation,
    ConversationSummary,
    MessageSnapshot,
    ToolLine,
    PendingConfirmation,
    ActiveTurn,
    TurnError,
    ProfileSummary,
    PageToolSpec,
]


def _section(top: str) -> str:
    """The text of a ``## top`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(top)}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert match, f"section '## {top}' is missing"
    return match.group(1)


def _subsections(text: str) -> dict[str, str]:
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _field_rows(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\| `(\w+)` \| .+? \| (yes|no) \| .*\|$", text, re.M)


CLIENT_SECTION = _subsections(_section("Client → server frames"))
SERVER_SECTION = _subsections(_section("Server → client frames"))
NESTED_SECTION = _subsections(_section("Nested objects"))


@pytest.mark.parametrize(
    ("sections", "cls"),
    [(CLIENT_SECTION, cls) for cls in CLIENT_FRAMES.values()]
    + [(SERVER_SECTION, cls) for cls in SERVER_FRAMES.values()]
    + [(NESTED_SECTION, cls) for cls in VALUE_CLASSES],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_every_frame_and_value_class_has_its_field_table(
    sections: dict[str, str], cls: type
) -> None:
    heading = f"`{cls.type.value}`" if hasattr(cls, "type") else cls.__name__
    if heading not in sections:
        heading += " (mirrored)"  # the server-side typing entry refers to the client one
        assert heading in sections
        return
    expected = [(spec.name, "no" if spec.optional else "yes") for spec in layout_of(cls).fields]
    assert _field_rows(sections[heading]) == expected


@pytest.mark.parametrize(
    ("sections", "decode"),
    [(CLIENT_SECTION, decode_client), (SERVER_SECTION, decode_server)],
)
def test_every_example_decodes_in_its_direction(sections: dict[str, str], decode: object) -> None:
    for heading, text in sections.items():
        examples = re.findall(r"```json\n(.*?)\n```", text, re.S)
        assert examples, heading
        for example in examples:
            frame = decode(json.dumps(json.loads(example)))  # type: ignore[operator]
            assert f"`{frame.type.value}`" in heading


def test_every_error_code_is_listed_with_its_meaning_and_retryable() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.+) \| (yes|no) \|$", _section("Error codes"), re.M)
    assert rows == [
        (code.value, info.meaning, "yes" if info.retryable else "no")
        for code, info in ERROR_INFO.items()
    ]


def test_every_close_code_is_listed_with_its_meaning_and_client_action() -> None:
    rows = re.findall(
        r"^\| (\d{4}) \| .+? \| (.+) \| (reconnect|stop) \|$", _section("Close codes"), re.M
    )
    assert rows == [
        (str(code), info.meaning, "reconnect" if info.temporary else "stop")
        for code, info in CLOSE_INFO.items()
    ]


def test_sections_for_resume_rules_and_a_worked_session_exist() -> None:
    assert _section("Resume rules").strip()
    assert _section("A worked session").strip()
