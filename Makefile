# rrs — make run (start the app), make test (every test), make bench, make eval.
# Everything is installed from pyproject.toml into .venv (editable, with all extras); the
# stamp file .venv/.installed is remade only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := app,cluster,test,bench
# the real-browser tests launch this binary (tests/test_browser.py)
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast chromium bench eval eval-quick eval-full clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Debian's chromium for the browser tests: installed here when running as root, otherwise
# make stops and prints the command to run. (`playwright install` is never used: it downloads.)
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser tests (apt-get)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null && test -x $(CHROMIUM); \
	  else \
	    echo "The browser tests need Debian's chromium at $(CHROMIUM). Install it as root, then run make test again:"; \
	    echo "  sudo sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'"; \
	    exit 1; \
	  fi; \
	fi

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.headless true --browser.gatherUsageStats false \
		--server.fileWatcherType none

test: chromium $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

bench: $(STAMP)
	$(BIN)/python bench/smoothing.py
	$(BIN)/python bench/attack.py

# The published study: docs/results.md (EfficientNet-Lite0, the eval preset: 12 images, strong
# attacks, matched cost, every certificate scheme, certificate versus attack; ≈ 59k gradient
# evaluations: 80 min on two quiet cores; an estimate is printed first) and docs/results-tiny.md (the
# tiny CNN as a sanity row, minutes). Resumes from docs/results*/jobs after an interruption.
eval: $(STAMP)
	$(BIN)/python -m rrs evaluate --preset eval --out docs/results
	# (no profile on the tiny model: the preset's 32-px profile cells are its whole image; the preset
	#  learns that with the next recompute, since changing it now would make every stored row stale)
	$(BIN)/python -m rrs evaluate --preset eval --model tiny --out docs/results-tiny \
		--experiments robustness accuracy certificates strength schemes

# The --quick preset (3 images, < 15 min), written to out/quick.md so the published report stays.
eval-quick: $(STAMP)
	$(BIN)/python -m rrs evaluate --quick --out out/quick

# The full preset (12 images, T up to 64, reference T=512, certificates at T=1024): many hours
# on a CPU; use --ray / --ray-address to spread it over a cluster.
eval-full: $(STAMP)
	$(BIN)/python -m rrs evaluate --out out/full

clean-venv:
	rm -rf $(VENV)
