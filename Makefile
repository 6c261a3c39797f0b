# Two commands on a fresh machine: `make run` and `make test`. Each builds .venv from a lock file itself:
# `run` only what running needs (requirements.lock), `test` the development lock too, both with uv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck lock clean services bench schema

$(VENV)/bin/python:
	@echo "== [setup] a virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)

# uv installs a lock file in seconds where pip took minutes (issue 17: 293 s of a 310 s first run).
$(UV): | $(VENV)/bin/python
	@echo "== [setup] uv $(UV_VERSION), the package installer"
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(RUN_STAMP): requirements.lock | $(UV)
	@echo "== [setup] what running needs (requirements.lock)"
	$(UV) pip install --python $(PY) --require-hashes -r requirements.lock
	touch $@

# The development lock holds the runtime one, same versions: installing it serves `run` too.
$(STAMP): requirements-dev.lock | $(UV)
	@echo "== [setup] what the tests need (requirements-dev.lock)"
	$(UV) pip install --python $(PY) --require-hashes -r requirements-dev.lock
	touch $@ $(RUN_STAMP)

## run: migrate, bootstrap, seed the demo, then start web, ws, worker, beat and the sandbox's Graph
## stand-in on the embedded defaults (Ctrl-C stops all, and make ends with status 0: chatbot/foreground.py);
## with REDIS_URL set, also WhatsApp Web against its stand-in (worker-web, web-standin; play the phone at
## http://127.0.0.1:8200/standin/phone)
run: $(RUN_STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	@DEBUG=$${DEBUG:-1} $(PY) manage.py bootstrap > $(VENV)/.bootstrap-out; status=$$?; \
		grep -v "generated admin password" $(VENV)/.bootstrap-out; exit $$status
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo
	@web=http://127.0.0.1:$${WEB_PORT:-8000}; printf '\n'; printf '%s\n' \
		"dashboard   $$web/inbox/" "sandbox     $$web/sandbox/ (log in as admin)" "admin       $$web/admin/ (user admin)" \
		"API docs    $$web/api/docs/" "health      $$web/healthz  $$web/readyz  $$web/metrics" \
		"WebSockets  ws://127.0.0.1:$${WS_PORT:-8001}/ws/live/" \
		"Graph API   http://127.0.0.1:$${GRAPH_PORT:-8100}/ (stand-in for the sandbox number)" \
		"WA Web      $$web/whatsapp-web/ (phone: http://127.0.0.1:$${WEB_STANDIN_PORT:-8200}/standin/phone)"; \
		grep -h "generated admin password" $(VENV)/.bootstrap-out || \
		echo "admin password: the one set before (ADMIN_PASSWORD); to reset it: $(PY) manage.py changepassword admin"; \
		rm -f $(VENV)/.bootstrap-out; printf '\n'
	@DEBUG=$${DEBUG:-1} DASHBOARD_WS_URL=$${DASHBOARD_WS_URL:-ws://127.0.0.1:$${WS_PORT:-8001}/ws/live/} \
		WHATSAPP_WEB_URL=$${WHATSAPP_WEB_URL:-http://127.0.0.1:$${WEB_STANDIN_PORT:-8200}/} \
		WHATSAPP_WEB_BRIDGE_BUNDLE=$${WHATSAPP_WEB_BRIDGE_BUNDLE:-standins/whatsapp_web_wajs.js} \
		$(PY) -m chatbot.foreground $(VENV)/bin/honcho -f Procfile -e $${ENV_FILE:-.env} start

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

## schema: write the API's OpenAPI schema to docs/api/openapi.yaml (tests/test_api_schema.py fails on drift)
schema: $(STAMP)
	DEBUG=1 ENV_FILE=/dev/null DJANGO_SECRET_KEY=schema-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz \
		JWT_SECRET=schema-only-0123456789-0123456789-abcdefghij $(PY) manage.py spectacular --file docs/api/openapi.yaml

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
	$(VENV)/bin/pip-compile -q --strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links pyproject.toml -o requirements.lock
	$(VENV)/bin/pip-compile -q --strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links --extra dev pyproject.toml -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
