"""CI's smoke training: a few real recordings, one short epoch; the saved bundle reloads through LiteRT
and gives the Keras network's predictions."""
from __future__ import annotations

import numpy as np
import pytest

from heartbeat import augment, train as T
from heartbeat.cache import AUGMENTATIONS, featurize
from heartbeat.datasets import select
from heartbeat.recipes import RECIPES, SHIPPED_RECIPE
from heartbeat.features import FeatureConfig
from heartbeat.model import load_model, save_bundle

pytestmark = pytest.mark.slow


# MFCC, the notebooks' network, and the shipped recipe's features (log-mel with the cycle rows)
CONFIGS = {"mfcc": FeatureConfig(), "baseline": FeatureConfig(recording_norm=False),
           "shipped": RECIPES[SHIPPED_RECIPE][0]}


@pytest.mark.parametrize("variant,features", [("cnn", "mfcc"), ("baseline", "baseline"), ("cnn", "shipped")])
def test_train_save_reload_identical(table, tmp_path, monkeypatch, variant, features):
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    small = select(table, ["training-a", "training-b", "set_b"], ["normal", "abnormal"], min_seconds=5)
    small = small.groupby(["database", "label"]).head(4)
    cfg = CONFIGS[features]
    settings = T.TrainSettings(variant=variant, epochs=1, windows_per_epoch=128, batch_size=32,
                               augment_copies=1 if variant == "cnn" else 0, val_fraction=0.34, seed=1)
    trained = T.train_model(small, cfg, settings, log=lambda *_: None)
    out = save_bundle(trained.keras_model, trained.bundle, tmp_path / "bundle")
    assert (out / "model.tflite").stat().st_size < 1_000_000
    loaded = load_model(out)
    assert loaded.features == cfg and loaded.bundle.threshold == pytest.approx(trained.bundle.threshold)
    X, rec = featurize(small["path"].tolist(), cfg, 0)
    keras_logits = trained.keras_model(X[:40].astype(np.float32), training=False).numpy()[:, 0]
    np.testing.assert_allclose(loaded.window_logits(X[:40].astype(np.float32)), keras_logits, rtol=1e-4, atol=1e-4)
    # and the same again: reloading is deterministic
    np.testing.assert_array_equal(load_model(out).window_logits(X[:5].astype(np.float32)),
                                  loaded.window_logits(X[:5].astype(np.float32)))


@pytest.mark.parametrize("kind", sorted(AUGMENTATIONS))
def test_augmentation_changes_the_sound_but_keeps_its_length_scale(kind):
    rng = np.random.default_rng(0)
    augment = AUGMENTATIONS[kind]
    x = np.sin(2 * np.pi * 60 * np.arange(20000) / 2000).astype(np.float32)
    y = augment(x, 2000, rng)
    assert 0.75 * len(x) <= len(y) <= len(x) and np.isfinite(y).all()
    assert not np.allclose(y[:1000] / np.abs(y).max(), x[:1000] / np.abs(x).max(), atol=0.05)
    assert len(augment(x[:1500], 2000, rng)) > 0      # short recordings survive the time shift


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


def test_cross_device_lodo_covers_nine_databases_and_resumes(table, tmp_path, monkeypatch):
    """A tiny leave-one-database-out over all nine databases: one fold per database, each fold saved as it
    is made; a second run reads them back and trains nothing."""
    from heartbeat import evaluate as E
    from heartbeat.datasets import ALL_DBS
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    small = select(table, ALL_DBS, ["normal", "abnormal"], min_seconds=5).groupby(["database", "label"]).head(3)
    tiny = T.TrainSettings(epochs=1, windows_per_epoch=64, batch_size=32, augment_copies=1, augmentation="channel",
                           val_fraction=0.34)
    monkeypatch.setitem(E.RECIPES, "tiny", (FeatureConfig(), tiny))
    first = E.cross_device(small, tmp_path, recipes=["tiny"], protocols=["lodo"], log=lambda *_: None)
    assert set(first["tiny"]["lodo"]["per_database"]) == set(ALL_DBS)
    assert len(list((tmp_path / "runs" / "tiny").glob("lodo_*.csv"))) == 9
    assert "| tiny |" in (tmp_path / "cross_device.md").read_text()
    monkeypatch.setattr(E, "train_model", lambda *a, **k: pytest.fail("a saved fold was trained again"))
    again = E.cross_device(small, tmp_path, recipes=["tiny"], protocols=["lodo"], log=lambda *_: None)
    assert again["tiny"]["lodo"] == first["tiny"]["lodo"]
    # An ensemble of a run with itself is that run; a member without every fold is refused.
    both = E.ensemble(tmp_path, ["tiny", "tiny"], log=lambda *_: None)["ensemble: tiny + tiny"]
    assert both["lodo"]["per_database"] == first["tiny"]["lodo"]["per_database"]
    with pytest.raises(SystemExit):
        E.ensemble(tmp_path, ["tiny", "never-run"], log=lambda *_: None)


@pytest.mark.parametrize("codec", range(len(augment.CODECS)), ids=[c[0] for c in augment.CODECS])
def test_codec_round_trip_keeps_length_and_timing(ffmpeg, table, codec):
    """Each codec really runs (through the project's ffmpeg), keeps the recording's length, and the decoded
    copy is lined up with the original: the beats must stay where the labels' windows are."""
    from heartbeat.audio import load_audio

    class Pick:                                  # the codec under test, its lowest bitrate
        def integers(self, n):
            return codec

        def choice(self, rates):
            return rates[0]

    x = load_audio(select(table, ["training-a"])["path"].iloc[0], 2000)[: 2000 * 10]
    y = augment.codec_round_trip(x, 2000, Pick())
    assert len(y) == len(x) and np.isfinite(y).all()
    lags = np.arange(-50, 51)
    xc = np.correlate(y[200:-200], x[150:-150], mode="valid")        # y against x shifted by -50..50
    assert abs(lags[np.argmax(np.abs(xc))]) <= 2


def test_contrastive_pretraining_pairs_renditions_and_moves_the_trunk(table, tmp_path, monkeypatch):
    """Pretraining pairs the same window position of the clean and augmented copies of one recording,
    lowers its contrastive loss, and changes the trunk the supervised training then starts from."""
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    small = select(table, ["training-a", "circor2022"], ["normal", "abnormal"], min_seconds=8)
    small = small.groupby(["database", "label"]).head(6).reset_index(drop=True)
    cfg = FeatureConfig(floor_db=50.0)
    parts = [featurize(small["path"].tolist(), cfg, c, 0, augmentation="channel") for c in range(3)]
    recs = [rc for _, rc in parts]
    views = T._renditions(recs)
    rec = np.concatenate(recs)
    assert views.shape[1] == 3 and len(views) >= len(small)
    assert (rec[views] == rec[views[:, :1]]).all()                         # one recording per row
    position = T._position(rec)
    assert (position[views] == position[views[:, :1]]).all()               # one window position per row
    X = np.concatenate([Xc for Xc, _ in parts])
    settings = T.TrainSettings(pretrain_epochs=4, windows_per_epoch=256, batch_size=32)
    from heartbeat.model import build_cnn
    model = build_cnn(cfg.input_shape)
    before = [w.copy() for w in model.get_weights()]
    history = T.pretrain_contrastive(model, X, views, np.ones(len(views)), settings)
    assert history[-1]["contrastive_loss"] < history[0]["contrastive_loss"]
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_training_with_synthetic_diastolic_murmurs_and_the_domain_head(table, tmp_path, monkeypatch):
    """The murmured copies of the training normals join as abnormal windows (and the database-guessing
    head trains beside the network); held-out synthetic predictions come for every kind and grade."""
    from heartbeat.evaluate import synthetic_predictions
    from heartbeat.murmurs import GRADES, KINDS
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    small = select(table, ["training-a", "set_b"], ["normal", "abnormal"], min_seconds=8)
    small = small.groupby(["database", "label"]).head(4)
    cfg = RECIPES["diastolic"][0]
    settings = T.TrainSettings(epochs=1, windows_per_epoch=128, batch_size=32, augment_copies=0,
                               val_fraction=0.34, seed=1, diastolic=0.3, domain_adversarial=0.3)
    trained = T.train_model(small, cfg, settings, log=lambda *_: None)
    murmured, _ = featurize(small[small.label == "normal"]["path"].tolist(), cfg, 1, 1, augmentation="diastolic")
    assert len(murmured) > 0
    test = select(table, ["training-c"], ["normal"], min_seconds=8).head(2)
    pred = synthetic_predictions(trained, test, seed=1)
    assert len(pred) == len(test) * (1 + len(KINDS) * len(GRADES)) and pred["p"].between(0, 1).all()


def test_learnt_filterbank_trains_and_serves_through_litert(table, tmp_path, monkeypatch):
    """The `filterbank` recipe: its layer starts as the mel triangles, stays non-negative while training,
    and the saved bundle answers as the Keras network does."""
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    small = select(table, ["training-a", "set_b"], ["normal", "abnormal"], min_seconds=5)
    small = small.groupby(["database", "label"]).head(3)
    cfg = RECIPES["filterbank"][0]
    settings = T.TrainSettings(epochs=1, windows_per_epoch=128, batch_size=32, augment_copies=0, val_fraction=0.34, seed=1)
    trained = T.train_model(small, cfg, settings, log=lambda *_: None)
    weights = trained.keras_model.get_layer("learnable_filterbank").get_weights()[0]
    assert weights.shape == (cfg.n_coeffs, cfg.n_mels) and weights.min() >= 0
    assert not np.allclose(weights, T.filterbank_init(cfg))          # it learnt
    out = save_bundle(trained.keras_model, trained.bundle, tmp_path / "bundle")
    X, _ = featurize(small["path"].tolist(), cfg, 0)
    np.testing.assert_allclose(load_model(out).window_logits(X[:20].astype(np.float32)),
                               trained.keras_model(X[:20].astype(np.float32), training=False).numpy()[:, 0],
                               rtol=1e-4, atol=1e-4)


def test_device_transfer_never_aims_at_a_database_outside_training():
    from heartbeat.cache import transfer_target
    from heartbeat.datasets import ALL_DBS
    path = "/data/physionet2016/training-a/a0001.flac"
    targets = {transfer_target(path, 0, c) for c in range(1, 60)}
    assert targets == set(ALL_DBS) - {"training-a"}                   # every other device, never its own
    assert transfer_target(path, 0, 1) == transfer_target(path, 0, 1)
    paths = [path, "/data/circor2022/training_data/1_AV.flac"]
    rec = np.array([0, 0, 1])
    parts = [(np.zeros((3, 1)), rec)] + [(np.arange(3.0)[:, None] + c, rec) for c in (1, 2, 3)]
    heard = {"training-a", "circor2022", transfer_target(paths[0], 0, 1)}
    kept = T.heard_transfers(parts, paths, heard, 0)
    assert kept[0][0].shape == (3, 1)
    for c, (Xc, rc) in enumerate(kept[1:], 1):
        assert all(transfer_target(paths[r], 0, c) in heard for r in rc)
    assert len(kept[1][1]) >= 2                                       # the copy aimed at a heard database stays


def test_overlay_lays_the_artifact_at_the_stated_ratio_at_any_rate(table):
    """negatives.overlay on a real recording, at the model's rate (training's copies) and at 8 kHz (where the
    artifact detector's overlays are mixed): the heart sound over the artifact, in the model's band over the stretch it
    covers, is the ratio asked for; the heart itself is left as it was outside that stretch."""
    from heartbeat import negatives
    from heartbeat.audio import SAMPLE_RATE, load_audio, resample
    path = select(table, ["training-a"], min_seconds=20)["path"].iloc[0]
    for rate in (SAMPLE_RATE, negatives.SR):
        heart = load_audio(path, rate)[: 20 * rate]
        for kind, ratio in (("footsteps", -5.0), ("rubbing", 10.0)):
            mixed, art = negatives.overlay(heart, rate, kind, ratio, seed=4)
            assert len(mixed) == len(heart) and np.allclose(mixed - heart, art, atol=1e-5)
            covered = np.abs(art) > 0
            h, a = (resample(v, rate, SAMPLE_RATE) for v in (heart, art))
            stretch = np.flatnonzero(np.abs(a) > 1e-9 * np.abs(a).max())
            s, e = stretch[0], stretch[-1] + 1
            measured = 10 * np.log10(np.mean(h[s:e] ** 2) / np.mean(a[s:e] ** 2))
            assert abs(measured - ratio) < 0.5, (rate, kind, measured)
            assert 0.25 <= covered.mean() <= 1.0 and np.array_equal(mixed[~covered], heart[~covered])


def test_overlay_copies_keep_length_and_label_and_evaluate_scores_them(table, tmp_path, monkeypatch):
    """Training's `overlay` copies (cache.with_artifact) keep the recording's length; a leave-one-database-out
    fold with `overlays` scores the held-out recordings clean and with every kind at every ratio."""
    from heartbeat import evaluate as E
    from heartbeat.cache import with_artifact
    from heartbeat.negatives import OVERLAY_KINDS
    x = np.sin(2 * np.pi * 60 * np.arange(20000) / 2000).astype(np.float32)
    made = [with_artifact("overlay", np.random.default_rng(s))(x, 2000) for s in range(6)]
    assert all(len(y) == len(x) and np.isfinite(y).all() for y in made)
    monkeypatch.setenv("HEARTBEAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(E, "OVERLAY_PER_DB", 3)
    monkeypatch.setattr("heartbeat.negatives.OVERLAY_RATIOS_DB", (0,))
    monkeypatch.setattr("heartbeat.negatives.OVERLAY_KINDS", ("taps", "cough"))
    small = select(table, ["training-a", "training-c", "set_b"], ["normal", "abnormal"], min_seconds=5)
    small = small.groupby(["database", "label"]).head(3).reset_index(drop=True)
    tiny = T.TrainSettings(epochs=1, windows_per_epoch=64, batch_size=32, augment_copies=1, augmentation="overlay",
                           val_fraction=0.34)
    monkeypatch.setitem(E.RECIPES, "tiny", (FeatureConfig(), tiny))
    E.cross_device(small, tmp_path, recipes=["tiny"], protocols=["lodo"], held_out=["training-c", "set_b"],
                   overlays=True, log=lambda *_: None)
    o = __import__("pandas").read_csv(tmp_path / "runs" / "tiny" / "overlay_training-c.csv")
    assert sorted(o["kind"].unique()) == ["clean", "cough", "taps"] and len(o) == 3 * 3
    assert o["p"].notna().all() and o["p_median"].notna().all() and set(o["held_out"]) == {"training-c"}
    assert len(OVERLAY_KINDS) == 6
    # The report reads them: each overlaid recording against its clean call, at each database's nested cut.
    import network_overlays
    flips = network_overlays.flips(tmp_path / "runs" / "tiny")
    assert len(flips) == 2 * 3 * 2 and set(flips["database"]) == {"training-c", "set_b"}
    network_overlays.main([str(tmp_path / "runs" / "tiny"), "--scores", "p", "p_median", "--out", str(tmp_path / "net")])
    assert "## tiny (p_median)" in (tmp_path / "net.md").read_text()
