# ablage.ops — the two commands a newcomer needs are `make test` and `make demo`.
# Everything they need is installed by the targets below (venv, apt packages,
# Docker engine, registry, images), cached so that a second run is quick.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.sha256
# The checkout seen as ablage.ops, plus the collections bundled in the pinned `ansible` package.
COLLECTIONS_PATH := $(CURDIR)/.collections:$(VENV)/lib/python3.11/site-packages
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS_PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
VERSION ?= 1.1.0

.PHONY: help venv collection infra stack stack-down lint unit pytest reliability molecule test demo bench build clean

help:
	@echo "make test   - every test and lint gate (installs what it needs); exits non-zero on failure"
	@echo "make demo   - deploy $(VERSION) with playbooks/deploy.yml onto the local reference stack"
	@echo "make lint | unit | stack | stack-down | build"
	@echo "make reliability - the fault campaign alone; writes docs/reliability.md"

# The venv is rebuilt only when requirements.txt changes.
venv: $(STAMP)
$(STAMP): requirements.txt
	@echo "==> Python venv ($(PYTHON)) with requirements.txt"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r requirements.txt
	@sha256sum requirements.txt >$(STAMP)

collection:
	@bash scripts/collection-path.sh >/dev/null

infra:
	@bash scripts/infra.sh

PROJECT_DIR ?= /srv/ablage
stack: venv infra
	@bash scripts/stack.sh images
	@bash scripts/stack.sh up 1.0.0
	@# A self-signed certificate for the pre-flight TLS gate (the reference stack serves plain HTTP on loopback).
	@test -s $(PROJECT_DIR)/tls/ablage.crt || { mkdir -p $(PROJECT_DIR)/tls && openssl req -x509 -newkey rsa:2048 -nodes \
	  -days 365 -subj /CN=ablage.local -keyout $(PROJECT_DIR)/tls/ablage.key -out $(PROJECT_DIR)/tls/ablage.crt 2>/dev/null \
	  && chmod 0600 $(PROJECT_DIR)/tls/ablage.key; }

stack-down:
	@bash scripts/stack.sh down

lint: venv collection infra
	@bash scripts/lint.sh

unit: venv collection
	@$(BIN)/pytest tests/unit -q

# pytest and Molecule run as on a new controller: each with a HOME of its own, emptied first, so
# what only a first run does there (create ~/ablage-reports, ~/.ansible) is tested on every run.
# (Lint keeps the real HOME: ansible-test caches its sanity venvs under ~/.ansible/test.)
FRESH_HOME = rm -rf $(CURDIR)/.cache/home/$(1) && mkdir -p $(CURDIR)/.cache/home/$(1) && HOME=$(CURDIR)/.cache/home/$(1)

# All pytest suites in one run, so coverage of plugins/ counts unit and integration tests together.
pytest: venv collection stack
	@$(call FRESH_HOME,pytest) $(BIN)/pytest tests/unit tests/integration tests/reference-app/tests \
	  --cov=plugins --cov-report=term-missing:skip-covered --cov-fail-under=80

# The fault campaign alone (it also runs inside `make pytest`), writing docs/reliability.md from its results.
reliability: venv collection stack
	@ABLAGE_RELIABILITY_DOC=$(CURDIR)/docs/reliability.md $(BIN)/pytest tests/integration/test_fault_campaign.py -q

# Scenarios live in top-level molecule/ (not extensions/molecule); prerun is off because Galaxy is out of reach.
molecule: venv collection stack
	@$(call FRESH_HOME,molecule) MOLECULE_GLOB='molecule/*/molecule.yml' $(BIN)/molecule test --all

build: venv
	@rm -rf .cache/build && mkdir -p .cache/build
	@$(BIN)/ansible-galaxy collection build --output-path .cache/build --force
	@$(BIN)/ansible-galaxy collection install -p .cache/build/installed --force --no-deps .cache/build/ablage-ops-*.tar.gz
	@for m in plugins/modules/*.py; do n=$$(basename $$m .py); \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.cache/build/installed $(BIN)/ansible-doc -t module ablage.ops.$$n >/dev/null \
	  || { echo "ansible-doc failed for ablage.ops.$$n"; exit 1; }; done
	@echo "==> collection tarball builds, installs, and ansible-doc renders every module"

test: lint build pytest molecule
	@echo "==> make test: all gates passed"

demo: venv collection stack
	@$(BIN)/ansible-playbook playbooks/deploy.yml -i inventories/local -e ablage_version=$(VERSION)

# Measured comparisons, not pass/fail tests (docs/performance.md): deploy downtime (window and zero
# downtime), how a deploy grows with the database and the app hosts, pg_backup, pre-flight, health_probe.
# Quick run: BENCH_PG_SCALE=5 BENCH_DEPLOY_ROUNDS=1 BENCH_PREFLIGHT_ROUNDS=1 BENCH_PROBE_ROUNDS=1 \
#   BENCH_GROWTH_SIZES=0.1 BENCH_GROWTH_HOSTS=2 make bench
bench: venv collection stack
	@$(BIN)/python benchmarks/bench_deploy.py
	@$(BIN)/python benchmarks/bench_deploy.py --contestants ansible,checklist,fair_floor \
		--from-version 1.1.0 --to-version 1.1.1 --name deploy-nomigration
	@command -v hey >/dev/null || apt-get install -y --no-install-recommends hey
	@$(BIN)/python benchmarks/bench_deploy.py --contestants zero_downtime,ansible --load \
		--from-version 1.1.0 --to-version 1.1.1 --name deploy-zero-downtime-patch
	@$(BIN)/python benchmarks/bench_deploy.py --contestants zero_downtime,ansible --load \
		--from-version 1.1.0 --to-version 1.4.0 --name deploy-zero-downtime-additive
	@$(BIN)/python benchmarks/bench_growth.py
	@$(BIN)/python benchmarks/bench_preflight.py
	@$(BIN)/python benchmarks/bench_probe.py
	@$(BIN)/python benchmarks/bench_backup.py

clean:
	@rm -rf .cache .collections tests/output htmlcov .coverage
