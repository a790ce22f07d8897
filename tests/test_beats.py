"""Heart rate and S1/S2: synthetic rhythms, and real annotations (CirCor's segmentation, PASCAL set_a's
hand marks) scored by segmenters that never saw those patients."""
from __future__ import annotations

import numpy as np
import pytest

from heartbeat.audio import load_audio
from heartbeat.beats import FRAME_RATE, find_beats
from heartbeat.datasets import select
from heartbeat.features import FeatureConfig
from heartbeat.frontend import clean
from conftest import heartlike

CFG = FeatureConfig()


@pytest.mark.parametrize("bpm", [48, 72, 110, 150])
def test_synthetic_rhythm(model, bpm):
    x = clean(heartlike(seconds=20, sr=2000, bpm=bpm).astype(np.float32), CFG)
    beats = find_beats(x, 2000, model.segmenter)
    assert abs(beats.heart_rate_bpm - bpm) < 3
    assert beats.periodicity > 0.5
    assert abs(len(beats.s1_times) - 20 * bpm / 60) <= 2
    # S1 comes a third of a period before its S2 in the synthetic signal
    systole = 0.35 * 60 / bpm
    gaps = [min(abs(s2 - s1 - systole) for s2 in beats.s2_times) for s1 in beats.s1_times[:-1]]
    assert np.median(gaps) < 0.06


def test_noise_has_no_rhythm(model):
    x = clean(np.random.default_rng(0).standard_normal(20 * 2000).astype(np.float32), CFG)
    beats = find_beats(x, 2000, model.segmenter)
    assert beats.periodicity < 0.3
    heart = find_beats(clean(heartlike(20, 2000).astype(np.float32), CFG), 2000, model.segmenter)
    assert beats.cycle_fit < heart.cycle_fit - 0.5     # heart cycles explain heart sounds, not noise


def test_segmenter_on_patients_it_never_saw(table):
    """Fitted on 300 CirCor patients, scored on 120 others: the issue's targets (heart rate within 5 bpm
    on >= 95%, S1 F1 >= 0.90) with a margin for the smaller fit."""
    import fit_segmenter as F
    circor = select(table, ["circor2022"]).sample(420, random_state=1).reset_index(drop=True)
    recs = [F._load((p, CFG)) for p in circor["path"]]
    recs = [r for r in recs if len(r[3]["s1"]) >= 3 and np.isfinite(r[3]["bpm"])]
    seg = F.fit(recs[:300])
    rows = [F.score(find_beats(r[0], 2000, seg), r[3]) for r in recs[300:]]
    s = F.summary(rows)
    assert s["s1_f1"] >= 0.90 and s["s2_f1"] >= 0.88, s
    assert s["hr_within_5_bpm"] >= 0.90, s


def test_hand_marked_set_a(model, data_root):
    """PASCAL set_a (iPhone, never used for fitting): heart rate within 5 bpm on at least 90% of the 21
    hand-marked recordings, and most S1 found within 60 ms."""
    import fit_segmenter as F
    rows = [F.score(find_beats(clean(load_audio(path, 2000, min_seconds=0), CFG), 2000, model.segmenter), truth)
            for path, truth in F.set_a_truth(data_root)]
    s = F.summary(rows)
    assert s["recordings"] == 21 and s["hr_within_5_bpm"] >= 0.9 and s["s1_f1"] >= 0.7, s


def test_matching_is_one_to_one():
    import fit_segmenter as F
    assert F.matched([1.0, 1.01, 2.0], [1.0, 2.1]) == 1          # 2.0 is 100 ms from 2.1; two near 1.0 count once
    assert F.matched([1.0, 2.05], [1.0, 2.1]) == 2


def test_frame_classifier_ignores_near_silence_and_the_ends(model, table):
    """A real recording with a muted second (a device's pause), and the same with a faint residue 90 dB
    down (quantisation, a resampler) and a burst of hiss in its first and last 50 ms (a file chain's edge):
    the frame classifier's probabilities agree, beyond the 0.25 s at each end that the burst itself (faded,
    and seen by the classifier's +-100 ms context) still reaches. Before frame energies were floored and the
    ends faded, the muted frames' log energy followed the residue, and a training-d recording's p_abnormal
    moved by 0.06 between sample rates."""
    rng = np.random.default_rng(0)
    x = load_audio(select(table, ["training-d"], ["abnormal"])["path"].iloc[0], 2000, min_seconds=0)[: 2000 * 12]
    x[2000 * 5: 2000 * 6] = 0
    y = x + 3e-5 * np.abs(x).max() * rng.standard_normal(len(x)).astype(np.float32)
    for end in (slice(0, 100), slice(len(y) - 100, len(y))):
        y[end] += 0.3 * np.abs(x).max() * rng.standard_normal(100).astype(np.float32)
    a, b = (model.segmenter.state_probs(clean(v, CFG), 2000) for v in (x, y))
    inside = slice(int(0.25 * FRAME_RATE), len(a) - int(0.25 * FRAME_RATE))
    assert np.abs(a - b)[inside].max() < 0.1, np.abs(a - b).max(axis=1).round(2)


def test_no_rhythm_still_gives_the_frames_probabilities(model):
    """Without a steady rhythm there is no cycle, but the per-frame probabilities (the cycle rows of the
    shipped features) are still there, so those rows cannot jump to zero when a rhythm is barely found."""
    x = clean(np.random.default_rng(0).standard_normal(20 * 2000).astype(np.float32), CFG)
    x[4000:] = 0.0
    beats = find_beats(x, 2000, model.segmenter)
    assert beats.heart_rate_bpm is None and beats.states is None
    assert beats.state_probs is not None and beats.state_probs.shape == (len(x) // 40, 4)
