# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PARAMS ?= params/demo.yaml
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: setup demo test lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 --display-name "gdo-repro (.venv)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/gdo-repro run --params $(PARAMS)

test: setup
	$(PY) -m pytest -q

# JupyterLab on the loopback address; as root (containers) it needs --allow-root. LAB_ARGS: e.g. --port 8899.
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
LAB_ARGS ?=
lab: setup
	$(VENV)/bin/jupyter lab notebooks/ --ip 127.0.0.1 --no-browser $(LAB_ROOT) $(LAB_ARGS)

clean:
	rm -rf outputs/demo outputs/test .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
