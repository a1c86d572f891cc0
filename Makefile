# The two set-up commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LRCAL := $(VENV)/bin/lrcal
DEMO_HOME ?= .lrcal-demo
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow bench install clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: the pinned CPU build is on local disk; anything else pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,ocr]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(LRCAL) --home $(DEMO_HOME) demo --fresh

test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

clean-demo:
	rm -rf $(DEMO_HOME)
