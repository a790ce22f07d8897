"""Preprocessing and features: the same settings give the same maps, and the settings round-trip."""
from __future__ import annotations

import numpy as np
import pytest

from heartbeat.features import FeatureConfig, feature_map, model_input, spectrum_bins, windows
from heartbeat.frontend import clean, prepare


def extract(x, cfg, segmenter=None):
    """Audio at the model's rate -> (windows, start times), through the front end."""
    return model_input(prepare(x, cfg, segmenter, rate=cfg.sample_rate), cfg)
from heartbeat.preprocess import bandpass, normalize, window_starts
from conftest import heartlike


def test_config_round_trips(tmp_path):
    cfg = FeatureConfig(kind="logmel", n_mels=24, band_hz=(20, 450), window_s=2.5, recording_norm=False)
    cfg.save(tmp_path / "features.json")
    assert FeatureConfig.load(tmp_path / "features.json") == cfg
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg


def test_config_refuses_unknown_settings():
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureConfig.from_dict(FeatureConfig().to_dict() | {"n_banana": 3})
    with pytest.raises(ValueError):
        FeatureConfig(kind="wavelet")


def test_bandpass_keeps_heart_band_and_drops_the_rest():
    sr, t = 2000, np.arange(4000) / 2000
    gain = {hz: np.std(bandpass(np.sin(2 * np.pi * hz * t), sr, 25, 400)[500:-500]) / np.std(np.sin(2 * np.pi * hz * t))
            for hz in (5, 100, 800)}
    assert gain[100] > 0.95 and gain[5] < 0.05 and gain[800] < 0.05


def test_normalize_is_unit_rms_and_leaves_silence_alone():
    x = normalize(np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 7)
    assert abs(np.sqrt(np.mean(x ** 2)) - 1) < 1e-4
    assert not normalize(np.zeros(100, np.float32)).any()


@pytest.mark.parametrize("n,window,hop", [(150, 150, 75), (151, 150, 75), (1000, 150, 75), (149, 150, 75)])
def test_windows_cover_the_recording(n, window, hop):
    starts = window_starts(n, window, hop)
    if n < window:
        assert len(starts) == 0
    else:
        assert starts[0] == 0 and starts[-1] + window == n and np.all(np.diff(starts) <= hop)


@pytest.mark.parametrize("kind", ["mfcc", "logmel", "pcen", "logmel+pcen", "spectrum"])
def test_extract_shapes_and_times(kind):
    cfg = FeatureConfig(kind=kind)
    x = heartlike(seconds=10, sr=cfg.sample_rate).astype(np.float32)
    batch, starts = extract(x, cfg)
    assert batch.shape[1:] == cfg.input_shape and batch.dtype == np.float32
    assert starts[0] == 0 and abs(starts[-1] + cfg.window_s - 10) < 0.05
    assert np.isfinite(batch).all()


def test_recording_norm_removes_a_fixed_channel_response():
    # A device's fixed frequency response is a per-band gain: with recording norm the maps barely change.
    cfg = FeatureConfig()
    x = clean(heartlike(seconds=12, sr=2000).astype(np.float32), cfg)
    from scipy import signal
    coloured = signal.sosfilt(signal.butter(1, 150, "lowpass", fs=2000, output="sos"), x).astype(np.float32)
    normed = [feature_map(v, cfg) for v in (x, coloured)]
    raw = [feature_map(v, FeatureConfig(recording_norm=False)) for v in (x, coloured)]
    # Differences in units of each coefficient's own spread within the recording.
    raw_diff = (np.abs(raw[0] - raw[1]) / raw[0].std(axis=1, keepdims=True)).mean()
    assert np.abs(normed[0] - normed[1]).mean() < 0.3 * raw_diff


@pytest.mark.parametrize("kind", ["pcen", "logmel+pcen"])
def test_pcen_rows_do_not_move_with_the_level(kind):
    # PCEN scales the recording to unit peak band energy first: 20 dB quieter, the same heat map.
    cfg = FeatureConfig(kind=kind, floor_db=50.0, norm_floor_db=0.0)
    x = clean(heartlike(seconds=10, sr=2000).astype(np.float32), cfg)
    # (a few hundredths of a spread where a band is near empty: float32 rounding, not level)
    np.testing.assert_allclose(feature_map(0.1 * x, cfg), feature_map(x, cfg), atol=0.05)


def test_spectrum_rows_lose_the_level_and_a_fixed_gain_per_bin():
    # The "spectrum" map (for the learnt filterbank) removes each bin's recording mean in dB: 20 dB quieter,
    # or a device's fixed response, leaves it where the sound is above the floor.
    cfg = FeatureConfig(kind="spectrum", floor_db=50.0)
    x = clean(heartlike(seconds=10, sr=2000).astype(np.float32), cfg)
    assert feature_map(x, cfg).shape[0] == len(spectrum_bins(cfg)) == cfg.n_coeffs
    np.testing.assert_allclose(feature_map(0.1 * x, cfg), feature_map(x, cfg), atol=0.01)
    from heartbeat.augment import recolour
    tilted = recolour(x, 2000, np.array([0.0, 1000.0]), np.array([6.0, -6.0])).astype(np.float32)
    loud = feature_map(x, cfg) > -20                   # bins well above the floor in that frame
    assert np.abs(feature_map(tilted, cfg) - feature_map(x, cfg))[loud].mean() < 0.5   # dB


def test_same_audio_same_features():
    cfg = FeatureConfig()
    x = heartlike(seconds=8, sr=2000).astype(np.float32)
    np.testing.assert_array_equal(extract(x, cfg)[0], extract(x.copy(), cfg)[0])
    assert windows(np.zeros((cfg.n_coeffs, 10), np.float32), cfg)[0].shape[0] == 0


# The features are computed without librosa (serving would pay 2 s and 70 MB for it); they must stay
# librosa's: the bundled network was trained on librosa's heat maps, and any drift would shift its answers.
def _librosa_map(audio, cfg):
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(y=audio, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                         n_mels=cfg.n_mels, fmin=cfg.band_hz[0], fmax=cfg.fmax, center=True)
    logmel = librosa.power_to_db(mel, ref=1.0, top_db=cfg.floor_db)
    fmap = librosa.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc) if cfg.kind == "mfcc" else logmel
    if cfg.recording_norm:
        fmap = (fmap - fmap.mean(axis=1, keepdims=True)) / (fmap.std(axis=1, keepdims=True) + 1e-6)
    return fmap


@pytest.mark.parametrize("cfg", [FeatureConfig(floor_db=50.0), FeatureConfig(), FeatureConfig(recording_norm=False),
                                 FeatureConfig(kind="logmel", floor_db=50.0, recording_norm=False),
                                 FeatureConfig(sample_rate=4000, n_fft=512, hop_length=160, fmax=1500.0)],
                         ids=["bundled", "no-floor", "raw-mfcc", "logmel", "4k"])
def test_features_equal_librosa_on_real_recordings(table, cfg):
    from heartbeat.audio import load_audio
    from heartbeat.datasets import ALL_DBS
    picked = table[table["duration_s"] >= 4].groupby("database").head(2)
    assert set(picked["database"]) == set(ALL_DBS)
    for path in picked["path"]:
        audio = clean(load_audio(path, cfg.sample_rate), cfg)
        ours, theirs = feature_map(audio, cfg), _librosa_map(audio, cfg)
        assert ours.shape == theirs.shape
        # standardised maps to 1e-4 (float32 rounding); raw dB maps to 1e-3 dB
        assert np.abs(ours - theirs).max() < (1e-4 if cfg.recording_norm else 1e-3), path


def test_mel_filters_equal_librosa():
    librosa = pytest.importorskip("librosa")
    from heartbeat.features import mel_filters
    for sr, n_fft, n_mels, fmin, fmax in [(2000, 256, 32, 25.0, 800.0), (8000, 512, 40, 20.0, 3500.0)]:
        ours = mel_filters(sr, n_fft, n_mels, fmin, fmax)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, theirs, atol=1e-7)


def test_cycle_state_rows_follow_the_segmenters_beats(table, model):
    """Per-cycle rows (FeatureConfig.cycle_states): one state per frame, S1 where the segmenter put S1,
    systole between S1 and S2; all zero without a rhythm. On a real annotated CirCor recording."""
    from heartbeat.audio import load_audio
    from heartbeat.frontend import prepare as front_end
    cfg = FeatureConfig(floor_db=50.0, cycle_states=True)
    path = select_one(table, "circor2022")
    prepared = front_end(load_audio(path, 4000), cfg, model.segmenter, rate=4000)
    beats, cleaned = prepared.beats, prepared.cleaned
    fmap = feature_map(cleaned, cfg, beats)
    assert fmap.shape[0] == cfg.n_coeffs + 4 == cfg.input_shape[0]
    rows = fmap[cfg.n_coeffs:]
    np.testing.assert_allclose(rows[:, :-1].sum(axis=0), 1.0, rtol=1e-6)   # shares of each frame
    frame = lambda t: int(round(t * cfg.frame_rate))
    assert np.mean([rows[0, frame(t)] for t in beats.s1_times if frame(t) < fmap.shape[1]]) > 0.7
    # halfway from each S1 to its S2 is systole, halfway from S2 to the next S1 diastole
    s1, s2 = np.array(beats.s1_times), np.array(beats.s2_times)
    pairs = [(a, s2[s2 > a][0]) for a in s1[:-1] if np.any(s2 > a)]
    assert np.mean([rows[1, frame((a + b) / 2)] > 0 for a, b in pairs]) > 0.9
    assert np.mean([rows[3, frame((b + s1[s1 > b][0]) / 2)] > 0 for _, b in pairs if np.any(s1 > b)]) > 0.9
    # the heat map above is the plain one, and no rhythm leaves the rows empty
    np.testing.assert_array_equal(fmap[: cfg.n_coeffs], feature_map(cleaned, FeatureConfig(floor_db=50.0)))
    assert not feature_map(cleaned, cfg, None)[cfg.n_coeffs:].any()
    assert extract(np.zeros(500, np.float32), cfg, model.segmenter)[0].shape == (0, *cfg.input_shape)  # too short
    # from the frame classifier's probabilities instead: shares of each frame too, mostly S1 at the S1 times
    soft = FeatureConfig(floor_db=50.0, cycle_states=True, cycle_source="posterior")
    rows = feature_map(cleaned, soft, beats)[soft.n_coeffs:]
    np.testing.assert_allclose(rows[:, :-1].sum(axis=0), 1.0, rtol=1e-5)
    assert np.mean([rows[0, frame(t)] for t in beats.s1_times if frame(t) < fmap.shape[1]]) > 0.4


def select_one(table, database: str) -> str:
    return table[(table["database"] == database) & (table["label"] == "abnormal")]["path"].iloc[0]


def test_norm_floor_keeps_near_constant_rows_quiet():
    """The same heart-like sound, once as is and once with faint noise (60 dB down, like a resampler's
    residue): log-mel bands near the 50 dB floor in one copy and a hair above it in the other. Standardised
    by their own tiny spread those rows become unit-variance noise (the recording chain, not the heart);
    with norm_floor_db they stay as they were. The default (0) is the earlier standardisation exactly."""
    x = heartlike(8.0, sr=2000, seed=3)
    y = x + 1e-3 * np.abs(x).max() * np.random.default_rng(1).standard_normal(len(x)).astype(np.float32)
    def worst_row_change(cfg):
        a, b = feature_map(clean(x, cfg), cfg), feature_map(clean(y, cfg), cfg)
        return np.abs(a - b).mean(axis=1).max()
    plain = FeatureConfig(kind="logmel", floor_db=50.0)
    floored = FeatureConfig(kind="logmel", floor_db=50.0, norm_floor_db=3.0)
    assert worst_row_change(plain) > 0.3 and worst_row_change(floored) < 0.1, (worst_row_change(plain),
                                                                                   worst_row_change(floored))
    np.testing.assert_array_equal(feature_map(clean(x, plain), plain),
                                  feature_map(clean(x, plain), FeatureConfig(kind="logmel", floor_db=50.0,
                                                                             norm_floor_db=0.0)))
