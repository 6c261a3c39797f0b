# Two commands on a fresh machine: `make run` and `make test`. Each builds .venv from the lock file itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck lock clean services bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements-dev.lock | $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	touch $(STAMP)

## run: migrate, bootstrap, seed the demo, then start web, ws, worker, beat and the sandbox's Graph
## stand-in on the embedded defaults (Ctrl-C stops all); with REDIS_URL set, also WhatsApp Web against its
## stand-in (worker-web, web-standin; play the phone at http://127.0.0.1:8200/standin/phone)
run: $(STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py bootstrap
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo
	@web=http://127.0.0.1:$${WEB_PORT:-8000}; printf '\n'; printf '%s\n' \
		"dashboard  $$web/inbox/" "sandbox    $$web/sandbox/" "admin      $$web/admin/ (user admin)" \
		"API docs   $$web/api/docs/" "WebSockets ws://127.0.0.1:$${WS_PORT:-8001}/" \
		"WA Web     $$web/whatsapp-web/ (phone: http://127.0.0.1:$${WEB_STANDIN_PORT:-8200}/standin/phone)" ""
	DEBUG=$${DEBUG:-1} DASHBOARD_WS_URL=$${DASHBOARD_WS_URL:-ws://127.0.0.1:8001/ws/live/} \
		WHATSAPP_WEB_URL=$${WHATSAPP_WEB_URL:-http://127.0.0.1:$${WEB_STANDIN_PORT:-8200}/} \
		WHATSAPP_WEB_BRIDGE_BUNDLE=$${WHATSAPP_WEB_BRIDGE_BUNDLE:-standins/whatsapp_web_wajs.js} \
		$(VENV)/bin/honcho -f Procfile -e $${ENV_FILE:-.env} start

## test: the whole suite with coverage (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
test: $(STAMP)
	$(VENV)/bin/pytest

## bench: webhook vs bare view (wrk), SQL per delivery and a py-spy profile; outbound throughput at 80 and
## 1,000 msg/s; end-to-end latency at 10, 100 and 1,000 concurrent conversations with a profile of the
## Celery worker; memory and CPU of every process throughout. Writes docs/benchmarks.md and the plots in
## docs/benchmarks/. Needs PostgreSQL and Redis on localhost and wrk. Not part of `make test`.
## Smaller runs: make bench BENCH_SECONDS=5 BENCH_COUNT=1000 BENCH_LATENCY_COUNT=100 BENCH_LATENCY_LEVELS=10,100
BENCH_SECONDS ?= 15
BENCH_COUNT ?= 10000
BENCH_LATENCY_COUNT ?= 200
BENCH_LATENCY_LEVELS ?= 10,100,1000
bench: $(STAMP)
	bash bench/webhook.sh $(BENCH_SECONDS) 32
	$(PY) bench/outbound.py --count $(BENCH_COUNT) --rates 80,1000
	$(PY) bench/latency.py --count $(BENCH_LATENCY_COUNT) --levels $(BENCH_LATENCY_LEVELS)
	$(PY) bench/report.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The Django plugin imports the settings, which need secrets; these exist only for the type check.
typecheck: $(STAMP)
	DJANGO_SECRET_KEY=typecheck-only JWT_SECRET=typecheck-only-typecheck-only-typecheck \
		METRICS_TOKEN=typecheck-only-metrics ENV_FILE=/dev/null \
		$(VENV)/bin/mypy .

## lock: re-pin every dependency from pyproject.toml
lock: | $(VENV)/bin/python
	$(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links pyproject.toml -o requirements.lock
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra dev pyproject.toml -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
