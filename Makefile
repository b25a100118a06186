# Front door of the kit. Every target builds the virtual environment first.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
CONFIG  ?= configs/default.toml
STAMP   := $(VENV)/.installed

.PHONY: venv test sim bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -n 2 -q tests

sim: $(STAMP)
	$(PY) -m model.summary --config $(CONFIG)

bench: $(STAMP)
	$(PY) -m model.bench
	$(PY) -m sim.bench

clean:
	rm -rf build .pytest_cache .hypothesis
