# Two commands: `make run` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export DEBUG ?= 1

.PHONY: run test install migrate demo worker bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

# Starts the platform with demo data: daphne (HTTP + websockets), and a Celery worker + beat when REDIS_URL is set
# (without it, tasks run in-process). Ctrl-C stops everything. Daphne flags for chargers: sockets never time out
# (its default closes them after 24 h), handshakes may take 60 s and 4096 may wait (reconnect storms).
run: demo
	@$(PY) manage.py collectstatic --noinput -v0
	@$(PY) manage.py ensure_admin
	@echo ""
	@echo "  dashboard:  http://$(HOST):$(PORT)/           (admin / admin, DEBUG only)"
	@echo "  admin:      http://$(HOST):$(PORT)/admin/"
	@echo "  OCPI:       http://$(HOST):$(PORT)/ocpi/versions"
	@echo "  OCPP:       ws://$(HOST):$(PORT)/ocpp/DEMO-CP-1   (HTTP Basic: DEMO-CP-1 and the secret above)"
	@echo ""
	@trap 'kill 0' INT TERM EXIT; \
	if [ -n "$$REDIS_URL" ]; then $(VENV)/bin/celery -A cpo worker -B -l warning --concurrency 2 & fi; \
	$(VENV)/bin/daphne -e tcp:port=$(PORT):interface=$(HOST):backlog=4096 \
	  --websocket_timeout -1 --websocket_connect_timeout 60 cpo.asgi:application

worker: install
	$(VENV)/bin/celery -A cpo worker -B -l info

# The whole suite. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI sets them).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Lint, formatting and types, as CI checks them (configuration in pyproject.toml).
.PHONY: lint
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var test-output
