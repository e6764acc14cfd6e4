# ReplayWeb: `make run` to try it, `make test` for the whole suite, `make bench` for figures.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLES ?= $(abspath ../shared/samples)
export REPLAYWEB_SAMPLES ?= $(SAMPLES)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench install install-dev migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py ensure_admin > /dev/null
	$(BIN)/python manage.py load_demo --once

run: demo
	@echo
	@$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)
	@echo
	@# two workers: one imports uploads, one builds replay indexes (so a replay never waits behind a
	@# big import); both stop with the server (Ctrl-C)
	@$(BIN)/python manage.py worker --queues default & imports=$$!; \
	$(BIN)/python manage.py worker --queues replay & replays=$$!; \
	trap 'kill $$imports $$replays 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/bench
