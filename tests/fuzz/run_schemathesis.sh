#!/usr/bin/env bash
# API fuzzing: start the web app on a scratch SQLite database, log in as an owner and let
# schemathesis walk /api/schema/ with its default checks. Any failure (a 500, an answer that
# breaks the schema, ...) fails the run. FUZZ_EXAMPLES bounds the time (default: 15 per operation).
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
port=${FUZZ_PORT:-8765}
export DATABASE_URL="sqlite:///$work/fuzz.sqlite3" REDIS_URL="" DATA_DIR="$work" ENV_FILE=/dev/null DEBUG=0
export DJANGO_SECRET_KEY=fuzz-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
export JWT_SECRET=fuzz-only-jwt-secret-0123456789-abcdefghij METRICS_TOKEN=fuzz-only-metrics-token-0123
export FERNET_KEYS=dGVzdC1vbmx5LWZlcm5ldC1rZXktMDEyMzQ1Njc4OTA=
export ADMIN_PASSWORD=fuzz-only-admin-passphrase-2024 SECURE_SSL_REDIRECT=0 CELERY_TASK_ALWAYS_EAGER=0
# Nothing listens on these: calls to local model servers fail fast instead of waiting.
export LMSTUDIO_BASE_URL=http://127.0.0.1:9 OLLAMA_BASE_URL=http://127.0.0.1:9
# The Graph API stand-in answers a new Cloud channel's ownership check (no internet here: Meta's
# real URL would make every channel creation a 503).
graph_port=${FUZZ_GRAPH_PORT:-8766}
export WHATSAPP_GRAPH_URL="http://127.0.0.1:$graph_port" WHATSAPP_SANDBOX_GRAPH_URL="http://127.0.0.1:$graph_port"
export API_RATE_LIMIT_USER=1000000/60 API_RATE_LIMIT_ANON=1000000/60 LOGIN_MAX_FAILURES_PER_IP=1000000
# One login serves the whole run, which on a busy machine can outlast the usual 15 minutes.
export JWT_ACCESS_MINUTES=240
PY=.venv/bin/python

$PY manage.py migrate --noinput -v 0
$PY manage.py bootstrap >/dev/null
$PY -m standins.graph --port "$graph_port" --log-level warning &
graph=$!
.venv/bin/gunicorn chatbot.wsgi -b "127.0.0.1:$port" -w 2 --log-level warning &
server=$!
trap 'kill "$server" "$graph" 2>/dev/null; wait "$server" "$graph" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

token=$(curl -fs -X POST "http://127.0.0.1:$port/api/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\": \"admin\", \"password\": \"$ADMIN_PASSWORD\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["access"])')

# Every check runs (schemathesis's default); tests/fuzz/schemathesis.toml says what the schema
# cannot, and holds the few narrow exceptions. FUZZ_CHECKS (a list, e.g. not_a_server_error)
# narrows a run by hand. Left out: logout, which would end the very login the run uses, and the
# local-model endpoints, which answer 503 by design when LM Studio / Ollama are not running (as here).
config="$PWD/tests/fuzz/schemathesis.toml"
cd "$work"  # schemathesis keeps a .schemathesis/ cache in the working folder
fuzz() {
  "$OLDPWD/.venv/bin/schemathesis" --config-file "$config" run "http://127.0.0.1:$port/api/schema/" \
    --header "Authorization: Bearer $token" \
    --exclude-path /api/auth/logout \
    ${FUZZ_CHECKS:+--checks "$FUZZ_CHECKS"} \
    --max-examples "${FUZZ_EXAMPLES:-15}" \
    --request-timeout 10 \
    --generation-deterministic \
    "$@"
}
# Editing or removing a member can demote or remove the very owner the run logs in as (once the
# run has made a second owner), and every write after that would only meet 401/403: those go last,
# with member creation for the stateful phase to link from.
edits=(accounts_members_partial_update accounts_members_destroy)
status=0
fuzz --exclude-path-regex '^/api/lmstudio/' "${edits[@]/#/--exclude-operation-id=}" "$@" || status=$?
fuzz --include-operation-id=accounts_members_create "${edits[@]/#/--include-operation-id=}" "$@" || status=$?
exit "$status"
