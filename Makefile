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

# The bundled model: features (~5 min), the network (~3 min on 2 cores), then the S1/S2 segmenter and the
# quality gate (~8 min). The network is trained on the eight databases it shipped with (CirCor joins it with
# the cross-device recipe); the segmenter is fitted on CirCor, the gate on all nine.
SHIPPED_DBS := training-a training-b training-c training-d training-e training-f set_a set_b
model: setup
	$(PY) -m heartbeat train --out models/heartbeat --databases $(SHIPPED_DBS)
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
