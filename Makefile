# rrs — make run (start the app), make test (every test), make bench, make eval.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench eval clean-venv

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

eval: $(STAMP)
	$(BIN)/python -m rrs evaluate --quick

clean-venv:
	rm -rf $(VENV)
