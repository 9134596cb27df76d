# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
# Each (re)creates .venv with Python 3.10 from requirements.lock (exact versions and hashes of every
# dependency for Python 3.10 on Linux x86-64), then installs the project itself with --no-deps.
# `make lock` regenerates the lock from pyproject.toml; `make test` refuses a stale lock in one line.

PYTHON310 ?= $(shell command -v python3.10 2>/dev/null || pyenv which python3.10 2>/dev/null || echo python3.10)
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
LOCK      := requirements.lock
LOCKVENV  := .venv-lock
UV_VERSION := 0.13.9
PYTEST_ARGS ?=
LOCK_FLAGS ?=   # `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release

.PHONY: demo test venv lock lockcheck clean bench docs

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON310) .ci/lock.py check $(LOCK)
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10), f"{sys.executable} is Python {sys.version.split()[0]}; neurosim needs 3.10 (lava-nc)"'
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

lockcheck: $(STAMP)
	@$(PY) .ci/lock.py check $(LOCK)

demo: lockcheck
	$(VENV)/bin/neurosim demo

test: lockcheck
	$(PY) -m pytest -q $(PYTEST_ARGS)

# uv resolves for the target (Python 3.10, manylinux x86-64) whatever machine runs it; pip installs.
lock:
	@test -x $(LOCKVENV)/bin/uv || ($(PYTHON310) -m venv $(LOCKVENV) && $(LOCKVENV)/bin/pip install --quiet uv==$(UV_VERSION) tomli)
	$(LOCKVENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes $(LOCK_FLAGS) \
	    --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command 'make lock' -o $(LOCK)
	$(LOCKVENV)/bin/python .ci/lock.py stamp $(LOCK)

# the documentation site under site/ (strict: a broken link or reference fails; tests/test_docs.py runs it too)
docs: $(STAMP)
	$(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[peers]'
	$(PY) benchmarks/profile_vs_peers.py

clean:
	rm -rf $(VENV) $(LOCKVENV) *.egg-info .pytest_cache site
