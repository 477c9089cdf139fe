"""Fixtures of the community API tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.community.people import Person
from tests.helpers import bearer


@pytest.fixture
def person(
    instruments: None, make_user: Callable[..., Any], login: Callable[..., Any]
) -> Callable[..., Person]:
    """Make a user (optionally named, with roles) logged in, with ``.headers`` for the API."""

    def make(name: str | None = None, roles: tuple[str, ...] = ("user",)) -> Person:
        user = make_user(name, roles=roles) if name is not None else make_user(roles=roles)
        return Person(user, bearer(login(user.username)["access_token"]))

    return make
