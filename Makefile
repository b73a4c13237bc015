# Keiko: `make run` installs and starts the platform; `make test` installs and runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install browser interop check lint typecheck drift generate pytest pytest-embedded pytest-real bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The public verification page is tested in Debian's headless Chromium. Installed when
# missing and we may (root, as in CI); otherwise that one test skips with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the verification page test will skip"

# The independent verifiers (Node.js, npm registry) the interoperability tests run, each
# pinned by its package-lock.json: Verifiable Credentials (vc-js) and passport exports'
# leaves and Merkle proofs (leaf-js). Without npm, their tests skip with the reason.
NODE_TOOLS := tests/interop/vc-js tests/interop/leaf-js

tests/interop/%/node_modules/.installed: tests/interop/%/package.json tests/interop/%/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/interop/$* && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the independent verifier test of tests/interop/$* will skip"; fi

interop: $(NODE_TOOLS:%=%/node_modules/.installed)

run: install
	$(VENV)/bin/keiko serve

test: install check pytest

check: lint typecheck drift

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/buf lint

typecheck: install
	$(VENV)/bin/mypy keiko services gateway chain scripts

# Generated code must match its sources: protobuf, GraphQL SDL, Cairo artifacts.
drift: install
	$(PY) scripts/gen_proto.py --check
	$(PY) scripts/export_schema.py --check
	$(PY) scripts/compile_contracts.py --check

generate: install
	$(PY) scripts/gen_proto.py
	$(PY) scripts/export_schema.py
	$(PY) scripts/compile_contracts.py

# The same suite twice: on the embedded engines, then on PostgreSQL + Redis.
pytest: pytest-embedded pytest-real

pytest-embedded: install browser interop
	KEIKO_TEST_BACKEND=embedded $(VENV)/bin/pytest -q

pytest-real: install interop
	KEIKO_TEST_BACKEND=real $(VENV)/bin/pytest -q

bench: install
	$(PY) scripts/bench/grpc_unary.py

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache $(NODE_TOOLS:%=%/node_modules)
