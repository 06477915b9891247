# gcf-kit: `make deploy` (ENV=local by default) and `make test` are all a new machine needs.
# Every target installs what it needs first; `make help` lists them.

SHELL      := /bin/bash
ENV        ?= local
PYTHON     ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
LOCK_HASH  := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP      := $(VENV)/.installed-$(LOCK_HASH)
# checkov has its own venv: its pins (packaging==23.2) conflict with pytest in .venv.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha256sum requirements-checkov.lock | cut -c1-16)
PYTEST_ARGS ?=
# The deployed functions run on Python 3.12+: `make test` runs the bundle's tests (tests/functions) again on
# 3.12, in a venv with only functions/requirements.txt and the test tools, pinned by requirements.lock.
RUNTIME_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
                              $(shell command -v python3.12 2>/dev/null))
RUNTIME_VENV   := .venv-py312
RUNTIME_STAMP  := $(RUNTIME_VENV)/.installed-$(shell cat requirements.lock functions/requirements.txt | sha256sum | cut -c1-16)

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help setup test test-runtime lint deploy down status synth validate bench clean lock

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gcf-kit needs Python 3.11+ (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned dependencies from requirements.lock into $(VENV) ..."
	@$(PY) -m pip install --quiet -r requirements.lock
	@rm -f $(VENV)/.installed-* && touch $@

$(CHECKOV_STAMP): requirements-checkov.lock
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@echo "installing checkov (the tests scan the synthesized stacks) from requirements-checkov.lock into $(CHECKOV_VENV) ..."
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.lock
	@rm -f $(CHECKOV_VENV)/.installed-* && touch $@

setup: $(STAMP) $(CHECKOV_STAMP) ## create .venv (+ .venv-checkov) and install the locks (skipped while they are unchanged)

test: setup lint ## lint + the whole suite (starts its own emulator), then tests/functions on Python 3.12; PYTEST_ARGS=... selects
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "pytest: no test was collected$(if $(PYTEST_ARGS), for PYTEST_ARGS='$(PYTEST_ARGS)')"; \
	  $(if $(PYTEST_ARGS),exit 0,exit 1); \
	fi; exit $$rc
ifeq ($(PYTEST_ARGS),)
ifneq ($(RUNTIME_PYTHON),)
	@$(MAKE) --no-print-directory test-runtime
else
	@echo "NOTE: no python3.12 found, so the function bundle was tested on Python 3.11 only (set RUNTIME_PYTHON)"
	@$(if $(REQUIRE_RUNTIME_PYTHON),exit 1)
endif
endif

$(RUNTIME_STAMP): requirements.lock functions/requirements.txt
	@test -x $(RUNTIME_VENV)/bin/python || $(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	@echo "installing functions/requirements.txt + pytest into $(RUNTIME_VENV) ($$($(RUNTIME_VENV)/bin/python -V)) ..."
	@$(RUNTIME_VENV)/bin/python -m pip install --quiet -c requirements.lock -r functions/requirements.txt \
	  pytest pydantic pyyaml
	@rm -f $(RUNTIME_VENV)/.installed-* && touch $@

test-runtime: ## tests/functions on Python 3.12, the Cloud Functions runtime (RUNTIME_PYTHON=...)
	@test -n "$(RUNTIME_PYTHON)" || { echo "test-runtime: no python3.12 found; set RUNTIME_PYTHON=/path/to/python3.12"; exit 1; }
	@$(MAKE) --no-print-directory $(RUNTIME_STAMP)
	@echo "tests/functions on $$($(RUNTIME_VENV)/bin/python -V):"
	@$(RUNTIME_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/functions

lint: setup ## ruff on the whole tree
	@$(PY) -m ruff check .

deploy: setup ## deploy ENV (default local: Firestore emulator + functions-framework on loopback)
	@$(PY) -m kit deploy $(ENV)

down: setup ## stop the local environment ENV started by `make deploy`
	@$(PY) -m kit down $(ENV)

status: setup ## show what the local environment ENV runs and whether it is healthy
	@$(PY) -m kit status $(ENV)

validate: setup ## validate every environments/*.yaml
	@$(PY) -m kit validate

synth: setup ## synthesize the stacks into cdktf.out/ (all environments, or ENV=name)
	@$(PY) -m stacks $(if $(filter command line environment,$(origin ENV)),--env $(ENV))

bench: setup ## run every benchmark in bench/ (ratios against baselines measured in the same run)
	@$(PY) -m bench

# -- data migrations (docs/migrations.md): the deploy gate, approved runs, new revisions, example data --
.PHONY: migrate-plan migrate migrate-status migrate-check migrate-down migrate-stamp migrate-restamp migration seed
PLAN ?=

migrate-plan: setup ## the deploy gate alone: dry-run + validate ENV's pending migrations, write the plan
	@$(PY) -m kit.migrate plan $(ENV) $(if $(PLAN),--out $(PLAN)) \
	  $(if $(APPROVE_IRREVERSIBLE),--approve-irreversible $(APPROVE_IRREVERSIBLE))

migrate: setup ## apply ENV's reviewed plan exactly (asks for approval; CI: the protected environment's job)
	@$(PY) -m kit.migrate apply $(ENV) $(if $(PLAN),--plan $(PLAN))

migrate-status: setup ## every migration of ENV: status, checksum, when, documents touched
	@$(PY) -m kit.migrate status $(ENV)

migrate-check: setup ## run validate() of every migration applied in ENV against its data now (read only)
	@$(PY) -m kit.migrate validate $(ENV)

migrate-down: setup ## revert ENV's migrations above TO=version (asks for approval; ALLOW_IRREVERSIBLE=1, ALLOW_PARTIAL=1)
	@$(if $(TO),,$(error migrate-down needs TO=<version>, e.g. make migrate-down ENV=dev TO=0002))
	@$(PY) -m kit.migrate down $(ENV) --to $(TO) $(if $(ALLOW_IRREVERSIBLE),--allow-irreversible) \
	  $(if $(ALLOW_PARTIAL),--allow-partial)

migrate-stamp: setup ## record VERSION and below as applied in ENV without running them (asks for approval)
	@$(if $(VERSION),,$(error migrate-stamp needs VERSION=<version>, e.g. make migrate-stamp ENV=dev VERSION=0002))
	@$(PY) -m kit.migrate stamp $(ENV) $(VERSION) $(if $(MARK_LATER_PENDING),--mark-later-pending)

migrate-restamp: setup ## accept the edited file of one applied migration VERSION in ENV (asks for approval)
	@$(if $(VERSION),,$(error migrate-restamp needs VERSION=<version>, e.g. make migrate-restamp ENV=dev VERSION=0002))
	@$(PY) -m kit.migrate restamp $(ENV) $(VERSION)

migration: setup ## render the next revision file: make migration NAME="add user locale"
	@$(if $(NAME),,$(error migration needs NAME, e.g. make migration NAME="add user locale"))
	@$(PY) -m kit.migrate new "$(NAME)"

seed: setup ## reset the local emulator (ENV=local, after make deploy) to the example data, pre-migration
	@$(PY) -m kit.migrate seed $(ENV)

# The new lock keeps the two header comments of the old one; it is written beside it and moved over it
# (a `>` onto requirements.lock would empty the file before `head` reads it).
lock: ## re-freeze requirements.lock from pyproject.toml in a scratch venv
	@rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	@.venv-lock/bin/pip install --quiet '.[dev]' && .venv-lock/bin/pip freeze --exclude gcf-kit > .lock.tmp
	@(head -2 requirements.lock; cat .lock.tmp) > .lock.new && mv .lock.new requirements.lock && rm -rf .lock.tmp .venv-lock
	@echo "requirements.lock updated; review the diff"

clean: ## remove generated files (cdktf.out, caches); keeps .venv
	rm -rf cdktf.out .pytest_cache .ruff_cache .bench
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +
