# Everything a fresh clone needs: `make run` and `make test` create .venv, install, and build the
# dashboard on their own. Needs python3.11 (or python3 >= 3.11) and Node.js >= 20 with npm.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Touched after each install: an install reruns only when its manifest is newer.
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := frontend/node_modules/.installed
# loadscope: a module's test functions (a black-box deployment's scenarios) and a class's tests
# run in one process each.
PYTEST_ARGS ?= -n 2 --dist loadscope

PYTHON_SOURCES := $(shell find app -name '*.py')
WEB_SOURCES := frontend/index.html frontend/vite.config.ts frontend/tsconfig.json \
	$(shell find frontend/src -type f -not -name schema.d.ts)
WEB_BUILD := app/web/index.html
# The dashboard tests drive Debian's Chromium (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install web run test lint migrate

install: $(INSTALLED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

$(NODE_INSTALLED): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

# The dashboard's API types are generated from the API's own OpenAPI document.
frontend/openapi.json: $(INSTALLED) $(PYTHON_SOURCES)
	$(BIN)/automation openapi --output $@

frontend/src/api/schema.d.ts: frontend/openapi.json $(NODE_INSTALLED)
	cd frontend && npm run gen:api

$(WEB_BUILD): frontend/src/api/schema.d.ts $(WEB_SOURCES) $(NODE_INSTALLED)
	cd frontend && npm run build

web: $(WEB_BUILD)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

run: $(INSTALLED) $(WEB_BUILD)
	$(BIN)/automation serve --demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

test: lint $(WEB_BUILD) $(CHROMIUM)
	cd frontend && npm test
	$(BIN)/pytest $(PYTEST_ARGS)

migrate: $(INSTALLED)
	$(BIN)/automation migrate
