"""Reading the TOML files an operator names in the settings (profiles, tool sources)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any


def read_toml_file(path: str, failure: Callable[[str], Exception]) -> dict[str, Any]:
    """The document in the TOML file at ``path``.

    Raises:
        Exception: ``failure(reason)`` when the file cannot be read or is not valid TOML; each
            file kind raises its own error class, which names the file.
    """
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise failure(f"cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise failure(f"is not valid TOML ({exc})") from exc
