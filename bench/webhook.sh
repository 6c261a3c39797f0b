#!/usr/bin/env bash
# Quick webhook ingestion benchmark: signed single-message deliveries per second through gunicorn,
# side by side with /healthz (a bare JSON view) on the same server in the same run.
# Needs PostgreSQL and Redis on localhost and wrk. Usage: bash bench/webhook.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-15}
CONNS=${2:-32}
DB=bench_webhook
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/11"
export DEBUG=0 SECURE_SSL_REDIRECT=0 LOG_LEVEL=WARNING ENV_FILE=/dev/null
export DJANGO_SECRET_KEY=bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
export JWT_SECRET=bench-only-jwt-secret-0123456789-abcdef
export FERNET_KEYS=$(.venv/bin/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py shell -c "
from apps.accounts.models import Workspace
from apps.whatsapp.models import Channel
ws = Workspace.objects.create(name='Bench', slug='bench')
Channel.objects.create(workspace=ws, kind='cloud', phone_number_id='bench-1', app_secret='bench-secret')"
bodies=$(mktemp)
.venv/bin/python bench/webhook_bodies.py "$bodies" 200000 bench-1 bench-secret
WEB_PORT=8091 WEB_WORKERS=2 WEB_THREADS=8 .venv/bin/gunicorn chatbot.wsgi --config chatbot/gunicorn.conf.py >/tmp/bench-gunicorn.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f $bodies' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:8091/healthz >/dev/null && break; sleep 0.2; done
summary() { # wrk output -> "req/s | p50 | p90 | p99 | non-2xx"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
       END {printf "%s | %s | %s | %s | %s", rps, p50, p90, p99, (bad == "" ? 0 : bad)}'
}
echo "== bare view /healthz"
bare=$(wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency http://127.0.0.1:8091/healthz)
echo "$bare" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
echo "== webhook, signed single-message deliveries"
hook=$(BODIES_FILE=$bodies wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s bench/webhook.lua http://127.0.0.1:8091)
echo "$hook" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
stored=$(.venv/bin/python manage.py shell -v 0 -c "
from apps.conversations.models import Message
print(Message.objects.filter(direction='in').count())")
echo "stored inbound messages: $stored"
mkdir -p bench/results
{
  echo "## Webhook ingestion vs a bare view"
  echo
  echo "\`bash bench/webhook.sh $SECONDS_RUN $CONNS\`: gunicorn (2 workers x 8 threads, DEBUG=0) on PostgreSQL and Redis,"
  echo "wrk with 2 threads and $CONNS connections for $SECONDS_RUN s per endpoint. Webhook requests are signed"
  echo "single-message deliveries, each with a new wamid (a real insert plus an enqueue after commit); no worker"
  echo "consumes the queue during the run."
  echo
  echo "| endpoint | req/s | p50 | p90 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  echo "| GET /healthz (bare JSON view) | $(echo "$bare" | summary) |"
  echo "| POST /webhooks/whatsapp/ | $(echo "$hook" | summary) |"
  echo
  echo "Inbound messages stored during the webhook run: $stored."
} >bench/results/webhook.md
