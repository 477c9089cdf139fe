#!/usr/bin/env bash
# Stop the project-local Postgres and Redis started by up.sh or test.sh (data is kept in var/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"

bindir="$(by_pg_bindir || true)"
if [ -n "$bindir" ] && [ -f "$BY_VAR/postgres/PG_VERSION" ] &&
    by_pg_run "$bindir/pg_ctl" -D "$BY_VAR/postgres" status >/dev/null 2>&1; then
    by_log "stopping Postgres"
    by_pg_run "$bindir/pg_ctl" -D "$BY_VAR/postgres" -m fast -w stop >/dev/null
fi
if command -v redis-cli >/dev/null 2>&1 &&
    redis-cli -h 127.0.0.1 -p "$BY_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    by_log "stopping Redis"
    redis-cli -h 127.0.0.1 -p "$BY_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
fi
