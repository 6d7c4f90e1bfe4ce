# Two commands: `make run` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export DEBUG ?= 1

.PHONY: run test install env migrate demo worker bench bench-load clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Development settings in .env (git-ignored), read by manage.py, daphne and Celery, so that commands pasted into
# another shell match the server: DEBUG=1, a SECRET_KEY and the demo charger's secret generated once and kept,
# OCPI_BASE_URL from HOST and PORT (or OCPI_BASE_URL when set). Variables set in the environment always win.
env: install
	@$(PY) manage.py dev_env --host '$(HOST)' --port '$(PORT)' --base-url "$$OCPI_BASE_URL"

migrate: env
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

# Starts the platform with demo data: daphne (HTTP + websockets), and a Celery worker + beat when REDIS_URL is set
# (without it, tasks run in-process). Ctrl-C stops everything. Daphne flags for chargers: sockets never time out
# (its default closes them after 24 h), handshakes may take 60 s and 4096 may wait (reconnect storms); no access log
# (-v 0: three lines per websocket; a refused charger is the one line the gateway logs, frames are in the admin).
# `python -m cpo.server` raises its open-files limit to the hard limit and on TERM closes chargers with 1012 (Service
# Restart) before it exits (docs/deployment.md). The servers run in the background of this recipe's shell, which
# ignores nothing: on Ctrl-C (or TERM) it stops them with TERM and waits for them; if daphne exits by itself, the
# worker is stopped too. The worker, started without -Q, consumes every queue of settings.CELERY_TASK_QUEUES (bulk
# and urgent).
run: demo
	@$(PY) manage.py collectstatic --noinput -v0
	@$(PY) manage.py ensure_admin
	@echo ""
	@echo "  dashboard:  http://$(HOST):$(PORT)/           (admin / admin, DEBUG only)"
	@echo "  admin:      http://$(HOST):$(PORT)/admin/"
	@echo "  OCPI:       http://$(HOST):$(PORT)/ocpi/versions"
	@echo "  OCPP:       ws://$(HOST):$(PORT)/ocpp/DEMO-CP-1   (HTTP Basic: DEMO-CP-1 and the secret above)"
	@echo "  commands:   .venv/bin/python manage.py ...    (in any shell: they read .env)"
	@echo ""
	@pids=""; \
	trap 'kill $$pids 2>/dev/null; wait; exit 0' INT TERM; \
	if [ -n "$$REDIS_URL" ]; then $(VENV)/bin/celery -A cpo worker -B -l warning --concurrency 2 & pids=$$!; fi; \
	$(VENV)/bin/python -m cpo.server -v 0 -e tcp:port=$(PORT):interface=$(HOST):backlog=4096 \
	  --websocket_timeout -1 --websocket_connect_timeout 60 cpo.asgi:application & \
	daphne=$$!; pids="$$pids $$daphne"; \
	wait $$daphne; status=$$?; kill $$pids 2>/dev/null; wait; exit $$status

worker: install
	$(VENV)/bin/celery -A cpo worker -B -l info

# The whole suite. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI sets them), else the embedded
# default (SQLite file under var/, in-memory channel layer, tasks in-process). A developer's .env is not read.
test: install
	CPO_ENV_FILE= $(PY) -m pytest $(PYTEST_ARGS)

# Lint, formatting and types, as CI checks them (configuration in pyproject.toml).
.PHONY: lint
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	CPO_ENV_FILE= $(PY) -m mypy

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

# Load management: 200 connectors under one site limit, time until every charger holds its new share.
bench-load: install
	$(PY) bench/load_management.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var test-output
