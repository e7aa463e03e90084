# fhirgate — `make run` to try it, `make test` to test everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser run serve test test-sqlite test-postgres lint format clean bench bench-oauth wrk

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Browser tests drive Debian's chromium (Playwright never downloads a browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## make run: migrate an SQLite database under instance/, prepare the sandbox and a login, serve.
run: install
	$(BIN)/fhirgate db upgrade
	$(BIN)/fhirgate bootstrap
	@echo "serving http://$(HOST):$(PORT) (Ctrl-C stops)"
	$(WITH_WORKER) $(SERVE)

## The server of make run: granian, as in production (README "Production"). It reads each
## request line and its headers before a worker's thread sees the request, so connections that
## send nothing or half a request hold no worker (each of gunicorn's sync workers waited on one).
## Ctrl-C: a worker's stop waits for its idle thread to retire (30 s by default, 5 s here) and
## for every open connection (a browser's keep-alive: for ever), so workers still up after 5 s
## are killed.
RUN_WORKERS ?= 2
SERVE = $(BIN)/granian --interface wsgi --http 1 --no-ws --runtime-mode st --blocking-threads 2 \
	--blocking-threads-idle-timeout 5 --workers-kill-timeout 5 \
	--workers $(RUN_WORKERS) --host $(HOST) --port $(PORT) wsgi:app

## Beside the server, one export worker (fhirgate worker: Bulk Data $export jobs), so that an
## export started on make run's server completes; it stops with the server.
WITH_WORKER = $(BIN)/fhirgate worker & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM;

## make serve: only that server and its export worker, on the database the environment names (no
## install, no migration); tests/test_make_run_server.py starts it this way.
serve:
	$(WITH_WORKER) $(SERVE)

## make test: the whole suite (SQLite; TEST_DATABASE_URL=postgresql+psycopg://... for PostgreSQL).
test: install browser
	$(BIN)/pytest

test-postgres: install browser
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app oauth fhir tests wsgi.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format app oauth fhir tests wsgi.py

## make bench: ingestion, read and search figures on PostgreSQL (127.0.0.1:5432) in a database
## of its own, fhirgate_bench, dropped at the end (BENCH_KEEP=1 keeps it). BENCH_PATIENTS=100 for a
## quick run; the other BENCH_* knobs are in benchmarks/README.md. Results: benchmarks/results/latest.txt
BENCH_PATIENTS ?= 1000

bench: install wrk
	BENCH_PATIENTS=$(BENCH_PATIENTS) $(BIN)/python -m benchmarks.run

## make bench-oauth: the token endpoint against node oidc-provider (npm, into .cache/) under the same
## load generator (wrk, from apt), on PostgreSQL; prints req/s, p50, p99 and the ratio.
bench-oauth: install wrk
	$(BIN)/python -m benchmarks.oauth_peers

## make bench-fairness: four clients send the heaviest searches and Bundles the limits allow while a
## fifth reads Patient/{id}; prints its p95 alone and under the load (target <= 3x) and the workers'
## memory growth (target <= 100 MB). In a database of its own, fhirgate_fairness (BENCH_FAIR_KEEP=1
## keeps it). Knobs in benchmarks/fairness.py.
bench-fairness: install wrk
	$(BIN)/python -m benchmarks.fairness

## The benchmarks' load generator, from apt.
wrk:
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache *.egg-info
