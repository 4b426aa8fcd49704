"""The protocol version this package speaks."""

from typing import Final

PROTOCOL_VERSION: Final = 1
"""The version a client names in ``hello.protocol`` and the server echoes in ``ready.protocol``."""

SUPPORTED_VERSIONS: Final = frozenset({PROTOCOL_VERSION})
"""Every version the server accepts in ``hello``; anything else closes with 4426."""
