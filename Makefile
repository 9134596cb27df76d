# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
# Each (re)creates .venv with Python 3.10 when it is missing or older than pyproject.toml.

PYTHON310 ?= $(shell command -v python3.10 2>/dev/null || pyenv which python3.10 2>/dev/null || echo python3.10)
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv clean bench

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10), f"{sys.executable} is Python {sys.version.split()[0]}; neurosim needs 3.10 (lava-nc)"'
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurosim demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[peers]'
	$(PY) benchmarks/profile_vs_peers.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
