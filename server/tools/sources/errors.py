"""Errors of tool sources: the host apps whose tools Parley reaches over the network.

```
ToolSourceError            a tool source cannot be configured or loaded
 ├── SourceConfigError     the PARLEY_TOOL_SOURCES file is wrong (fails startup)
 └── SourceLoadError       a source's tool list cannot be read or is malformed
```

A `SourceConfigError` stops the worker: the operator wrote something that can never work. A
`SourceLoadError` of a reachable but malformed document stops it too (at startup); an
unreachable source only makes it degraded and is retried in the background. Failures of single
calls are `ToolError`s (server/tools/errors.py), which the model sees.
"""

__all__ = ["SourceConfigError", "SourceLoadError", "ToolSourceError"]


class ToolSourceError(Exception):
    """Root of the tool-source errors."""


class SourceConfigError(ToolSourceError):
    """The tool sources file is unreadable, not TOML, or a value is wrong.

    Attributes:
        path: the file.
        source: the source's name (or ``source[i]`` before its name is known), None for the file.
        key: the offending key, dotted for nested tables (``tools.approve.kind``), or None.
        reason: what is wrong, as a lowercase fragment.
    """

    def __init__(self, path: str, source: str | None, key: str | None, reason: str) -> None:
        where = path
        if source is not None:
            where += f": source {source!r}"
        if key is not None:
            where += f", key {key!r}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.source = source
        self.key = key
        self.reason = reason


class SourceLoadError(ToolSourceError):
    """A source's tool description could not be used.

    Attributes:
        source: the source's name.
        where: what in the description is wrong: a URL, an operation (``GET /things``) or a
            key path (``paths./things.get.parameters[0]``).
        reason: what is wrong, as a lowercase fragment.
        reachable: False when the source did not answer (retried in the background), True when
            it answered with something unusable (an operator's mistake).
    """

    def __init__(self, source: str, where: str, reason: str, *, reachable: bool = True) -> None:
        super().__init__(f"tool source {source!r}: {where}: {reason}")
        self.source = source
        self.where = where
        self.reason = reason
        self.reachable = reachable
