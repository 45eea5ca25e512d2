# Two set-up commands: `make demo` and `make test`. Both install first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0
# The OpenCV build of the golden digests (tests/golden.py): without this pin pip takes the newest
# opencv-contrib-python (5.1.0.95 today), whose demo benchmarks differ in their content digests.
OPENCV := opencv-contrib-python==5.0.0.93
DEMO_OUT ?= demo-out
# `make bench` compares with imagecorruptions and albumentations, which bring their own OpenCV distributions
# (opencv-python, opencv-python-headless): they get a venv of their own so that .venv keeps one cv2.
BENCH_VENV ?= .venv-bench

.PHONY: install demo test test-all lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: on a machine without CUDA pin the CPU wheel so that nothing pulls the CUDA build.
# `pretrained` brings BlazePose (mediapipe 0.10.14 with its own dependencies) and the one OpenCV, opencv-contrib-python.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "CUDA found: installing the default torch build"; $(BIN)/pip install -q "torch>=2.3"; \
	else \
	  echo "no CUDA: installing the CPU torch wheel $(TORCH_CPU)"; $(BIN)/pip install -q "$(TORCH_CPU)"; \
	fi
	$(BIN)/pip install -q -e ".[dev,ray,pretrained]" "$(OPENCV)"
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

$(BENCH_VENV)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q "$(TORCH_CPU)"
	$(BENCH_VENV)/bin/pip install -q -e ".[headless,bench]" "opencv-python-headless==5.0.0.93"
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/engine.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(DEMO_OUT) .pytest_cache
