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

# Until weights trained by ddtool ship (issue 6), the demo builds a face cache
# and noise features from the two example clips: the first half of `scan`.
demo: install
	$(BIN)/ddtool extract examples/demo.csv --out demo_out/cache --frames 8
	$(BIN)/ddtool features noise demo_out/cache

test: install
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) demo_out
