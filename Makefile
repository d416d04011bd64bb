# ITIRP: `make run` starts the platform, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test test-sqlite test-fast bench lint format install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The platform on this machine: web (itirp.serve, granian), Celery worker and beat, together; Ctrl-C stops all.
# Nothing set = SQLite and the filesystem broker in ./var; DATABASE_URL / REDIS_URL switch to PostgreSQL / Redis.
# Logs: one short human line per event (LOG_FORMAT=json for the production lines), coloured when make's
# terminal is one (honcho pipes the processes' output, so they cannot tell themselves).
run: export DEBUG ?= 1
run: export LOG_FORMAT ?= console
run: export LOG_COLOR ?= $(shell [ -t 2 ] && echo 1 || echo 0)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_instruments --new-only
	$(BIN)/python manage.py generate_history
	$(BIN)/python manage.py create_demo_users
	@echo ""
	@echo "ITIRP is starting on http://127.0.0.1:$(PORT)"
	@echo "  API:    http://127.0.0.1:$(PORT)/api/v1/   (POST /api/v1/auth/login for a token)"
	@echo "  Docs:   http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Admin:  http://127.0.0.1:$(PORT)/admin/"
	@echo "  Health: http://127.0.0.1:$(PORT)/api/v1/health"
	@echo "  Demo users: trader1/trader123 trader2/trader234 (TRADER)  risk1/risk123 risk2/risk234 (RISK_MANAGER)"
	@echo "              compliance1/compliance123 (COMPLIANCE)  admin/admin123 (ADMIN); desk EQ, book MAIN"
	@echo "  Market: 16 demo instruments (GET /api/v1/instruments), prices from the simulated feed"
	@echo ""
	ITIRP_PORT=$(PORT) exec $(BIN)/honcho --no-prefix -f Procfile.dev start

# The whole suite on PostgreSQL and Redis (defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:6379).
# Unreachable servers skip their tests with the reason shown; REQUIRE_SERVICES=1 makes that a failure.
# The fault tests (their own PostgreSQL cluster, Redis and processes) run in a second pytest process beside
# the rest (tools/run_tests.py); PYTEST_ARGS naming a path, or TESTS_SERIAL=1, runs plain pytest.
test: install-dev
	$(BIN)/python tools/run_tests.py $(PYTEST_ARGS)

# The order path and risk analytics on the embedded database of `make run` (SQLite, no Redis): the tests that
# need neither.
test-sqlite: install-dev
	ITIRP_TEST_DATABASE=sqlite $(BIN)/python -m pytest tests/orders tests/risk tests/execution tests/analytics $(PYTEST_ARGS)

# The same without the slow worker, browser and fault tests.
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Performance (bench/run_bench.py): the production topology on 127.0.0.1 (database itirp_bench, Redis db 8),
# wrk at 8/32/64 connections, baselines, execution, audit; report in bench/results/bench.md. BENCH_ARGS passes options.
bench: install-dev
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

# Style, layers and types (also run by .ci/run before the tests, and by pre-commit).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=1 $(BIN)/mypy

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
