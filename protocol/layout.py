"""Per-class field tables, built once at import from the frame classes' annotations.

The decoder, the encoder and the JSON Schema generator all walk these tables, so what is
checked, what is written and what is documented cannot drift apart. Reading annotations is
reflection, but it happens once per class; decoding a frame afterwards is a loop over a tuple of
``(name, check, optional)`` rows.
"""

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, NamedTuple, get_args, get_origin, get_type_hints

from protocol.codes import ErrorCode
from protocol.errors import ProtocolError
from protocol.fields import BOOL, TEXT, Check, Export, Kind, field_path, invalid


class FieldSpec(NamedTuple):
    """One field of a class as the wire sees it.

    Attributes:
        name: The JSON key, equal to the dataclass field name.
        kind: How the value is checked, exported and described.
        optional: True when the field may be absent (its default is None and it is left out
            of the encoded frame while None).
    """

    name: str
    kind: Kind
    optional: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """The wire shape of one frame or value class.

    Attributes:
        cls: The dataclass.
        frame_type: The ``type`` written first for frames; None for nested value classes.
        tag: ``(key, value)`` written first for a member of a tagged union (a view's
            ``kind``); None otherwise.
        fields: The class's fields in declaration (= wire) order.
        decode_plan: ``(name, check, optional)`` per field, for the decoder's hot loop.
        encode_plan: ``(name, export, optional)`` per field, for the encoder's hot loop.
    """

    cls: type[Any]
    # A StrEnum rather than FrameType: protocol.frames nests value classes whose union kinds
    # are built with this module, so importing frames here would be a cycle.
    frame_type: StrEnum | None
    fields: tuple[FieldSpec, ...]
    decode_plan: tuple[tuple[str, Check, bool], ...]
    encode_plan: tuple[tuple[str, Export | None, bool], ...]
    tag: tuple[str, str] | None = None


_LAYOUTS: dict[type, Layout] = {}


def layout_of(cls: type) -> Layout:
    """Return the layout of a frame or value class, building it on first use.

    Raises:
        RuntimeError: A field's annotation has no wire kind (a mistake in a frame class).
    """
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _build_layout(cls)
    return layout


def decode_fields(layout: Layout, obj: Mapping[str, object], parent: str) -> Any:
    """Build an instance of ``layout.cls`` from a parsed JSON object.

    Unknown keys are ignored and an explicit null counts as absent for optional fields.

    Raises:
        ProtocolError: ``missing_field`` or ``invalid_field`` for the first bad field.
    """
    values: dict[str, object] = {}
    for name, check, optional in layout.decode_plan:
        value = obj.get(name)
        if value is None:
            if optional:
                continue
            if name not in obj:
                path = field_path(parent, name)
                raise ProtocolError(ErrorCode.MISSING_FIELD, f"missing field '{path}'", path)
        values[name] = check(value, parent, name)
    return layout.cls(**values)


def export_fields(layout: Layout, instance: object) -> dict[str, object]:
    """Turn a frame or value instance into a JSON-ready dict in wire order.

    Optional fields holding None are left out; a required field holding None (only a
    ``JsonValue`` may) is written as null.
    """
    out: dict[str, object] = {}
    if layout.frame_type is not None:
        out["type"] = layout.frame_type.value
    elif layout.tag is not None:
        out[layout.tag[0]] = layout.tag[1]
    for name, export, optional in layout.encode_plan:
        value = getattr(instance, name)
        if value is None:
            if not optional:
                out[name] = None
        elif export is None:
            out[name] = value
        else:
            out[name] = export(value)
    return out


# ---------------------------------------------------------------------------------------------
# Building layouts
# ---------------------------------------------------------------------------------------------


def _build_layout(cls: type) -> Layout:
    hints = get_type_hints(cls, include_extras=True)
    specs: list[FieldSpec] = []
    for field in dataclasses.fields(cls):
        hint, optional = _strip_optional(hints[field.name])
        specs.append(
            FieldSpec(field.name, _kind_for(hint, f"{cls.__name__}.{field.name}"), optional)
        )
    fields = tuple(specs)
    # A class-level StrEnum is a tag; a field of the same name (a column's ``type``) is not.
    frame_type = getattr(cls, "type", None)
    tag_value = getattr(cls, "kind", None)
    return Layout(
        cls=cls,
        frame_type=frame_type if isinstance(frame_type, StrEnum) else None,
        tag=("kind", str(tag_value)) if isinstance(tag_value, StrEnum) else None,
        fields=fields,
        decode_plan=tuple((spec.name, spec.kind.check, spec.optional) for spec in fields),
        encode_plan=tuple((spec.name, spec.kind.export, spec.optional) for spec in fields),
    )


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    """Split ``X | None`` into ``(X, True)``; anything else is ``(hint, False)``."""
    args = get_args(hint)
    if get_origin(hint) in (typing.Union, types.UnionType) and types.NoneType in args:
        (inner,) = (arg for arg in args if arg is not types.NoneType)
        return inner, True
    return hint, False


def _kind_for(hint: Any, where: str) -> Kind:
    """Find the wire kind of one annotation (without its ``| None``)."""
    if get_origin(hint) is Annotated:
        return typing.cast(Kind, hint.__metadata__[0])
    if hint is str:
        return TEXT
    if hint is bool:
        return BOOL
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _enum_kind(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _object_kind(layout_of(hint))
    if get_origin(hint) is tuple and get_args(hint)[1:] == (Ellipsis,):
        return _list_kind(_kind_for(get_args(hint)[0], where))
    raise RuntimeError(f"{where}: no wire kind for annotation {hint!r}")


def _enum_kind(enum: type[StrEnum]) -> Kind:
    by_value = {member.value: member for member in enum}
    if len(by_value) <= 6:
        problem = "must be one of " + ", ".join(f"'{value}'" for value in by_value)
    else:
        problem = "must be a known value"

    def check(value: object, parent: str, key: str | int) -> object:
        if type(value) is str:
            member = by_value.get(value)
            if member is not None:
                return member
        raise invalid(parent, key, problem)

    return Kind("enum", check, {"enum": list(by_value)}, export=str, of=enum)


def _object_kind(layout: Layout) -> Kind:
    def check(value: object, parent: str, key: str | int) -> object:
        if type(value) is not dict:
            raise invalid(parent, key, "must be an object")
        return decode_fields(layout, value, field_path(parent, key))

    def export(value: object) -> object:
        return export_fields(layout, value)

    reference = {"$ref": f"#/$defs/{layout.cls.__name__}"}
    return Kind("object", check, reference, export=export, of=layout.cls)


def _list_kind(item: Kind) -> Kind:
    check_item = item.check
    export_item = item.export

    def check(value: object, parent: str, key: str | int) -> object:
        if type(value) is not list:
            raise invalid(parent, key, "must be an array")
        path = field_path(parent, key)
        return tuple([check_item(element, path, index) for index, element in enumerate(value)])

    def export(value: tuple[object, ...]) -> object:
        if export_item is None:
            return list(value)
        return [export_item(element) for element in value]

    return Kind("list", check, {"type": "array", "items": item.schema}, export=export, of=item)


def kind_of(hint: Any) -> Kind:
    """The wire kind of an annotation such as ``tuple[ParamField, ...]``, for checking or
    exporting a value outside a frame (a stored copy of a frame's field).

    Raises:
        RuntimeError: The annotation has no wire kind.
    """
    return _kind_for(hint, repr(hint))


def tagged_union_kind(tag: str, classes: tuple[type, ...]) -> Kind:
    """The kind of a field holding one of ``classes``, told apart by their ``tag`` key.

    Each class names its tag value in a ``ClassVar`` StrEnum attribute called ``tag`` (for a
    view: ``kind = ViewKind.TABLE``); decode picks the class by that value and encode writes it
    first.

    Raises:
        RuntimeError: A class has no such attribute (a mistake in a value class).
    """
    by_value: dict[str, Layout] = {}
    for cls in classes:
        value = getattr(cls, tag, None)
        if not isinstance(value, StrEnum):
            raise RuntimeError(f"{cls.__name__}: no {tag!r} class variable to tell it apart")
        by_value[value.value] = layout_of(cls)
    problem = "must be one of " + ", ".join(f"'{value}'" for value in by_value)

    def check(value: object, parent: str, key: str | int) -> object:
        if type(value) is not dict:
            raise invalid(parent, key, "must be an object")
        path = field_path(parent, key)
        chosen = value.get(tag)
        layout = by_value.get(chosen) if type(chosen) is str else None
        if layout is None:
            raise invalid(path, tag, problem)
        return decode_fields(layout, value, path)

    def export(value: object) -> object:
        return export_fields(layout_of(type(value)), value)

    schema = {"oneOf": [{"$ref": f"#/$defs/{cls.__name__}"} for cls in classes]}
    return Kind("union", check, schema, export=export, of=classes)
