"""A test user of the community API: the account and the bearer headers of its session."""

from __future__ import annotations

from typing import Any

from models.identity.tables import User


class Person:
    """A user and their API headers; any other attribute is the account's own (read or set)."""

    _OWN = frozenset({"user", "headers"})

    def __init__(self, user: User, headers: dict[str, str]) -> None:
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "headers", headers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.user, name, value)

    @property
    def name(self) -> str:
        """The username (the reports' shorthand)."""
        return str(self.user.username)
