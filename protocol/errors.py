"""Errors raised by the protocol package.

Hierarchy::

    Exception
     └── ProtocolError   a frame could not be decoded (code, message, field)

Only decoding raises :class:`ProtocolError`. Encoding a frame that cannot be encoded is a
programming mistake and raises ``TypeError`` instead.
"""

from protocol.codes import ErrorCode


class ProtocolError(Exception):
    """A frame could not be decoded.

    The server answers it with an ``error`` frame carrying :attr:`code` and :attr:`message`.

    Attributes:
        code: What kind of problem it is; one of the decode codes (``invalid_json``,
            ``invalid_frame``, ``unknown_type``, ``missing_field``, ``invalid_field``).
        message: A lowercase fragment naming the offending thing, e.g.
            ``field 'last_seq' must be a non-negative integer``.
        field: The path of the offending field (``"text"``, ``"user.roles[2]"``), or None when
            the problem is the frame as a whole.
    """

    __slots__ = ("code", "field", "message")

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r}, field={self.field!r})"
