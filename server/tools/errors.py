"""Errors of the tool layer.

```
ToolError                  a refusal the model should see (business rule, bad input)
 ├── ToolNotFound          the model named a tool the registry does not have
 ├── ToolForbidden         the user's roles do not allow the tool
 │    └── ToolNotInProfile the conversation's profile does not include the tool
 ├── ToolArgumentsInvalid  the arguments are not valid JSON or do not fit the parameters
 └── ToolTimeout           the tool did not finish within its timeout
```

Tool code raises `ToolError` itself for business refusals ("invoice INV-3001 is already paid");
the registry raises the subclasses. Messages are lowercase fragments that name the offending thing.
"""

__all__ = [
    "ToolArgumentsInvalid",
    "ToolError",
    "ToolForbidden",
    "ToolNotFound",
    "ToolNotInProfile",
    "ToolTimeout",
]


class ToolError(Exception):
    """A refusal or failure whose message is shown to the model (and through it to the user).

    Attributes:
        message: what went wrong, as a lowercase fragment naming the offending thing.
        code: an optional stable machine-readable reason, e.g. ``"over_allocation"``.
    """

    default_code: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code


class ToolNotFound(ToolError):
    """No tool of that name is registered."""

    default_code = "tool_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tool {name!r}")
        self.name = name


class ToolForbidden(ToolError):
    """The tool exists but none of the user's roles may use it."""

    default_code = "tool_forbidden"

    def __init__(self, name: str) -> None:
        super().__init__(f"tool {name!r} is not allowed for this user")
        self.name = name


class ToolNotInProfile(ToolForbidden):
    """The tool exists but the conversation's profile does not include it."""

    default_code = "tool_not_in_profile"

    def __init__(self, name: str, profile: str) -> None:
        super().__init__(name)
        self.message = f"tool {name!r} is not part of the profile {profile!r}"
        self.args = (self.message,)
        self.profile = profile


class ToolArgumentsInvalid(ToolError):
    """The arguments could not be parsed or validated.

    Attributes:
        name: the tool.
        problems: one plain-text line per problem, each naming its argument, e.g.
            ``"argument 'po_number': field required"``.
        field: the first offending argument path (``"lines[0].quantity"``), or None when the
            arguments as a whole are unusable (not JSON, not an object).
    """

    default_code = "invalid_arguments"

    def __init__(self, name: str, problems: list[str], *, field: str | None = None) -> None:
        super().__init__("; ".join(problems))
        self.name = name
        self.problems = problems
        self.field = field


class ToolTimeout(ToolError):
    """The tool ran longer than its `timeout_s`."""

    default_code = "tool_timeout"

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(f"tool {name!r} timed out after {timeout_s:g}s")
        self.name = name
        self.timeout_s = timeout_s
