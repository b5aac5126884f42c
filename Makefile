# A newcomer's two commands: `make lab` opens the notebooks, `make test` runs every check CI runs.
SHELL := /bin/bash
.NOTPARALLEL:
.PHONY: lab test setup system-deps lint

PY := .venv/bin/python
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
SANITIZE := $(wildcard tests/nbval_sanitize.cfg)
# Notebooks run only once there are some; their kernel is the venv's own Python.
NBVAL_ARGS := $(if $(NOTEBOOKS),--nbval --nbval-current-env $(if $(SANITIZE),--nbval-sanitize-with $(SANITIZE)) $(NOTEBOOKS))
# A hung test must not hang CI forever; the slowest tests are listed to show where CI's time goes.
PYTEST_ARGS ?= --timeout=900 --durations=30
# Jupyter refuses to run as root without being told.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

setup:
	scripts/setup.sh

system-deps:
	scripts/system-deps.sh

lab: setup
	.venv/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(ALLOW_ROOT)

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: system-deps setup lint
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests $(NBVAL_ARGS)
