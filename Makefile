# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv with the CPU build of torch pinned (the dev/test setup only:
# the package itself accepts any torch>=2.1).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# This machine keeps the CPU torch wheel in /opt/wheels; elsewhere pip uses its index.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP    := $(PY) -m pip install -q --disable-pip-version-check $(FIND_LINKS)
# Elsewhere, PyPI's torch for Linux is the CUDA build (GBs of wheels). For the CPU build:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_FIRST := $(if $(TORCH_INDEX),$(PIP) --index-url $(TORCH_INDEX) "$(TORCH)",true)

.PHONY: demo test lint bench screenshots notebooks-html setup setup-dev clean

# The demo's venv has the observe extra too, so `tali demo --monitor` and
# `tali profile --profiler pyinstrument` work in it (small wheels: psutil, prometheus_client, pyinstrument).
# Each long step says what it does first (pip -q and apt are otherwise silent for minutes).
$(VENV)/.core: pyproject.toml
	@echo "==> [1/2] creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(TORCH_FIRST)
	@echo "==> [2/2] pip: torch and tali with the observe extra (the first time: a few minutes)"
	$(PIP) "$(TORCH)" -e ".[observe]"
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.core
	@echo "==> [1/3] apt: FFmpeg 5 libraries (torchcodec, the benchmarks' peer) and Debian's chromium (viewer tests)"
	scripts/install-ffmpeg-libs
	scripts/install-chromium
	@echo "==> [2/3] pip: the dev extras (Ray, DuckDB, transformers, Playwright...; the first time: 5-10 minutes)"
	# torchcodec 0.13 is the release that loads beside the CPU torch 2.13.
	$(PIP) "$(TORCH)" "torchcodec==0.13.0" -e ".[dev]"
	@echo "==> [3/3] pip: open_clip_torch (CLIP's vocabulary file)"
	# Tests read CLIP's BPE vocabulary file that open_clip_torch vendors; --no-deps
	# because its torchvision requirement would replace the pinned torch.
	$(PIP) --no-deps "open_clip_torch==3.3.0"
	touch $@

setup: $(VENV)/.core
setup-dev: $(VENV)/.dev

demo: setup
	$(VENV)/bin/tali demo

# --max-worker-restart=0: a crashed worker (faulthandler ends one stuck past the timeout) ends
# the run with the test named; pytest-xdist 3.8's loadgroup re-runs the crashed test on every
# replacement worker or hangs (pytest-xdist#1323, #1327, #1378) -- a CI timeout before.
test: setup-dev
	@echo "==> the test suite on 2 workers (about 17 minutes on 2 cores; one dot per test)"
	TALI_TESTS_NEED_EXTRAS=1 $(PY) -m pytest -n 2 --dist loadgroup --max-worker-restart=0 -q --durations=15

# What CI checks before the tests: lint, formatting, and types of the package.
lint: setup-dev
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m mypy src/

# The viewer's screenshots in docs/img/, taken by its browser tests.
screenshots: setup-dev
	TALI_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q -n 0 tests/view/test_view_browser.py -k screenshots

bench: setup-dev
	$(PY) benchmarks/run_all.py

# Executed HTML copies of notebooks/ for the docs (the committed notebooks stay without outputs).
notebooks-html: setup-dev
	# Executed in a copy: the notebooks write their scratch files (metrics, plots) next to themselves.
	mkdir -p build/notebooks && cp notebooks/*.ipynb build/notebooks/
	cd build/notebooks && ../../$(PY) -m nbconvert --to html --execute --ExecutePreprocessor.timeout=600 *.ipynb

clean:
	rm -rf $(VENV)
