# Two targets a person needs: `make run` (the app with the bundled model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test model evaluate bench benchmarks clean
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

# The bundled model: features (~5 min), the network (~3 min on 2 cores), then its quality gate (~2 min).
model: setup
	$(PY) -m heartbeat train --out models/heartbeat
	$(PY) scripts/quality_gate.py

# Every protocol for ours and the baseline (about 50 min on 2 cores), then the model card from the results.
evaluate: setup
	$(PY) -m heartbeat evaluate --out reports
	$(PY) scripts/model_card.py

bench: setup
	$(PY) scripts/benchmark.py
	$(PY) scripts/bench_app.py

# BENCHMARKS.md: pipeline, app, batch throughput, model size and the accuracy tables, in one run.
benchmarks: setup
	$(PY) scripts/benchmarks_md.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
