#!/usr/bin/env bash
# Shared by up.sh, test.sh and down.sh: a virtualenv with the project installed, and a
# project-local Postgres and Redis on loopback with their data under var/.
# Sourced, not executed; callers set -euo pipefail.

BY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BY_VAR="$BY_ROOT/var"
BY_PG_PORT="${BOTYARD_PG_PORT:-54329}"
BY_REDIS_PORT="${BOTYARD_REDIS_PORT:-63790}"
# How many ports after the default to try when another checkout's server holds it.
BY_PORT_TRIES=20
BY_APT_UPDATED=""

# Bold only on a terminal: a log file or CI output gets plain text.
by_log() {
    if [ -t 2 ]; then
        printf '\033[1m[botyard]\033[0m %s\n' "$*" >&2
    else
        printf '[botyard] %s\n' "$*" >&2
    fi
}
by_die() { by_log "error: $*"; exit 1; }

# Installs Debian packages; apt-get update runs at most once per script run.
by_apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        by_die "missing $*; install it (as root: apt-get install -y $*) and run again"
    fi
    if [ -z "$BY_APT_UPDATED" ]; then
        by_log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        BY_APT_UPDATED=1
    fi
    by_log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Waits up to $2 seconds for command $1 to succeed.
by_wait_for() {
    local check="$1" seconds="$2" i
    for ((i = 0; i < seconds * 4; i++)); do
        if eval "$check" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    return 1
}

ensure_venv() {
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        by_apt_install python3-venv python3-pip
    fi
    if [ ! -x "$BY_ROOT/.venv/bin/python" ]; then
        by_log "creating .venv"
        python3 -m venv "$BY_ROOT/.venv"
        "$BY_ROOT/.venv/bin/python" -m pip install -q --upgrade pip
    fi
    local stamp="$BY_ROOT/.venv/.botyard-installed" want
    want="$(sha256sum "$BY_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        by_log "installing the project into .venv"
        "$BY_ROOT/.venv/bin/python" -m pip install -q -e "$BY_ROOT[dev]"
        echo "$want" >"$stamp"
    fi
    export PATH="$BY_ROOT/.venv/bin:$PATH"
}

# The browser tests (tests/browser) drive Debian's Chromium with Playwright; Playwright's own
# browser download is not reachable from these machines.
ensure_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        by_apt_install chromium
    fi
}

by_port_busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The first port from $1 on that nothing listens on (another checkout may hold the default).
by_free_port() {
    local port="$1" i
    for ((i = 0; i < BY_PORT_TRIES; i++)); do
        if ! by_port_busy "$port"; then echo "$port"; return 0; fi
        port=$((port + 1))
    done
    by_die "no free port in $1..$port; set BOTYARD_PG_PORT / BOTYARD_REDIS_PORT"
}

by_pg_bindir() {
    local initdb
    initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$initdb" ] && dirname "$initdb"
}

# Postgres refuses to run as root, so as root the cluster belongs to the postgres user, which
# must be able to reach var/ (a clone under /root is 0700 by default).
by_pg_run() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

by_pg_grant_path() {
    [ "$(id -u)" -eq 0 ] || return 0
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    local dir="$BY_ROOT"
    while [ "$dir" != "/" ]; do
        if ! runuser -u postgres -- test -x "$dir"; then
            by_log "allowing the postgres user to traverse $dir (chmod o+x)"
            chmod o+x "$dir"
        fi
        dir="$(dirname "$dir")"
    done
    chown postgres:postgres "$BY_VAR/postgres" "$BY_VAR/run" "$BY_VAR/log/postgres"
}

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        by_log "using DATABASE_URL from the environment"
        return 0
    fi
    local bindir
    bindir="$(by_pg_bindir || true)"
    if [ -z "$bindir" ]; then
        by_apt_install postgresql
        bindir="$(by_pg_bindir)" || by_die "PostgreSQL installed but initdb not found"
    fi
    mkdir -p "$BY_VAR/postgres" "$BY_VAR/run" "$BY_VAR/log/postgres"
    chmod 700 "$BY_VAR/postgres"
    by_pg_grant_path
    local data="$BY_VAR/postgres" logfile="$BY_VAR/log/postgres/postgres.log"
    if [ ! -f "$data/PG_VERSION" ]; then
        by_log "initialising Postgres in var/postgres"
        by_pg_run "$bindir/initdb" -D "$data" --auth=trust --username=postgres \
            --encoding=UTF8 --locale=C >/dev/null
    fi
    if by_pg_run "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        BY_PG_PORT="$(cat "$BY_VAR/run/pg.port" 2>/dev/null || echo "$BY_PG_PORT")"
    else
        BY_PG_PORT="$(by_free_port "$BY_PG_PORT")"
        echo "$BY_PG_PORT" >"$BY_VAR/run/pg.port"
        by_log "starting Postgres on 127.0.0.1:$BY_PG_PORT"
        by_pg_run "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $BY_PG_PORT -k $BY_VAR/run" start >/dev/null ||
            by_die "Postgres did not start; see $logfile"
    fi
    local psql=("$bindir/psql" -h 127.0.0.1 -p "$BY_PG_PORT" -U postgres -d postgres -qtA)
    by_wait_for "${psql[*]} -c 'select 1'" 30 || by_die "Postgres is not answering; see $logfile"
    if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname = 'botyard'")" != "1" ]; then
        "${psql[@]}" -c "create role botyard login superuser" >/dev/null
    fi
    if [ "$("${psql[@]}" -c "select 1 from pg_database where datname = 'botyard'")" != "1" ]; then
        "${psql[@]}" -c "create database botyard owner botyard" >/dev/null
    fi
    export DATABASE_URL="postgresql://botyard@127.0.0.1:$BY_PG_PORT/botyard"
    export BY_PG_ADMIN_URL="postgresql://botyard@127.0.0.1:$BY_PG_PORT/postgres"
}

ensure_redis() {
    if [ -n "${REDIS_URL:-}" ]; then
        by_log "using REDIS_URL from the environment"
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        by_apt_install redis-server
    fi
    mkdir -p "$BY_VAR/redis" "$BY_VAR/run" "$BY_VAR/log"
    local saved
    saved="$(cat "$BY_VAR/run/redis.port" 2>/dev/null || true)"
    # Ours only if it answers on the port we recorded and keeps its files in our var/.
    if [ -n "$saved" ] && redis-cli -h 127.0.0.1 -p "$saved" config get dir 2>/dev/null |
        grep -qx "$BY_VAR/redis"; then
        BY_REDIS_PORT="$saved"
    else
        BY_REDIS_PORT="$(by_free_port "$BY_REDIS_PORT")"
        echo "$BY_REDIS_PORT" >"$BY_VAR/run/redis.port"
        by_log "starting Redis on 127.0.0.1:$BY_REDIS_PORT"
        redis-server --bind 127.0.0.1 --port "$BY_REDIS_PORT" --dir "$BY_VAR/redis" \
            --daemonize yes --pidfile "$BY_VAR/run/redis.pid" \
            --logfile "$BY_VAR/log/redis.log" --save "" --appendonly no >/dev/null
        by_wait_for "redis-cli -h 127.0.0.1 -p $BY_REDIS_PORT ping | grep -q PONG" 30 ||
            by_die "Redis did not start; see $BY_VAR/log/redis.log"
    fi
    export REDIS_URL="redis://127.0.0.1:$BY_REDIS_PORT/0"
}
