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
BY_REDIS_PORT="$(cat "$BY_VAR/run/redis.port" 2>/dev/null || echo "$BY_REDIS_PORT")"
# Only our own Redis: the one keeping its files in this checkout's var/.
if command -v redis-cli >/dev/null 2>&1 &&
    redis-cli -h 127.0.0.1 -p "$BY_REDIS_PORT" config get dir 2>/dev/null |
    grep -qx "$BY_VAR/redis"; then
    by_log "stopping Redis"
    redis-cli -h 127.0.0.1 -p "$BY_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
fi
