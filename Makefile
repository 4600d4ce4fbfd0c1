# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SQLITE_TEST_URL ?= sqlite:///$(CURDIR)/.test-conversions.sqlite
POSTGRES_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/conversions_test
PYTEST_ARGS ?=
# e.g. make bench BENCH_ARGS="--server granian --engine postgres"
BENCH_ARGS ?=

.PHONY: install run test test-sqlite test-postgres lint typecheck format bench bench-reads bench-memory bench-header bench-import soak soak-postbacks clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench,profiling]'
	touch $@

install: $(INSTALLED)

## Serve on the embedded SQLite default at http://127.0.0.1:8000 (development mode).
run: install
	$(BIN)/conversions migrate
	$(BIN)/conversions serve --dev

## Lint, type-check, then the whole suite on SQLite and on PostgreSQL.
test: lint typecheck test-sqlite test-postgres

test-sqlite: install
	DATABASE_URL=$(SQLITE_TEST_URL) $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install
	DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy, strict, over the application, the benchmarks and the soak (pyproject.toml [tool.mypy]).
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Pixel throughput against a bare Litestar app, on PostgreSQL and SQLite (needs wrk).
bench: install
	$(BIN)/python bench/pixel_bench.py $(BENCH_ARGS)

## 10,000 conversions through a served app while its PostgreSQL crashes and restarts.
soak: install
	$(BIN)/python -m scripts.soak

## 2,000 conversions with postback rules while the receiver is down a minute and the app restarts.
soak-postbacks: install
	$(BIN)/python -m scripts.soak_postbacks

## GraphQL read latency at 1,000,000 conversions on PostgreSQL, with the EXPLAINs.
bench-reads: install
	$(BIN)/python bench/read_bench.py

## The app's memory over 5 minutes of load on PostgreSQL (needs wrk).
bench-memory: install
	$(BIN)/python bench/memory_bench.py

## A worker's memory under a 200 MB request header, and half-sent requests, before/after.
bench-header: install
	$(BIN)/python bench/header_bench.py

## `conversions import` of a 1,000,000-row CSV on SQLite and PostgreSQL: rows/s and memory.
## e.g. make bench-import IMPORT_BENCH_ARGS="--rows 100000 --engine postgres"
bench-import: install
	$(BIN)/python bench/import_bench.py $(IMPORT_BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info .test-conversions.sqlite*
