#!/usr/bin/env bash
# The README's second command: lint, type-check and test against real Postgres and Redis.
# Extra arguments go to pytest. The suite makes (and drops) its own database.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"
cd "$BY_ROOT"

ensure_venv
ensure_chromium
# Tests always use the project-local services, never a server named by the environment.
unset DATABASE_URL REDIS_URL
ensure_postgres
ensure_redis
export BOTYARD_TEST_PG_ADMIN_URL="$BY_PG_ADMIN_URL"
export BOTYARD_TEST_REDIS_URL="redis://127.0.0.1:$BY_REDIS_PORT/15"
export BOTYARD_ENV=test
unset DATABASE_URL REDIS_URL

by_log "ruff check";          ruff check .
by_log "ruff format --check"; ruff format --check .
by_log "mypy";                mypy
by_log "pytest"
status=0
pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    by_log "pytest collected no tests: that is a failure here"
    status=1
fi
exit "$status"
