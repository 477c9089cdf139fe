#!/usr/bin/env bash
# The README's first command: bring the whole system up on this machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"
cd "$BY_ROOT"

ensure_venv
ensure_postgres
ensure_redis
export BOTYARD_ENV="${BOTYARD_ENV:-development}"
export FLASK_APP=wsgi:app
# Mail goes to the Procfile's development sink (var/mail/) unless SMTP_URL names a real server.
export MAIL_SINK_PORT="${MAIL_SINK_PORT:-1025}"
export SMTP_URL="${SMTP_URL:-smtp://127.0.0.1:$MAIL_SINK_PORT}"
# The development webhook receiver (Procfile "webhooks") verifies and prints deliveries.
export WEBHOOK_SINK_PORT="${WEBHOOK_SINK_PORT:-9099}"
# ...on loopback, which only development may call (settings.py refuses it in production).
if [ "$BOTYARD_ENV" = development ]; then
  export WEBHOOK_ALLOW_LOOPBACK="${WEBHOOK_ALLOW_LOOPBACK:-1}"
fi

by_log "migrating"
flask db upgrade
by_log "seeding"
flask seed --webhook-sink "http://127.0.0.1:$WEBHOOK_SINK_PORT/" --webhook-secret-file var/webhook_secret

by_log "API      http://127.0.0.1:${WEB_PORT:-8000}/api/v1  (docs: /api/docs, health: /health/ready)"
by_log "streams  http://127.0.0.1:${STREAMS_PORT:-8001}/api/v1/market/stream?symbols=BTC-USD  (SSE)"
by_log "queues   http://127.0.0.1:${DASHBOARD_PORT:-9181}  (rq-dashboard)"
by_log "mail     $SMTP_URL; development mail is saved in var/mail/ and summarised by mailsink.1"
by_log "webhooks http://127.0.0.1:$WEBHOOK_SINK_PORT/  (verified deliveries in var/webhooks/, printed by webhooks.1)"
by_log "starting every Procfile process; Ctrl-C stops them (./scripts/down.sh stops the databases)"
exec honcho start -f Procfile
