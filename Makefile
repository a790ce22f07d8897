# Two targets a person needs: `make run` (the app with the bundled model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test model evaluate bench benchmarks image clean
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# The app alone: its own environment with only what serving needs (no TensorFlow, no test tools).
APP_VENV ?= .venv-app
$(APP_VENV)/.installed: pyproject.toml
	python3 -m venv $(APP_VENV)
	$(APP_VENV)/bin/python -m pip install -q --upgrade pip
	$(APP_VENV)/bin/python -m pip install -q -e ".[app]"
	touch $@

run: $(APP_VENV)/.installed
	$(APP_VENV)/bin/python app.py

# Two workers, each taking whole test files (module fixtures such as a running app are made once): the suite
# is half waiting on subprocesses (ffmpeg, pip, buildah, a browser), which the other worker's tests fill.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

# The bundled model: the S1/S2 segmenter (fitted on CirCor), the quality gate (all nine databases) and the
# murmur describer (CirCor's murmur descriptions) first, because the per-cycle rows of the features come from
# that segmenter; then features and the network with the "logmel-cycle-soft2" recipe on all nine databases,
# and the referral cut chosen for screening from that recipe's leave-one-database-out predictions
# (reports/runs/, committed); last the artifact detector (speech and movement laid over real hearts, into the
# bundle), whose report runs the whole answer and so needs the network. Times in models/MODEL_CARD.md.
model: setup
	$(PY) scripts/quality_gate.py
	$(PY) scripts/fit_describe.py
	$(PY) scripts/fit_diastolic.py
	$(PY) -m heartbeat train --out models/heartbeat --recipe logmel-cycle-soft2 --cut-from reports/runs/logmel-cycle-soft2
	$(PY) scripts/fit_artifacts.py

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

# The serving image (buildah). BASE=debian-local where no registry is reachable (scripts/build_image.sh).
image:
	bash scripts/build_image.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache
