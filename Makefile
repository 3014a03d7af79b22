# Two entry points on a fresh machine (Python 3.11+, Node with npm):
#   make demo   the main job on the embedded SQLite default, no server, no configuration
#   make test   everything CI runs: the test suite on SQLite, dynalite, moto's server and
#               redis-server, then ruff, the import layers, mypy --strict and the docs build
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test lint typing docs bench soak clean redis-server

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

.tools/node_modules/dynalite/cli.js:
	npm install --no-audit --no-fund --silent --prefix .tools dynalite@4

# The tests start redis-server from the OS package; as root on Debian/Ubuntu (CI), install it.
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  else \
	    echo "make test needs redis-server: apt-get install redis-server (or your OS's package)" >&2; \
	    exit 1; \
	  fi; }

DEMO_URL := sqlite:///.demo/blobcache.db

# The demo needs only the command line, not the test tools.
$(BIN)/.installed-cli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	touch $@

demo: $(BIN)/.installed-cli
	mkdir -p .demo
	$(BIN)/blobcache --url $(DEMO_URL) index examples/registry
	$(BIN)/blobcache --url $(DEMO_URL) stats
	$(BIN)/blobcache --url $(DEMO_URL) verify

test: $(BIN)/.installed .tools/node_modules/dynalite/cli.js redis-server
	$(BIN)/pytest
	$(MAKE) lint typing docs

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typing: $(BIN)/.installed
	$(BIN)/mypy

docs: $(BIN)/.installed redis-server
	$(BIN)/sphinx-build -q -W --keep-going -b html docs docs/_build/html
	$(BIN)/sphinx-build -q -W --keep-going -b doctest docs docs/_build/doctest

# Not part of `make test`: mixed traffic with injected faults, then invariant and
# linearizability checks (tests/soak.py). SOAK_SECONDS=60 make soak for a short run.
SOAK_SECONDS ?= 600
soak: $(BIN)/.installed .tools/node_modules/dynalite/cli.js redis-server
	$(BIN)/python -m tests.soak --duration $(SOAK_SECONDS)

bench: $(BIN)/.installed redis-server
	$(BIN)/python benchmarks/sqlite_overhead.py
	$(BIN)/python benchmarks/redis_overhead.py

clean:
	rm -rf $(VENV) .tools .demo docs/_build .pytest_cache .mypy_cache .ruff_cache .hypothesis
