PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m neurocodec.demo

test: $(STAMP)
	$(BIN)/ruff check neurocodec tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check neurocodec tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/entropy.py

# The long fuzz campaign (docs/fuzzing.md): FUZZ_CASES per target, summary in docs/results/.
FUZZ_CASES ?= 25000
fuzz: $(STAMP)
	$(BIN)/python -m neurocodec.fuzz --cases $(FUZZ_CASES) --out docs/results/fuzz.json

clean:
	rm -rf $(VENV)
