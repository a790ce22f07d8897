"""The one result: labels, confidences, no-heartbeat reasons, and the predict command line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from heartbeat.__main__ import main
from heartbeat.audio import SAMPLE_RATE
from heartbeat.predict import classify, predict_files, read
from heartbeat.quality import EXPLANATIONS, REASONS
from conftest import heartlike, write

SR = SAMPLE_RATE



def judge(x, model):
    return classify(np.asarray(x, np.float32), model)


def test_real_heart_recordings_pass_and_get_an_answer(model, table):
    """Real heart recordings of four databases: nearly all pass the gate (measured: 99.6% held out, 93% of
    iPhone set_a), and every one that passes gets a complete answer."""
    judged = []
    for db in ("training-a", "training-e", "set_a", "set_b"):
        rows = table[(table.database == db) & (table.label == "normal") & (table.duration_s > 6)].head(3)
        judged += [judge(read(path, model), model) for path in rows["path"]]
    passed = [r for r in judged if r.label != "no_heartbeat"]
    assert len(passed) >= len(judged) - 1, [r.quality_reason for r in judged]
    for r in passed:
        assert 0 <= r.p_abnormal <= 1 and 0.5 <= r.confidence <= 1 or r.label == "abnormal"
        assert r.windows and all(0 <= w["p_abnormal"] <= 1 for w in r.windows)
        assert r.heart_rate_bpm is None or 30 <= r.heart_rate_bpm <= 200


def test_confidence_matches_the_label(model, table):
    path = table[table.database == "training-a"]["path"].iloc[0]
    r = judge(read(path, model), model)
    expected = r.p_abnormal if r.label == "abnormal" else 1 - r.p_abnormal
    assert r.confidence == pytest.approx(expected, abs=1e-3)
    assert (r.label == "abnormal") == (r.p_abnormal >= r.threshold)


def test_silence_says_silent(model):
    r = judge(np.zeros(10 * SR), model)
    assert r.label == "no_heartbeat" and r.quality_reason == REASONS["silent"] and r.p_abnormal is None


def test_clipping_says_clipped(model):
    r = judge(np.clip(heartlike(10, SR) * 40, -1, 1), model)
    assert r.label == "no_heartbeat" and r.quality_reason == REASONS["clipped"]


# One sample of each kind, answered in full (reason, confidence, no windows). Speech, a known weak spot
# (refused 0.76 when held out of fitting, reports/quality_gate.md), is measured as a rate over eight unseen
# voices in test_quality.py instead of on one sample.
@pytest.mark.parametrize("kind", ["white_noise", "tone", "mains_hum", "music_like", "rubbing"])
def test_non_heart_sounds_say_no_heartbeat(model, kind):
    from heartbeat import negatives
    from heartbeat.audio import resample
    x = getattr(negatives, kind)(np.random.default_rng(7), 10)
    r = judge(resample(x.astype(np.float32), negatives.SR, SR), model)
    assert r.label == "no_heartbeat", (kind, r.quality_score)
    assert r.quality_reason and r.confidence > 0.5 and not r.windows


def test_predict_json_lines(model, table, tmp_path, capsys):
    good = table[table.database == "training-b"]["path"].iloc[0]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    short = write(tmp_path / "short.wav", np.zeros(4000), 4000)
    assert main(["predict", "--json", good, str(bad), str(short)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["path"] for x in lines] == [good, str(bad), str(short)]
    assert {"label", "confidence", "p_abnormal", "heart_rate_bpm", "quality", "quality_score", "caution",
            "windows", "murmur_timing", "murmur_grade", "rhythm"} <= set(lines[0])
    assert lines[1]["error_code"] == "corrupt" and "error" in lines[1] and "label" not in lines[1]
    assert lines[2]["error_code"] == "too_short"


def test_predict_files_keeps_going_after_a_bad_file(model, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    ok = write(tmp_path / "ok.wav", heartlike(8, SR), SR)
    out = list(predict_files([tmp_path / "empty.wav", ok], model=model))
    assert out[0]["error_code"] == "empty" and "label" in out[1]


def test_gate_trees_score_like_scikit_learn():
    """The JSON trees give scikit-learn's own probabilities (the export is exact)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from heartbeat.quality import Trees
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = X[:, 0] + 0.5 * X[:, 2] > 0
    w = rng.uniform(0.5, 2, 400)
    monotonic = [1, 0, -1, 0, 0, 0, 0, 0]
    trees = Trees.fit(X, y, w, monotonic=monotonic)
    reference = HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.1, random_state=0,
                                               monotonic_cst=monotonic)
    reference.fit(X, y, sample_weight=w)
    np.testing.assert_allclose([trees.prob(x) for x in X], reference.predict_proba(X)[:, 1], atol=1e-9)


def test_gate_round_trips_through_json(model, tmp_path):
    from heartbeat.quality import QualityGate
    model.quality.save(tmp_path / "q.json")
    again = QualityGate.load(tmp_path / "q.json")
    m = {k: r["heart"] for k, r in model.quality.reference.items()} | {"clipped": 0.0, "level_db": -30.0}
    for swing in (model.quality.steady_below_db - 0.1, model.quality.steady_below_db + 0.1):   # both sides of the steady rule
        assert again.judge(m | {"dynamics_db": swing}) == model.quality.judge(m | {"dynamics_db": swing})


@pytest.mark.parametrize("measurement", sorted(EXPLANATIONS))
def test_each_reason_names_the_measurement_that_failed(model, measurement):
    """Every explanation is reachable: a recording at the heart recordings' median in all but one measurement,
    which lies well beyond them on its cause's side, is explained by that measurement when the gate rejects it."""
    import dataclasses
    from heartbeat.quality import CAUSE_SIDE
    gate = dataclasses.replace(model.quality, threshold=1.01)      # reject everything, to read the reason
    m = {k: r["heart_p50"] for k, r in gate.reference.items()} | {"clipped": 0.0, "level_db": -30.0}
    r = gate.reference[measurement]
    edge = r["heart_p99"] if CAUSE_SIDE[measurement] > 0 else r["heart_p01"]
    m[measurement] = r["heart_p50"] + 3 * (edge - r["heart_p50"])
    assert gate.judge(m).reason == EXPLANATIONS[measurement]


def test_batch_csv_resumes_and_records_errors(model, table, tmp_path, capsys):
    import csv
    folder = tmp_path / "screening-day"
    folder.mkdir()
    import shutil
    for path in table[table.database == "training-c"]["path"].head(4):
        shutil.copy(path, folder)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVE")
    out = tmp_path / "results.csv"
    assert main(["predict", str(folder), "--out", str(out), "--workers", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    broken = next(r for r in rows if r["path"].endswith("broken.wav"))
    assert broken["error_code"] == "corrupt" and not broken["label"]
    assert all(r["label"] in ("normal", "abnormal", "no_heartbeat") for r in rows if r is not broken)
    assert {"murmur_timing", "murmur_grade", "rhythm"} <= set(rows[0])
    # a second run skips what is already there; a new file is added
    shutil.copy(table[table.database == "training-d"]["path"].iloc[0], folder)
    assert main(["predict", str(folder), "--out", str(out)]) == 0
    assert "1 files judged" in capsys.readouterr().out.splitlines()[-1]
    assert len(list(csv.DictReader(out.open()))) == 6


def test_batch_jsonl_has_full_results(model, table, tmp_path):
    out = tmp_path / "results.jsonl"
    paths = table[table.database == "training-f"]["path"].head(2).tolist()
    assert main(["predict", *paths, "--out", str(out), "--workers", "1"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["path"] for x in lines] == paths and all("windows" in x for x in lines)


def test_network_is_safe_and_frugal_across_threads(model):
    """Eight threads scoring at once get the answers one thread gets (a shared interpreter once raised
    under two concurrent requests), and no more interpreters exist than were ever busy at once."""
    from concurrent.futures import ThreadPoolExecutor
    from heartbeat.model import load_model
    fresh = load_model()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((int(n), *model.features.input_shape)).astype(np.float32)
               for n in rng.integers(1, 20, size=64)]
    serial = [fresh.window_logits(b) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(fresh.window_logits, batches))
    for a, b in zip(serial, threaded):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert 1 <= fresh.network.idle <= 8


def test_bundled_model_is_the_shipped_recipe(model):
    """`make model` trains evaluate.SHIPPED_RECIPE; the bundle in models/ must be that recipe's, with its
    feature settings, so the model card's scores are the shipped model's."""
    from heartbeat.recipes import RECIPES, SHIPPED_RECIPE
    assert model.bundle.info["recipe"] == SHIPPED_RECIPE
    assert model.features == RECIPES[SHIPPED_RECIPE][0]
