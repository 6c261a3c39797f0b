# Two commands on a fresh machine: `make run` and `make test`. Each builds .venv from the lock file itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck lock clean services

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements-dev.lock | $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	touch $(STAMP)

## run: migrate, bootstrap and start web, ws, worker and beat on the embedded defaults (Ctrl-C stops all)
run: $(STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py bootstrap
	DEBUG=$${DEBUG:-1} $(VENV)/bin/honcho -f Procfile start

## test: the whole suite with coverage (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The Django plugin imports the settings, which need secrets; these exist only for the type check.
typecheck: $(STAMP)
	DJANGO_SECRET_KEY=typecheck-only JWT_SECRET=typecheck-only-typecheck-only-typecheck ENV_FILE=/dev/null \
		$(VENV)/bin/mypy .

## lock: re-pin every dependency from pyproject.toml
lock: | $(VENV)/bin/python
	$(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links pyproject.toml -o requirements.lock
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra dev pyproject.toml -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
