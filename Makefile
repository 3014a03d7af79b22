# Two entry points on a fresh machine (Python 3.11+, Node with npm):
#   make demo   the main job on the embedded SQLite default, no server, no configuration
#   make test   everything CI runs: the test suite on SQLite, dynalite, moto's server and
#               redis-server, then ruff, the import layers, mypy --strict and the docs build
# Every gate command lives in tox.ini; these targets only bootstrap tox and call it.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# tox (and uv, which makes its environments) look for python3.X on PATH; pyenv's versions
# sit behind shims that refuse to run unless selected, so their own directories go first.
PYENV_ROOT ?= $(HOME)/.pyenv
empty :=
space := $(empty) $(empty)
PYTHON_DIRS := $(subst $(space),:,$(wildcard $(PYENV_ROOT)/versions/3.1[1-3].*/bin))
TOX := $(if $(PYTHON_DIRS),PATH="$(PYTHON_DIRS):$$PATH") $(BIN)/tox

.PHONY: demo test lint typing docs bench soak clean redis-server

# The development environment: the package with every extra, for running tools by hand.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Only tox (with uv to install its environments): all that the gate needs up front.
$(BIN)/.installed-tox:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'tox>=4.21' 'tox-uv>=1.11'
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

# The suite on every Python 3.11-3.13 found and on the lowest allowed dependencies, then
# ruff, the import layers, mypy --strict and the docs.
test: $(BIN)/.installed-tox .tools/node_modules/dynalite/cli.js redis-server
	$(TOX) run

lint: $(BIN)/.installed-tox
	$(TOX) run -e lint

typing: $(BIN)/.installed-tox
	$(TOX) run -e typing

docs: $(BIN)/.installed-tox redis-server
	$(TOX) run -e docs

# Not part of `make test`: mixed traffic with injected faults, then invariant and
# linearizability checks (tests/soak.py). SOAK_SECONDS=60 make soak for a short run.
SOAK_SECONDS ?= 600
soak: $(BIN)/.installed .tools/node_modules/dynalite/cli.js redis-server
	$(BIN)/python -m tests.soak --duration $(SOAK_SECONDS)

bench: $(BIN)/.installed .tools/node_modules/dynalite/cli.js redis-server
	$(BIN)/python benchmarks/sqlite_overhead.py
	$(BIN)/python benchmarks/dynamodb_overhead.py
	$(BIN)/python benchmarks/redis_overhead.py
	$(BIN)/python benchmarks/bulk_calls.py
	$(BIN)/python benchmarks/index_scale.py
	$(BIN)/python benchmarks/s3_index.py

clean:
	rm -rf $(VENV) .tox .tools .demo docs/_build .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
