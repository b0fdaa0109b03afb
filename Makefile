# The two commands a newcomer needs:  make book  and  make test.
# Both create .venv on first use (pinning torch first, so that no multi-GB CUDA
# build is pulled on a CPU machine) and reuse it afterwards.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PROFILE ?= smoke
DATA ?=
RUN ?= runs/$(PROFILE)
SEED ?= 0
DEVICE ?=
CPM17 ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book notebooks html test clean

book: notebooks html

notebooks: $(STAMP)
	$(BIN)/ssimnet book --profile $(PROFILE) --data-dir "$(DATA)" --run-dir "$(RUN)" --seed $(SEED) --device "$(DEVICE)" --cpm17-dir "$(CPM17)"

html: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going
	@test -f _build/html/index.html && echo "book: _build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf _build book/executed
