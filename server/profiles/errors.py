"""Errors of assistant profiles.

```
ProfileError               a profile cannot be configured or used
 └── ProfileConfigError    the PARLEY_PROFILES file is wrong (fails startup)
```

A request that names an unknown profile, or one the user's roles do not allow, is not an error
of this kind: it is answered with ``profile_not_found`` or ``forbidden`` (a `ClientError`).
"""

__all__ = ["ProfileConfigError", "ProfileError"]


class ProfileError(Exception):
    """Root of the profile errors."""


class ProfileConfigError(ProfileError):
    """The profiles file is unreadable, not TOML, or a value is wrong.

    Attributes:
        path: the file.
        profile: the profile's id (or ``profile[i]`` before its id is known), None for the file.
        key: the offending key, or None.
        reason: what is wrong, as a lowercase fragment.
    """

    def __init__(self, path: str, profile: str | None, key: str | None, reason: str) -> None:
        parts = [path]
        named = [f"profile {profile!r}"] if profile is not None else []
        if key is not None:
            named.append(f"key {key!r}")
        if named:
            parts.append(", ".join(named))
        super().__init__(f"{': '.join(parts)}: {reason}")
        self.path = path
        self.profile = profile
        self.key = key
        self.reason = reason
