# The two commands of the README. Each picks Python >= 3.12 by itself (scripts/find-python).
.PHONY: run dev test setup fakeprovider lint format bench

run:  ## set up and start everything (embedded PostgreSQL, Daphne on :8000, one task worker)
	@scripts/setup app
	@.venv/bin/python manage.py serve

dev:  ## the same as run, in development mode (DEBUG=1: tracebacks, static files from the source)
	@scripts/setup dev
	@DEBUG=1 .venv/bin/python manage.py serve

test:  ## set up and run ruff + the whole suite, browser tests included; leaves nothing running
	@scripts/test

setup:
	@scripts/setup dev

lint:
	@scripts/setup dev && .venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	@scripts/setup dev && .venv/bin/ruff check --fix . && .venv/bin/ruff format .
