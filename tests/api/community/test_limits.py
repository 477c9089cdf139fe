"""The community actions' per-user budgets: the setting for users, scaled for moderators."""

from __future__ import annotations

import pytest
from flask import Flask

from api.community.limits import action_limit, budget


def test_a_moderator_gets_the_factor_times_each_budget(app: Flask) -> None:
    with app.app_context():
        assert budget("comment", ()) == "10/minute;200/day"
        assert budget("comment", ("user",)) == "10/minute;200/day"
        assert budget("comment", ("user", "moderator")) == "100/minute;2000/day"
        assert budget("report", ("moderator",)) == "100/hour;500/day"


def test_an_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown community action"):
        action_limit("like")
