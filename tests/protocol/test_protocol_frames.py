"""Frame classes, lookup tables, the field tables built from them, and package purity."""

import dataclasses
import subprocess
import sys
from operator import attrgetter
from typing import get_type_hints

import pytest
from protocol_support import REPO

import protocol
from protocol import CLIENT_FRAMES, LOGGED_TYPES, SERVER_FRAMES, FrameType, Typing
from protocol.fields import Id
from protocol.layout import layout_of

ALL_FRAME_CLASSES: set[type] = {*CLIENT_FRAMES.values(), *SERVER_FRAMES.values()}
BY_NAME: list[type] = sorted(ALL_FRAME_CLASSES, key=attrgetter("__name__"))


def test_every_frame_type_belongs_to_a_direction() -> None:
    assert set(CLIENT_FRAMES) | set(SERVER_FRAMES) == set(FrameType)
    assert set(CLIENT_FRAMES) & set(SERVER_FRAMES) == {FrameType.TYPING}
    assert set(SERVER_FRAMES) >= LOGGED_TYPES
    for frame_type, cls in [*CLIENT_FRAMES.items(), *SERVER_FRAMES.items()]:
        assert cls.type is frame_type


@pytest.mark.parametrize("cls", BY_NAME, ids=attrgetter("__name__"))
def test_frame_classes_are_frozen_slotted_keyword_only(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert all(field.kw_only for field in dataclasses.fields(cls))
    assert cls.__doc__


@pytest.mark.parametrize("cls", BY_NAME, ids=attrgetter("__name__"))
def test_logged_frames_end_with_seq_and_others_have_none(cls: type) -> None:
    names = [field.name for field in dataclasses.fields(cls)]
    if cls.type in LOGGED_TYPES:  # type: ignore[attr-defined]
        assert names[-1] == "seq"
    else:
        assert "seq" not in names


def test_optional_fields_are_exactly_those_defaulting_to_none() -> None:
    classes = {*ALL_FRAME_CLASSES}
    for cls in list(classes):
        for spec in layout_of(cls).fields:
            if spec.kind.name in ("object", "list"):
                of = spec.kind.of if spec.kind.name == "object" else spec.kind.of.of  # type: ignore[attr-defined]
                if isinstance(of, type):
                    classes.add(of)
    for cls in classes:
        for field in dataclasses.fields(cls):
            optional = next(s for s in layout_of(cls).fields if s.name == field.name).optional
            assert optional is (field.default is None), f"{cls.__name__}.{field.name}"


def test_layouts_follow_declaration_order_and_are_built_once() -> None:
    layout = layout_of(Typing)
    assert [spec.name for spec in layout.fields] == ["conversation_id", "active", "seq"]
    assert layout_of(Typing) is layout
    assert get_type_hints(Typing, include_extras=True)["conversation_id"] == Id


@pytest.mark.parametrize(
    ("annotation", "message"),
    [(set[int], "no wire kind"), (tuple[str, int], "no wire kind"), (int | str, "no wire kind")],
)
def test_a_field_without_a_wire_kind_is_a_programming_error(
    annotation: object, message: str
) -> None:
    bad = dataclasses.make_dataclass("Bad", [("value", annotation)], frozen=True)
    with pytest.raises(RuntimeError, match=f"Bad.value: {message}"):
        layout_of(bad)


def test_the_package_imports_no_io_libraries() -> None:
    code = (
        "import sys, protocol, protocol.codec, protocol.schema\n"
        "banned = {'asyncio', 'starlette', 'redis', 'sqlmodel', 'sqlalchemy', 'socket'}\n"
        "print(sorted(banned & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_public_names_are_exported() -> None:
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None
    for cls in ALL_FRAME_CLASSES:
        assert getattr(protocol, cls.__name__) is cls
