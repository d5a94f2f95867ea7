# rrs — make run (start the app), make test (every test), make bench, make eval.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench eval eval-quick eval-full clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-test.txt requirements-cluster.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-test.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.headless true --browser.gatherUsageStats false \
		--server.fileWatcherType none

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

bench: $(STAMP)
	$(BIN)/python bench/smoothing.py
	$(BIN)/python bench/attack.py

# The published study (docs/results.md): quick settings on all 12 bundled images, about an hour
# on two CPU cores; resumes from docs/results/jobs after an interruption.
eval: $(STAMP)
	$(BIN)/python -m rrs evaluate --quick --images 12 --bench --out docs/results

# The --quick preset (3 images, < 15 min), written to out/quick.md so the published report stays.
eval-quick: $(STAMP)
	$(BIN)/python -m rrs evaluate --quick --out out/quick

# The full preset (12 images, T up to 64, reference T=512, certificates at T=1024): many hours
# on a CPU; use --ray / --ray-address to spread it over a cluster.
eval-full: $(STAMP)
	$(BIN)/python -m rrs evaluate --out out/full

clean-venv:
	rm -rf $(VENV)
