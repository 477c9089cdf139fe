"""Transient errors fail the job for a retry; anything else is the bot's (or the row's) fault."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from engine.params import ParamError
from workers.transient import is_transient


def _dbapi(cls: type[DBAPIError], invalidated: bool = False) -> DBAPIError:
    return cls("SELECT 1", {}, Exception("boom"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_dbapi(OperationalError), True),  # connection lost, deadlock, statement timeout
        (_dbapi(DBAPIError, invalidated=True), True),
        (JobTimeoutException("too slow"), True),
        (RedisConnectionError("refused"), True),
        (_dbapi(IntegrityError), False),  # the row is wrong: retrying changes nothing
        (ResponseError("WRONGTYPE"), False),
        (ParamError({"fast": ["must be below slow"]}), False),
        (TypeError("bogus state"), False),
    ],
)
def test_what_counts_as_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
