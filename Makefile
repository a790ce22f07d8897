# Two targets a person needs: `make run` (the app with the bundled model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test train evaluate bench clean
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

run: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

train: setup
	$(PY) -m heartbeat train --out models/heartbeat

evaluate: setup
	$(PY) -m heartbeat evaluate --out reports

bench: setup
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
