"""The quality gate: a heart sound is judged whatever the device, sample rate, level or offset; noisy
heart sounds are judged with a caution; every kind of non-heart audio is answered "no heartbeat"."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from heartbeat.audio import SAMPLE_RATE, load_audio, resample
from heartbeat.augment import add_at_snr, as_uploaded, coloured_noise
from heartbeat.predict import classify, read
from heartbeat.frontend import prepare
from heartbeat.quality import NOISY_CAUTION, REASONS, measure
from conftest import need

RATES = (2000, 4000, 8000, 16000, 44100)


def _judge(x, rate, model):
    return classify(resample(np.clip(np.asarray(x, np.float32), -1, 1), rate, SAMPLE_RATE), model)


@pytest.fixture(scope="module")
def heart_sample(table):
    """Three real heart recordings of every database (noisy ones included), at least 6 s long."""
    pos = table[(table.duration_s >= 6) & (table.label.isin(["normal", "abnormal"]) |
                                            ((table.database == "circor2022") & (table.label == "unknown")))]
    return pos.groupby("database", group_keys=False).apply(lambda g: g.sample(3, random_state=4))


def _gate(audio, model):
    """The gate's verdict on a recording at the model's rate: (heart sound present, level, score)."""
    q = model.quality.judge(measure(prepare(audio, model.features, model.segmenter)))
    return q.usable, q.level, q.score


def test_same_gate_answer_at_any_sample_rate(model, heart_sample, tmp_path):
    """Each recording written as a WAV file at 2, 4, 8, 16 and 44.1 kHz, the faster ones with hiss above
    1 kHz as loud as the heart sound (a 2 kHz file cannot hold it), read as an upload: one gate answer,
    one quality level, nearly one score (the classifier is held to the same in the next test)."""
    for r in heart_sample.itertuples():
        x = load_audio(r.path, 2000)
        x = 0.3 * x / np.abs(x).max()
        verdicts = []
        for rate in RATES:
            y = as_uploaded(x, 2000, rate, np.random.default_rng(rate))
            path = tmp_path / f"copy_{rate}.wav"
            sf.write(path, np.clip(y, -1, 1), rate, subtype="PCM_16")
            verdicts.append(_gate(read(path, model), model))
        assert len({v[:2] for v in verdicts}) == 1, (r.path, verdicts)
        # The trees are step functions: measurements that agree to ~0.02 can still cross a split.
        assert max(v[2] for v in verdicts) - min(v[2] for v in verdicts) < 0.2, (r.path, verdicts)


# How far from its cut the diastolic listener's logit may sit and still flip between copies of one recording: its
# logit moves by a median 0.09 (90th percentile 0.40) across the copies below (scripts/listener_invariance.py: 160
# random recordings), most of it in the 16-bit copy 20 dB quieter, whose quantisation floor lifts the upper bands'
# quietest diastolic stretch that the cycle profile is measured against (training-b b0263: -0.24 there, every other
# copy within 0.06), or where a fast heart's S1 and S2 swap in a few cycles (training-e e01689 at 131 bpm: -2.9 at
# 20 dB quieter, -0.3 to -0.5 elsewhere). Measured there: no verdict flipped (the listener before the rate input: 1).
LISTENER_EDGE = 0.3


def test_same_classification_at_any_rate_level_and_offset(model, heart_sample, tmp_path):
    """The whole answer, through files as a user would upload them: each real recording as 16-bit WAV at
    2, 4, 8, 16 and 44.1 kHz (hiss above 1 kHz as loud as the heart), 20 dB quieter, and with a DC offset
    of 0.4: one label, one rhythm, one verdict of the diastolic listener (unless its logit sits on the edge of
    its cut: LISTENER_EDGE), and p_abnormal within 0.03. (The model before FeatureConfig.floor_db and
    DC removal at decoding moved by up to 0.16 and flipped a label.)"""
    from heartbeat.describe import profile_of
    from heartbeat.diastolic import input_of
    from heartbeat.predict import decide
    for r in heart_sample.itertuples():
        x = load_audio(r.path, 2000)
        x = 0.3 * x / np.abs(x).max()
        copies = [(as_uploaded(x, 2000, rate, np.random.default_rng(rate)), rate) for rate in RATES] + \
                 [(0.1 * x, 2000), (x + 0.4, 2000)]
        answers, edge = [], []
        for i, (y, rate) in enumerate(copies):
            path = tmp_path / f"copy_{i}.wav"
            sf.write(path, np.clip(y, -1, 1), rate, subtype="PCM_16")
            prepared = prepare(read(path, model), model.features, model.segmenter)
            answers.append(decide(prepared, model))
            score = model.diastolic.score(input_of(prepared, profile_of(prepared)))
            edge.append(score is not None and abs(score - model.diastolic.cut) < LISTENER_EDGE)
        assert len({(q.label, q.rhythm) for q in answers}) == 1, \
            (r.path, [(q.label, q.rhythm, q.diastolic_heard, q.p_abnormal) for q in answers])
        verdicts = {q.diastolic_heard for q, on_edge in zip(answers, edge) if not on_edge}
        assert len(verdicts) <= 1, (r.path, [q.diastolic_heard for q in answers], edge)
        p = [q.p_abnormal for q in answers if q.p_abnormal is not None]
        assert not p or max(p) - min(p) < 0.03, (r.path, p)


def test_level_dc_offset_and_drift_do_not_change_the_gate(model, heart_sample):
    for r in heart_sample.head(12).itertuples():
        x = load_audio(r.path, 2000)
        x = 0.3 * x / np.abs(x).max()
        t = np.arange(len(x)) / 2000
        # 20 dB quieter, 8 dB louder, a DC offset, a slow drift (the silence floor is -70 dB in the heart band)
        copies = [x, 0.1 * x, x * 2.5, x + 0.4, x + 0.2 + 0.2 * np.sin(2 * np.pi * 0.3 * t)]
        verdicts = [_gate(np.clip(c, -1, 1).astype(np.float32), model) for c in copies]
        assert len({v[:2] for v in verdicts}) == 1, (r.path, verdicts)


def test_real_heart_recordings_pass_on_every_database(model, heart_sample):
    judged = [classify(read(p, model), model) for p in heart_sample["path"]]
    refused = [(p, q.quality_reason) for p, q in zip(heart_sample["path"], judged) if q.label == "no_heartbeat"]
    assert len(refused) <= 1, refused


def test_noisy_heart_sound_is_judged_with_a_caution(model, table):
    """Clean heart recordings under loud pink room noise (0 dB SNR) are still heart sounds: most are
    judged, and the noise is noticed in at least half (marked noisy with the caution, or, where the beats
    hardly stand out, refused), which the clean originals rarely are. The gate is fitted on heart sounds
    at 5-30 dB SNR (below that "is a heart sound there?" has no clear answer), so 0 dB is its edge: the
    gate fitted with the floored segmenter features judges 7 of these 10 (3 marked noisy) and refuses the
    3 whose beats stand 2-5 dB above the noise; the gate before it judged 8 and marked 4."""
    rows = table[(table.database == "training-a") & (table.duration_s >= 10)].head(10)
    clean_q, noisy_q = [], []
    for path in rows["path"]:
        x = load_audio(path, 2000)
        clean_q.append(_judge(0.3 * x / np.abs(x).max(), 2000, model))
        y = add_at_snr(x, coloured_noise(np.random.default_rng(1), len(x), 2000, 1.0), 0.0)
        noisy_q.append(_judge(0.3 * y / np.abs(y).max(), 2000, model))
    judged = [q for q in noisy_q if q.label != "no_heartbeat"]
    assert len(judged) >= 7, [q.quality_reason for q in noisy_q]
    noticed = [q for q in noisy_q if q.label == "no_heartbeat" or q.quality == "noisy"]
    assert len(noticed) >= 5, [(q.label, q.quality) for q in noisy_q]
    assert all((q.caution or "").startswith(NOISY_CAUTION) == (q.quality == "noisy") for q in judged + clean_q)
    assert sum(q.quality == "noisy" for q in clean_q) <= 2
    assert all(q.label != "no_heartbeat" for q in clean_q)


def test_labelled_noisy_recordings_are_judged_and_flagged_more_often(model, table):
    """CirCor's "unknown" recordings (too noisy for its annotators, but real heart sounds) mostly get an
    answer, and are marked noisy several times as often as its normal recordings. Measured with the
    bundled gate: 33 of 41 unknowns judged (0.80), 18% of them flagged noisy against 3% of normals; the
    target (>= 0.97 of every database) is not reached for these, see reports/quality_gate.md."""
    circor = table[(table.database == "circor2022") & (table.duration_s >= 3)]
    judged = {label: [classify(read(p, model), model) for p in circor[circor.label == label]["path"].head(41)]
              for label in ("unknown", "normal")}
    assert np.mean([q.label != "no_heartbeat" for q in judged["unknown"]]) >= 0.75
    flagged = {k: np.mean([q.quality == "noisy" for q in v if q.label != "no_heartbeat"]) for k, v in judged.items()}
    assert flagged["unknown"] >= 0.1 and flagged["unknown"] > 3 * flagged["normal"], flagged


def _refusal_rate(model, make, seeds=range(1000, 1008)):
    from heartbeat.negatives import SR
    return np.mean([_judge(make(seed), SR, model).label == "no_heartbeat" for seed in seeds])


def test_generated_kinds_are_whole_and_finite_at_any_length():
    """Every generator fills the length asked with finite samples, for lengths that are not whole numbers of
    samples (the cough's glottal pulses once ran one sample past their buffer on such a length)."""
    from heartbeat import negatives
    rng = np.random.default_rng(0)
    for seconds in rng.uniform(0.01, 0.4, 3000):
        f0 = rng.uniform(100, 250)
        assert len(negatives._glottal(rng, seconds, f0)) == int(seconds * negatives.SR)
    for gen in negatives.GENERATED:
        for seed, seconds in enumerate((3.0, 7.31, 12.97)):
            x = gen(np.random.default_rng(seed), seconds)
            assert len(x) == int(seconds * negatives.SR) and np.isfinite(x).all(), gen.__name__


def test_every_generated_kind_is_answered_no_heartbeat(model):
    """Each kind of non-heart audio, made with seeds never used in fitting, is answered no heartbeat."""
    from heartbeat import negatives
    low = {}
    for gen in negatives.GENERATED:
        rate = _refusal_rate(model, lambda s: gen(np.random.default_rng(s), 12.0))
        if rate < MIN_REFUSED.get(gen.__name__, 0.875):
            low[gen.__name__] = rate
    assert not low, low


def test_each_kind_is_refused_for_a_reason_a_clinician_can_act_on(model):
    """The reason names the cause (noise, a voice, music or a tone, a hum, silence, no heart sounds) that each
    kind's refusals may rightly name (negatives.RIGHT_CAUSES), for seeds never used in fitting; white and
    pink noise were once called "voiced, like speech or music"."""
    from heartbeat import negatives
    from heartbeat.quality import CAUSES
    from heartbeat.negatives import SR
    right, wrong = 0, {}
    for gen in negatives.GENERATED:
        for seed in range(1000, 1004):
            q = _judge(gen(np.random.default_rng(seed), 12.0), SR, model)
            if q.label != "no_heartbeat":
                continue
            if CAUSES[q.quality_reason] in negatives.RIGHT_CAUSES[gen.__name__]:
                right += 1
            else:
                wrong.setdefault(gen.__name__, []).append(q.quality_reason)
    for gen in (negatives.white_noise, negatives.pink_noise):
        q = _judge(gen(np.random.default_rng(7), 12.0), SR, model)
        assert CAUSES[q.quality_reason] in ("noise", "no heart sounds"), (gen.__name__, q.quality_reason)
    # Measured with the bundled gate on these seeds: 99 of 100 refusals name a right cause (one traffic recording
    # is "above the heart band"). Before the pitched reason named tones and the cough had a voice's pulses: 0.93.
    total = right + sum(len(v) for v in wrong.values())
    assert right / total >= 0.95, wrong
    assert all(len(reasons) <= 1 for reasons in wrong.values()), wrong      # no kind wrong more than once in four


def test_speech_and_mixtures_are_answered_no_heartbeat(model):
    from heartbeat import negatives
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


def test_a_steady_sound_is_refused_whatever_the_trees_say(model, heart_sample):
    """A sound whose level hardly rises and falls is refused, and for that reason where the trees would pass it.
    Ventilation's whoosh (noise between white and pink, the level swaying +-1.5 dB at a heart-like rate: the gate
    was fitted on steady white and pink noise, not on a sway) lies below the rule's cut; real heart recordings swing their level by more
    (the cut is what 99.5% of the fitting's heart recordings exceed: 5.6 dB). Before the rule, held-out fans
    were refused in 53% (reports/quality_gate.md). Not caught: a deep rumble (noise falling at 1/f^1.5 or
    steeper) swings by 6-7 dB in 20 ms frames from its own few degrees of freedom, and with a heart-like sway
    the shipped gate passes 2-6 of 20 such rumbles as noisy heart sounds (README, Limitations)."""
    rate = 8000
    for seed in range(6):
        rng = np.random.default_rng(seed)
        t = np.arange(12 * rate) / rate
        x = coloured_noise(rng, len(t), rate, rng.uniform(0.3, 1.0)) * 10 ** (1.5 / 20 * np.sin(2 * np.pi * rng.uniform(1, 2) * t))
        x = resample((0.3 * x / np.abs(x).max()).astype(np.float32), rate, SAMPLE_RATE)
        q = model.quality.judge(measure(prepare(x, model.features, model.segmenter)))
        assert not q.usable and q.measurements["dynamics_db"] < model.quality.steady_below_db, (q.reason, q.measurements)
    heart = [measure(prepare(load_audio(p, SAMPLE_RATE), model.features, model.segmenter)) for p in heart_sample["path"]]
    passed = [m for m in heart if model.quality.judge(m).usable]
    assert all(m["dynamics_db"] >= model.quality.steady_below_db for m in passed)
    steady = model.quality.judge(passed[0] | {"dynamics_db": model.quality.steady_below_db - 0.1})
    assert (steady.usable, steady.reason, steady.score) == (False, REASONS["steady"], 0.0)


def test_heart_sounds_are_low_and_rubbing_or_clicks_are_not(model, heart_sample):
    """low_sounds_db: in the frames called S1 or S2, how far the louder of the two lowest bands (25-100 Hz) lies
    below the loudest band. Real heart recordings of every database: near 0 (S1 and S2 are low sounds); rubbing
    and a metronome's clicks (seeds never fitted on): well below, whatever the segmenter took for S1 and S2."""
    from heartbeat import negatives
    heart = [measure(prepare(load_audio(p, SAMPLE_RATE), model.features, model.segmenter))["low_sounds_db"]
             for p in heart_sample["path"]]
    assert np.median(heart) >= -1.0 and np.mean(np.asarray(heart) >= -6) >= 0.9, heart
    others = [measure(prepare(resample(np.asarray(make(np.random.default_rng(seed), 10.0), np.float32), negatives.SR,
                                       SAMPLE_RATE), model.features, model.segmenter))["low_sounds_db"]
              for make in (negatives.rubbing, negatives.metronome) for seed in range(1000, 1004)]
    assert np.median(others) <= -6.0, others


def test_a_heart_makes_two_sounds_a_cycle_and_footsteps_one(model, heart_sample):
    """weaker_sound_db: the weaker of S1 and S2 above systole and diastole. Real heart recordings of every database:
    both sounds stand out (measured on this sample: 1.3-19.7 dB, median 6.7); footsteps, a ticking clock and a
    metronome (seeds never fitted on) make one sound a cycle, and the segmenter's other "sound" is as quiet as the
    pause (measured: -1.0 to 0.6 dB)."""
    from heartbeat import negatives
    heart = [measure(prepare(load_audio(p, SAMPLE_RATE), model.features, model.segmenter))["weaker_sound_db"]
             for p in heart_sample["path"]]
    assert np.median(heart) >= 4.0 and np.mean(np.asarray(heart) > 1.0) >= 0.9, heart
    one_sound = [measure(prepare(resample(np.asarray(make(np.random.default_rng(seed), 10.0), np.float32), negatives.SR,
                                          SAMPLE_RATE), model.features, model.segmenter))["weaker_sound_db"]
                 for make in (negatives.footsteps, negatives.ticking_clock, negatives.metronome) for seed in range(1000, 1004)]
    assert max(one_sound) <= 1.0, one_sound


def test_a_gate_fitted_on_other_measurements_is_not_loaded(model, tmp_path):
    """The trees read the measurements by position: a quality.json from before a measurement was added says so
    and is refused, rather than read shifted."""
    import json
    from heartbeat.quality import QualityGate
    model.quality.save(tmp_path / "q.json")
    d = json.loads((tmp_path / "q.json").read_text())
    d["measurements"] = d["measurements"][:-1]
    (tmp_path / "q.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="refit"):
        QualityGate.load(tmp_path / "q.json")


def test_silence_and_clipping_have_their_own_reasons(model):
    from conftest import heartlike
    assert _judge(np.zeros(80000), 8000, model).quality_reason == REASONS["silent"]
    assert _judge(np.clip(heartlike(10, 8000) * 40, -1, 1), 8000, model).quality_reason == REASONS["clipped"]


# Kinds the gate cannot yet refuse reliably, with the rate it reaches (reports/quality_gate.md): a
# lowered bar here is a known weakness written down, not a pass.
MIN_REFUSED: dict[str, float] = {}


def test_voicing_is_the_autocorrelation_at_a_voice_s_lags(heart_sample):
    # frame_voicing sums the 15 lags it reads directly; here the whole autocorrelation through the transform,
    # as it was computed until 2026-12-07, on real recordings: the same numbers.
    from heartbeat.dsp import sosfiltfilt
    from heartbeat.quality import VOICING_FRAME_S, _highpass, frame_voicing
    for path in heart_sample["path"][::3]:
        audio = load_audio(path, SAMPLE_RATE)
        voiced, energy = frame_voicing(audio, SAMPLE_RATE)
        n = int(VOICING_FRAME_S * SAMPLE_RATE)
        x = sosfiltfilt(_highpass(SAMPLE_RATE), audio)
        frames = x[: len(x) // n * n].reshape(-1, n)
        frames = frames - frames.mean(axis=1, keepdims=True)
        ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * n, axis=1)) ** 2, 2 * n, axis=1)[:, :n]
        np.testing.assert_allclose(energy, ac[:, 0], rtol=1e-9)
        np.testing.assert_allclose(voiced, ac[:, 6:21].max(axis=1) / (ac[:, 0] + 1e-12), rtol=1e-7, atol=1e-9)
