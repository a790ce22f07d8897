"""CI's smoke training: a few real recordings, one short epoch; the saved bundle reloads through LiteRT
and gives the Keras network's predictions."""
from __future__ import annotations

import numpy as np
import pytest

from heartbeat import train as T
from heartbeat.datasets import select
from heartbeat.features import FeatureConfig
from heartbeat.model import load_model, save_bundle

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("variant", ["cnn", "baseline"])
def test_train_save_reload_identical(table, tmp_path, monkeypatch, variant):
    monkeypatch.setattr(T, "CACHE_DIR", tmp_path / "cache")
    small = select(table, ["training-a", "training-b", "set_b"], ["normal", "abnormal"], min_seconds=5)
    small = small.groupby(["database", "label"]).head(4)
    cfg = FeatureConfig(recording_norm=variant == "cnn")
    settings = T.TrainSettings(variant=variant, epochs=1, windows_per_epoch=128, batch_size=32,
                               augment_copies=1 if variant == "cnn" else 0, val_fraction=0.34, seed=1)
    trained = T.train_model(small, cfg, settings, log=lambda *_: None)
    out = save_bundle(trained.keras_model, trained.bundle, tmp_path / "bundle")
    assert (out / "model.tflite").stat().st_size < 1_000_000
    loaded = load_model(out)
    assert loaded.features == cfg and loaded.bundle.threshold == pytest.approx(trained.bundle.threshold)
    X, rec = T.featurize(small["path"].tolist(), cfg, 0)
    keras_logits = trained.keras_model(X[:40].astype(np.float32), training=False).numpy()[:, 0]
    np.testing.assert_allclose(loaded.window_logits(X[:40].astype(np.float32)), keras_logits, rtol=1e-4, atol=1e-4)
    # and the same again: reloading is deterministic
    np.testing.assert_array_equal(load_model(out).window_logits(X[:5].astype(np.float32)),
                                  loaded.window_logits(X[:5].astype(np.float32)))


def test_augment_changes_the_sound_but_keeps_its_length_scale():
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 60 * np.arange(20000) / 2000).astype(np.float32)
    y = T.augment(x, 2000, rng)
    assert 0.75 * len(x) <= len(y) <= len(x) and np.isfinite(y).all()
    assert not np.allclose(y[:1000], x[:1000])
    assert len(T.augment(x[:1500], 2000, rng)) > 0      # short recordings survive the time shift


def test_sampling_weights_balance_databases(table):
    pn = select(table, ["training-a", "training-e"], ["normal", "abnormal"])
    w = T.sampling_weights(pn.reset_index(drop=True), "database")
    total = {}
    for (db, label), g in pn.reset_index(drop=True).assign(w=w).groupby(["database", "label"]):
        total[(db, label)] = g["w"].sum()
    # within a database both labels weigh the same; training-e weighs less than its 84% share of recordings
    assert total[("training-e", "normal")] == pytest.approx(total[("training-e", "abnormal")])
    assert total[("training-a", "normal")] == pytest.approx(total[("training-a", "abnormal")])
    e_share = (total[("training-e", "normal")] * 2) / sum(total.values())
    assert e_share < 0.75
