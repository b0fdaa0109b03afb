# The two commands a newcomer needs:  make book  and  make test.
# Both create .venv on first use and reuse it afterwards.  They install the
# locked environment (requirements.lock: exact versions and hashes, torch's
# CPU build); `make LOCK=0 ...` resolves pyproject.toml's ranges instead,
# pinning torch first so that no multi-GB CUDA build is pulled on a CPU machine.
#
#   make book                      the published book: the reference run's committed chapters (no data, no execution)
#   make book PROFILE=smoke        execute every notebook on the synthetic data, then build that book (_build/smoke)
#   make book PROFILE=cpu DATA=../shared/data/monuseg   the same on MoNuSeg (about two hours on 2 cores)
#   make publish PROFILE=cpu       make that executed run the published book (book/published, results/cpu)
#   make lock                      regenerate requirements.lock from pyproject.toml (needs uv)

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
LOCK ?= 1
PROFILE ?=
DATA ?=
RUN ?= runs/$(PROFILE)
SEED ?= 0
DEVICE ?=
CPM17 ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-lock$(LOCK)

.PHONY: book html notebooks publish test lock clean

ifeq ($(strip $(PROFILE)),)
book: html
else
book: notebooks
	$(BIN)/jupyter-book build . -W --keep-going --toc book/executed/_toc.yml --path-output _build/$(PROFILE)
	@test -f _build/$(PROFILE)/_build/html/index.html && echo "book ($(PROFILE) run): _build/$(PROFILE)/_build/html/index.html"
endif

html: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going
	@test -f _build/html/index.html && echo "book: _build/html/index.html"

notebooks: $(STAMP)
	$(BIN)/ssimnet book --profile $(PROFILE) --data-dir "$(DATA)" --run-dir "$(RUN)" --seed $(SEED) --device "$(DEVICE)" --cpm17-dir "$(CPM17)"

publish: $(STAMP)
	@test -n "$(PROFILE)" || { echo "make publish: say which run, e.g. make publish PROFILE=cpu"; exit 2; }
	$(BIN)/ssimnet publish --run-dir "$(RUN)" --results results/$(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(LOCK),0)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[test,book]"
else
	$(BIN)/python -m pip install --no-deps --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
endif
	rm -f $(VENV)/.installed-lock*
	touch $(STAMP)

lock:
	echo "$(TORCH)+cpu" | uv pip compile pyproject.toml - --extra test --extra book --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels --emit-find-links -o requirements.lock

clean:
	rm -rf _build book/executed
