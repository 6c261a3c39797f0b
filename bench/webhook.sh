#!/usr/bin/env bash
# Webhook ingestion benchmark: signed single-message deliveries per second through gunicorn, side by side
# with /healthz (a bare JSON view) on the same server in the same run; the memory of the gunicorn
# processes meanwhile; the SQL and Redis commands of one delivery; then a py-spy profile of the workers
# under the same webhook load (a separate pass, so the profiler's cost stays out of the figures above).
# Needs PostgreSQL and Redis on localhost and wrk.
# Usage: bash bench/webhook.sh [seconds] [connections]      PROFILE=0 skips the profiled pass.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench/webhook.sh needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }
SECONDS_RUN=${1:-15}
CONNS=${2:-32}
PROFILE=${PROFILE:-1}
DB=bench_webhook
RESULTS=bench/results
PLOTS=docs/benchmarks
export THREADS=2 # wrk threads
# Each wrk thread of each pass gets its own slice of the pre-signed bodies: enough for 3,000 req/s per thread.
export SLICE=$((SECONDS_RUN * 3000 > 10000 ? SECONDS_RUN * 3000 : 10000))
PASSES=2 # the measured webhook pass, the profiled one
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/11"
export DEBUG=0 SECURE_SSL_REDIRECT=0 LOG_LEVEL=WARNING ENV_FILE=/dev/null
export DJANGO_SECRET_KEY=bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
export JWT_SECRET=bench-only-jwt-secret-0123456789-abcdef METRICS_TOKEN=bench-only-metrics-token-0123
export FERNET_KEYS=$(.venv/bin/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
mkdir -p "$RESULTS" "$PLOTS"
rm -f "$RESULTS/memory-webhook.json.marks"
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
redis-cli -n 11 flushdb >/dev/null
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py shell -c "
from apps.accounts.models import Workspace
from apps.whatsapp.models import Channel
ws = Workspace.objects.create(name='Bench', slug='bench')
Channel.objects.create(workspace=ws, kind='cloud', phone_number_id='bench-1', app_secret='bench-secret')"
echo "== SQL and Redis per delivery"
.venv/bin/python bench/webhook_queries.py bench-1 bench-secret | sed -n 3p
bodies=$(mktemp)
pid="" mem="" spies=""
cleanup() {
  for p in $spies $mem $pid; do kill "$p" 2>/dev/null || true; done
  for p in $spies $mem $pid; do wait "$p" 2>/dev/null || true; done
  rm -f "$bodies"
}
trap cleanup EXIT
.venv/bin/python bench/webhook_bodies.py "$bodies" $((PASSES * THREADS * SLICE)) bench-1 bench-secret
WEB_PORT=8091 WEB_WORKERS=2 WEB_THREADS=8 .venv/bin/gunicorn chatbot.wsgi --config chatbot/gunicorn.conf.py >/tmp/bench-gunicorn.log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8091/healthz >/dev/null && break; sleep 0.2; done
.venv/bin/python bench/memory.py "$RESULTS/memory-webhook.json" "bash bench/webhook.sh $SECONDS_RUN $CONNS" \
  "gunicorn master/gunicorn worker=$pid" "PostgreSQL backends ($DB)=cmd:postgres $DB" \
  "PostgreSQL (whole server, summed)=tree:$(.venv/bin/python -c 'import sys; sys.path.insert(0, "bench"); import memory; print(memory.postmaster_pid())')" \
  "Redis (whole server)=$(redis-cli info server | awk -F: '/^process_id/ {print $2}' | tr -d '\r')" \
  "wrk (load generator)=cmd:wrk -t" &
mem=$!
summary() { # wrk output -> "req/s | p50 | p90 | p99 | non-2xx"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
       END {printf "%s | %s | %s | %s | %s", rps, p50, p90, p99, (bad == "" ? 0 : bad)}'
}
echo "== bare view /healthz"
echo "bare view" >>"$RESULTS/memory-webhook.json.marks"
bare=$(WRK_PERCENTILES=$RESULTS/wrk-bare.json wrk -t$THREADS -c"$CONNS" -d"${SECONDS_RUN}s" --latency \
  -s bench/percentiles.lua http://127.0.0.1:8091/healthz)
echo "$bare" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
echo "== webhook, signed single-message deliveries"
echo "webhook" >>"$RESULTS/memory-webhook.json.marks"
hook=$(BODIES_FILE=$bodies WRK_PERCENTILES=$RESULTS/wrk-webhook.json wrk -t$THREADS -c"$CONNS" \
  -d"${SECONDS_RUN}s" --latency -s bench/webhook.lua http://127.0.0.1:8091 -- 0)
echo "$hook" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
sleep 1
kill "$mem" && wait "$mem" || true
mem=""
stored=$(.venv/bin/python manage.py shell -v 0 -c "
from apps.conversations.models import Message
print(Message.objects.filter(direction='in').count())")
echo "stored inbound messages: $stored"
{
  echo "## Webhook ingestion vs a bare view"
  echo
  echo "\`bash bench/webhook.sh $SECONDS_RUN $CONNS\`: gunicorn (2 workers x 8 threads, DEBUG=0) on PostgreSQL and Redis,"
  echo "wrk with $THREADS threads and $CONNS connections for $SECONDS_RUN s per endpoint. Webhook requests are signed"
  echo "single-message deliveries, each with a new wamid (a real insert plus an enqueue after commit); no worker"
  echo "consumes the queue during the run."
  echo
  echo "| endpoint | req/s | p50 | p90 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  echo "| GET /healthz (bare JSON view) | $(echo "$bare" | summary) |"
  echo "| POST /webhooks/whatsapp/ | $(echo "$hook" | summary) |"
  echo
  echo "Inbound messages stored during the webhook run: $stored."
} >"$RESULTS/webhook.md"

if [ "$PROFILE" = 1 ]; then
  # Three samplers at once on the same load: active threads (where a request's time goes, waits on
  # PostgreSQL and Redis included) as raw stacks and as a flamegraph, and only the thread holding the
  # GIL (where the Python CPU goes).
  echo "== webhook under py-spy (all gunicorn processes, 100 samples/s, --nonblocking)"
  spy=(.venv/bin/py-spy record --pid "$pid" --subprocesses --nonblocking --rate 100 --duration "$SECONDS_RUN")
  "${spy[@]}" --format raw -o "$RESULTS/webhook-profile.txt" >/tmp/bench-py-spy-raw.log 2>&1 &
  spies="$!"
  "${spy[@]}" --gil --format raw -o "$RESULTS/webhook-profile-gil.txt" >/tmp/bench-py-spy-gil.log 2>&1 &
  spies="$spies $!"
  "${spy[@]}" --format flamegraph -o "$PLOTS/webhook-profile.svg" >/tmp/bench-py-spy-svg.log 2>&1 &
  spies="$spies $!"
  sleep 1 # py-spy attaches
  profiled=$(BODIES_FILE=$bodies wrk -t$THREADS -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s bench/webhook.lua \
    http://127.0.0.1:8091 -- 1)
  echo "$profiled" | grep -E "Requests/sec" || true
  for p in $spies; do wait "$p" || echo "py-spy failed: see /tmp/bench-py-spy-*.log"; done
  spies=""
  .venv/bin/python bench/profile_summary.py webhook "$RESULTS/webhook-profile.txt" "$RESULTS/webhook-profile-gil.txt" \
    --rps "$(echo "$profiled" | awk '/Requests\/sec/ {print $2}')" --seconds "$SECONDS_RUN" --connections "$CONNS" \
    --unprofiled-rps "$(echo "$hook" | awk '/Requests\/sec/ {print $2}')" >"$RESULTS/webhook-profile.md"
  head -n 30 "$RESULTS/webhook-profile.md"
fi
