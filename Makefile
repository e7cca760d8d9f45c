# The developer loop. CI runs `make test` on a clean clone (see .ci/run).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := tests/peers
HOST ?= 127.0.0.1
PORT ?= 4443

.PHONY: install run test test-deps lint types bench clean fuzz soak soak-ci

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/vidhub serve --host $(HOST) --port $(PORT)

# System and npm test peers: Debian chromium and redis-server, openvidu-node-client,
# openvidu-browser and playwright-core from npm. Installed from the registries, never committed.
test-deps: install
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@if [ ! -f $(PEERS)/node_modules/.installed ] || [ $(PEERS)/package.json -nt $(PEERS)/node_modules/.installed ]; then \
	  cd $(PEERS) && npm install --no-audit --no-fund --no-package-lock --loglevel=error && touch node_modules/.installed; \
	fi

# The suite runs inside a private network namespace with only loopback up (tests/netns.sh),
# so nothing a test starts (vidhub, Chromium, aiortc) can reach another network. Where the
# kernel forbids namespaces it runs as is; every address in the suite is loopback anyway.
test: test-deps
	@if command -v ip >/dev/null 2>&1 && unshare --map-root-user --net true 2>/dev/null; then \
	  echo "running the suite in a loopback-only network namespace"; \
	  tests/netns.sh $(BIN)/python -m pytest -q -p no:cacheprovider; \
	else \
	  echo "network namespaces unavailable: running the suite on the host's loopback"; \
	  $(BIN)/python -m pytest -q -p no:cacheprovider; \
	fi

# The fuzz suite with 100x the examples of the CI profile (tests/fuzz/conftest.py): minutes.
fuzz: install
	VIDHUB_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz

# Mixed load for SOAK_MINUTES (default 30), failing on leaks or lost state (bench/soak.py).
SOAK_MINUTES ?= 30
soak: install
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES)

# The 3-minute variant; a short run extrapolates RSS noisily, hence the looser slope bound.
soak-ci: install
	$(BIN)/python bench/soak.py --minutes 3 --sample-s 5 --max-rss-mb-per-h 300

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

types: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/rest.py
	$(BIN)/python bench/hub.py
	$(BIN)/python bench/sfu.py

clean:
	rm -rf $(VENV) $(PEERS)/node_modules .pytest_cache .mypy_cache .ruff_cache
