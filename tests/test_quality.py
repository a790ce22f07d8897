"""The quality gate: a heart sound is judged whatever the device, sample rate, level or offset; noisy
heart sounds are judged with a caution; every kind of non-heart audio is answered "no heartbeat"."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from heartbeat.audio import WIDEBAND_RATE, load_audio, resample
from heartbeat.predict import classify, read
from heartbeat.quality import NOISY_CAUTION, REASONS
from conftest import need

RATES = (2000, 4000, 8000, 16000, 44100)


def _judge(x, rate, model):
    return classify(resample(np.clip(np.asarray(x, np.float32), -1, 1), rate, WIDEBAND_RATE), model)


@pytest.fixture(scope="module")
def heart_sample(table):
    """Three real heart recordings of every database (noisy ones included), at least 6 s long."""
    pos = table[(table.duration_s >= 6) & (table.label.isin(["normal", "abnormal"]) |
                                            ((table.database == "circor2022") & (table.label == "unknown")))]
    return pos.groupby("database", group_keys=False).apply(lambda g: g.sample(3, random_state=4))


def test_same_answer_at_any_sample_rate(model, heart_sample, tmp_path):
    """Each recording written as a WAV file at 2, 4, 8, 16 and 44.1 kHz, the faster ones with hiss above
    1 kHz as loud as the heart sound (a 2 kHz file cannot hold it), read as an upload: one answer."""
    for r in heart_sample.itertuples():
        x = load_audio(r.path, 2000)
        x = 0.3 * x / np.abs(x).max()
        results = []
        for rate in RATES:
            y = resample(x, 2000, rate)
            if rate > 2000:
                hiss = signal.sosfilt(signal.butter(4, 1100, "highpass", fs=rate, output="sos"),
                                      np.random.default_rng(rate).standard_normal(len(y)))
                y = y + hiss * np.sqrt(np.mean(y ** 2) / np.mean(hiss ** 2))
            path = tmp_path / f"copy_{rate}.wav"
            sf.write(path, np.clip(y, -1, 1), rate, subtype="PCM_16")
            results.append(classify(read(path, model), model))
        assert len({(q.label, q.quality) for q in results}) == 1, (r.path, [(q.label, q.quality) for q in results])
        if results[0].p_abnormal is not None:
            assert max(q.p_abnormal for q in results) - min(q.p_abnormal for q in results) < 0.05, r.path


def test_level_dc_offset_and_drift_do_not_change_the_answer(model, heart_sample):
    for r in heart_sample.head(12).itertuples():
        x = load_audio(r.path, 2000)
        x = 0.3 * x / np.abs(x).max()
        t = np.arange(len(x)) / 2000
        copies = [x, 0.05 * x, x * 2.5, x + 0.4, x + 0.2 + 0.2 * np.sin(2 * np.pi * 0.3 * t)]
        answers = [_judge(c, 2000, model) for c in copies]
        assert len({(q.label, q.quality) for q in answers}) == 1, (r.path, [(q.label, q.quality) for q in answers])


def test_real_heart_recordings_pass_on_every_database(model, heart_sample):
    judged = [classify(read(p, model), model) for p in heart_sample["path"]]
    refused = [(p, q.quality_reason) for p, q in zip(heart_sample["path"], judged) if q.label == "no_heartbeat"]
    assert len(refused) <= 1, refused


def test_noisy_heart_sound_is_judged_with_a_caution(model, table):
    """A clean heart recording under loud room noise is still a heart sound: judged, marked noisy, and
    the caution is in the result."""
    from heartbeat.augment import add_at_snr, coloured_noise
    rows = table[(table.database == "training-a") & (table.duration_s >= 10)].head(6)
    for path in rows["path"]:
        x = load_audio(path, 2000)
        clean_answer = _judge(0.3 * x / np.abs(x).max(), 2000, model)
        noisy = add_at_snr(x, coloured_noise(np.random.default_rng(1), len(x), 2000, 1.0), 3.0)
        q = _judge(0.3 * noisy / np.abs(noisy).max(), 2000, model)
        assert q.label in ("normal", "abnormal"), (path, q.quality_reason)
        assert q.quality == "noisy" and q.caution == NOISY_CAUTION, path
        assert clean_answer.quality == "good" and clean_answer.caution is None, path


def test_labelled_noisy_recordings_are_mostly_judged(model, table):
    """set_b's noisy recordings and CirCor's "unknown" ones are real heart sounds: most get an answer."""
    noisy = table[((table.database == "set_b") & table.original_label.str.contains("noisy")) |
                  ((table.database == "circor2022") & (table.label == "unknown"))]
    noisy = noisy[noisy.duration_s >= 3].sample(30, random_state=0)
    judged = [classify(read(p, model), model) for p in noisy["path"]]
    assert np.mean([q.label != "no_heartbeat" for q in judged]) >= 0.85
    assert np.mean([q.quality == "noisy" for q in judged if q.label != "no_heartbeat"]) >= 0.5


def _refusal_rate(model, make, seeds=range(1000, 1008)):
    from negatives import SR
    return np.mean([_judge(make(seed), SR, model).label == "no_heartbeat" for seed in seeds])


def test_every_generated_kind_is_answered_no_heartbeat(model):
    """Each kind of non-heart audio, made with seeds never used in fitting, is answered no heartbeat."""
    import negatives
    low = {}
    for gen in negatives.GENERATED:
        rate = _refusal_rate(model, lambda s: gen(np.random.default_rng(s), 12.0))
        if rate < MIN_REFUSED.get(gen.__name__, 0.875):
            low[gen.__name__] = rate
    assert not low, low


def test_speech_and_mixtures_are_answered_no_heartbeat(model):
    import negatives
    need(negatives.speech(0) is not None, "espeak-ng (Debian package) for speech")
    assert _refusal_rate(model, lambda s: negatives.speech(s, 10.0)) >= 0.875
    assert _refusal_rate(model, lambda s: negatives.mixture(np.random.default_rng(s), 12.0)[0]) >= 0.75


@pytest.mark.parametrize("make", ["dc", "hum", "alarm"])
def test_the_reported_false_passes_are_refused(model, make):
    """The three kinds a new user found answered as heart sounds: a large DC offset, steady mains hum,
    an alarm tone."""
    t = np.arange(10 * 8000) / 8000
    x = {"dc": 0.5 + 1e-4 * np.random.default_rng(0).standard_normal(len(t)),
         "hum": 0.3 * sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5)),
         "alarm": 0.5 * np.sin(2 * np.pi * np.cumsum(np.where(np.sin(2 * np.pi * 2 * t) > 0, 880, 660)) / 8000)}[make]
    q = _judge(x, 8000, model)
    assert q.label == "no_heartbeat" and q.quality == "unusable" and q.quality_reason, make


def test_silence_and_clipping_have_their_own_reasons(model):
    from conftest import heartlike
    assert _judge(np.zeros(80000), 8000, model).quality_reason == REASONS["silent"]
    assert _judge(np.clip(heartlike(10, 8000) * 40, -1, 1), 8000, model).quality_reason == REASONS["clipped"]


# Kinds the gate cannot yet refuse reliably, with the rate it reaches (reports/quality_gate.md): a
# lowered bar here is a known weakness written down, not a pass.
MIN_REFUSED: dict[str, float] = {}
