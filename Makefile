# Two set-up commands: `make demo` and `make test`. Both install first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0
# BlazePose's model files ship inside this wheel. Installed with --no-deps: its metadata would also pull
# opencv-contrib-python (a second cv2 beside opencv-python-headless) and jax; what it needs at run time
# is the `pretrained` extra of pyproject.toml. 0.10.15 declares numpy<2: check before moving the pin.
MEDIAPIPE := mediapipe==0.10.14
DEMO_OUT ?= demo-out

.PHONY: install demo test test-all lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: on a machine without CUDA pin the CPU wheel so that nothing pulls the CUDA build.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "CUDA found: installing the default torch build"; $(BIN)/pip install -q "torch>=2.3"; \
	else \
	  echo "no CUDA: installing the CPU torch wheel $(TORCH_CPU)"; $(BIN)/pip install -q "$(TORCH_CPU)"; \
	fi
	$(BIN)/pip install -q -e ".[dev,ray,pretrained]"
	$(BIN)/pip install -q --no-deps "$(MEDIAPIPE)"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/corrupt-bench demo --out $(DEMO_OUT)

test: install
	$(BIN)/python -m pytest -q -m "not slow and not gpu"

test-all: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check corrupt_bench tests benchmarks

bench: install
	$(BIN)/pip install -q ".[bench]"
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
