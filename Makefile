# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install browser seed bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Install, load the seed data into the embedded store if it is empty, and serve.
run: install
	$(BIN)/timeline seed --if-empty
	$(BIN)/timeline serve --host $(HOST) --port $(PORT)

## Debian's Chromium for the browser tests (tests/test_web.py), installed when missing
## if apt-get may run; otherwise those tests skip with the same hint (under CI they fail).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing Chromium for the browser tests" && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "no Chromium at /usr/bin/chromium: the browser tests will skip (apt-get install chromium)"

## Install and run the whole test suite (PostgreSQL tests included).
test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/import.py

clean:
	rm -rf $(VENV) instance *.egg-info
