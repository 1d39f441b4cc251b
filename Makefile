# Two entry points for a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so pip takes the local CPU wheel here and
# the regular PyPI build (CUDA on Linux) on a GPU machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install demo test clean

$(BIN)/ddtool: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/ddtool

install: $(BIN)/ddtool

# Scans the two example clips with the default shipped weights (LDFnet trained
# on the offline benchmark) and writes each one's evidence and report.html to
# demo_out/. scan exits 1 for a "fake" verdict: that is a result, not a failure.
demo: install
	$(BIN)/ddtool weights
	$(BIN)/ddtool scan examples/astronaut_real.mp4 --frames 16 --out demo_out; test $$? -le 1
	$(BIN)/ddtool scan examples/astronaut_fake.mp4 --frames 16 --out demo_out; test $$? -le 1
	@echo "reports: demo_out/*/report.html"

test: install
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) demo_out
