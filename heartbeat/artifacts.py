"""Artifacts inside a heart recording: which analysis windows hold speech, rubbing, handling or knocks.

The quality gate judges the recording as a whole (is a heart sound there at all); this judges each of the
network's windows, so a patient who talks for five seconds of a thirty-second recording is judged on the
other twenty-five, and one who talks throughout is asked to record again instead of being called abnormal.

Per window, from the recording at the model's rate (so the file's own rate cannot change it) and in dB
against the same recording's typical window (so neither its level nor its device can):
    high_share_db   sound above the heart band (400-800 Hz) against the heart band (25-400 Hz)
    high_rise_db    the window's level above 400 Hz, above the recording's median window
    heart_rise_db   its heart-band level above the median window (movement and handling are loud and low)
    peak_rise_db    its loudest 40 ms frame above the median window's loudest (knocks, bumps)
    floor_rise_db   its quiet frames (20th percentile) above the median window's, in the heart band and
    high_floor_rise_db  above it: between the beats a heart recording is quiet; any added sound fills it
    low_share_db    sound below the heart band (8-25 Hz) against the heart band, and
    low_rise_db     its level there above the median window's: thumps of handling and footsteps reach below
                    what a heart sound holds
    voicing         how voiced its louder frames are (quality.voicing_of: speech repeats at its pitch)
    unsure          how much less sure the S1/S2 segmenter is there than in the median window
Boosted trees (quality.Trees, plain JSON in the bundle's artifacts.json) turn these into a score, fitted by
scripts/fit_artifacts.py on real heart recordings of every database with speech, rubbing, handling,
footsteps, knocks and coughs laid over stretches of them. A window is set aside only when the trees are
very sure (the bundle's cut, fit_artifacts.SHIPPED_CUT): on stethoscopes they never heard, laxer cuts set
aside clean windows.

The answer (predict.decide): the windows kept are judged on their own while at least MIN_CLEAN_WINDOWS
remain, and the whole recording as recorded too, because an artifact must never take a referral away (a
detector can take a loud murmur for noise). Abnormal either way is abnormal; abnormal only with the stretch
set aside is abnormal with quality "noisy" and a caution naming what was heard (never "good": the score may
come from the artifact); too few clean windows is "too noisy: record again", saying so where the recording as
recorded sounds abnormal ("refer if you cannot record again").
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .beats import FRAME_RATE
from .features import FeatureConfig, power_spectrogram
from .frontend import Prepared
from .preprocess import window_starts
from .quality import SPECTRUM_HZ, VOICING_FRAME_S, Trees, balanced, voicing_of

MEASUREMENTS = ("high_share_db", "high_rise_db", "heart_rise_db", "peak_rise_db", "floor_rise_db",
                "high_floor_rise_db", "low_share_db", "low_rise_db", "voicing", "unsure")
# Each can only raise the artifact score: a window louder, higher, more voiced or less heart-like than the
# rest of its own recording is the suspect one.
MONOTONIC = (1,) * len(MEASUREMENTS)
# (The lowest bin above DC: 7.8 Hz.) Nothing above 800 Hz, as in the gate (quality.SPECTRUM_HZ): 800-1000 Hz is
# the resampler's edge, where a file recorded at 2 kHz and the same sound through 8 or 44.1 kHz differ. The
# detector is fitted on mixes made at 8 kHz and serves files as recorded: a CNN that read up to 1 kHz set aside
# 31% of real 2 kHz recordings' windows and 2-3% of the same recordings' 8 kHz copies (README, 2026-12-07).
LOW_HZ, HEART_HZ, HIGH_HZ = (7.0, 25.0), (25.0, 400.0), (400.0, SPECTRUM_HZ[1])
# Set-aside windows leave the decision only while at least this many clean ones remain: three overlapping
# 3 s windows span 6 s, about six heart cycles, the length of PhysioNet 2016's shortest recordings (5 s),
# on which the network was trained and scored. Fewer, and the answer is "record again".
MIN_CLEAN_WINDOWS = 3
# What was heard, in a clinician's words, by the measurement that stands out most in the flagged windows.
# At 2 kHz a voice, cloth on the chest piece and a room's noise all mostly add sound above the heart band and
# are not told apart reliably (measured: espeak-ng speech was named by its high band, not its voicing), so
# the words name the family, not one cause.
HEARD = {"voicing": "speech", "high_share_db": "talking, rubbing or other noise",
         "high_rise_db": "talking, rubbing or other noise", "high_floor_rise_db": "talking, rubbing or other noise",
         "heart_rise_db": "movement, footsteps or handling", "low_share_db": "movement, footsteps or handling",
         "low_rise_db": "movement, footsteps or handling", "peak_rise_db": "knocks or bumps",
         "floor_rise_db": "movement, talking or rubbing between the beats", "unsure": "noise over the heart sounds"}


def _db(x):
    return 10 * np.log10(np.asarray(x, np.float64) + 1e-20)


def window_measurements(prepared: Prepared, cfg: FeatureConfig) -> np.ndarray:
    """(n_windows, len(MEASUREMENTS)) for the network's windows of a prepared recording (same starts)."""
    rate = prepared.sample_rate
    power = power_spectrogram(prepared.audio, cfg.n_fft, cfg.hop_length)          # the feature frames
    freqs = np.fft.rfftfreq(cfg.n_fft, 1 / rate)
    heart = power[(freqs >= HEART_HZ[0]) & (freqs < HEART_HZ[1])].sum(axis=0)
    high = power[(freqs >= HIGH_HZ[0]) & (freqs <= HIGH_HZ[1])].sum(axis=0)
    low = power[(freqs >= LOW_HZ[0]) & (freqs < LOW_HZ[1])].sum(axis=0)
    starts = window_starts(power.shape[1], cfg.window_frames, cfg.hop_frames)
    if not len(starts):
        return np.zeros((0, len(MEASUREMENTS)))
    # Each window's frames as one row (a view): every per-window statistic is one numpy call over all windows.
    def rows(x):
        return np.lib.stride_tricks.sliding_window_view(x, cfg.window_frames)[starts]
    heart_w, high_w = rows(heart), rows(high)
    heart_db, high_db, low_db = _db(heart_w.mean(axis=1)), _db(high_w.mean(axis=1)), _db(rows(low).mean(axis=1))
    peak_db = _db(heart_w.max(axis=1))
    floor_db, high_floor_db = _db(np.percentile(heart_w, 20, axis=1)), _db(np.percentile(high_w, 20, axis=1))
    # Voicing of each window's louder half of frames (60 ms frames, mapped onto the windows by time).
    voiced, energy = voicing_of(prepared)
    t_voice = (np.arange(len(voiced)) + 0.5) * VOICING_FRAME_S
    t_win = starts / cfg.frame_rate
    first, end = np.searchsorted(t_voice, t_win), np.searchsorted(t_voice, t_win + cfg.window_s)
    voiced_w, energy_w = _rows(voiced, first, end), _rows(energy, first, end)
    louder = energy_w >= _medians(energy_w)[:, None]          # NaN (past a window's end) is never louder
    voicing = np.nan_to_num(_medians(np.where(louder, voiced_w, np.nan)))
    # The segmenter's certainty: the mean of its largest state probability over the window's frames.
    probs = prepared.beats.state_probs
    sure = np.zeros(len(starts))
    if probs is not None and len(probs):
        best = probs.max(axis=1)
        a = np.minimum((t_win * FRAME_RATE).astype(int), len(best))
        b = np.minimum(((t_win + cfg.window_s) * FRAME_RATE).astype(int), len(best))
        total = np.r_[0.0, np.cumsum(best, dtype=np.float64)]
        sure = np.where(b > a, (total[b] - total[a]) / np.maximum(b - a, 1), np.median(best))
    return np.column_stack([high_db - heart_db, high_db - np.median(high_db), heart_db - np.median(heart_db),
                            peak_db - np.median(peak_db), floor_db - np.median(floor_db),
                            high_floor_db - np.median(high_floor_db), low_db - heart_db, low_db - np.median(low_db),
                            voicing, np.median(sure) - sure])


def _rows(values: np.ndarray, first: np.ndarray, end: np.ndarray) -> np.ndarray:
    """values[first[i]:end[i]] for every i, as the rows of one array padded on the right with NaN."""
    width = max(int((end - first).max(initial=0)), 1)
    at = first[:, None] + np.arange(width)
    return np.where(at < end[:, None], values[np.minimum(at, len(values) - 1)], np.nan)


def _medians(rows: np.ndarray) -> np.ndarray:
    """np.median of each row's numbers, NaN where a row has none: one sort for all rows (np.nanmedian takes ten
    times as long on a recording's few dozen windows)."""
    count = (~np.isnan(rows)).sum(axis=1)
    ordered, r = np.sort(rows, axis=1), np.arange(len(rows))        # NaN sorts last
    middle = (ordered[r, np.maximum(count - 1, 0) // 2] + ordered[r, count // 2]) / 2
    return np.where(count > 0, middle, np.nan)


@dataclass
class ArtifactDetector:
    """`trees` score each window; at or above `threshold` it is set aside. `reference`: where each
    measurement lies in clean windows (median, 99th percentile), to say what was heard."""
    trees: Trees
    threshold: float
    reference: dict

    def flag(self, m: np.ndarray) -> np.ndarray:
        """Boolean per window: an artifact is there."""
        return self.trees.probs(m) >= self.threshold if len(m) else np.zeros(0, bool)

    def heard(self, m: np.ndarray) -> str:
        """What the flagged windows `m` most likely held, in words."""
        median = np.median(m, axis=0)
        # How far past clean windows each measurement lies, in units of how far the 1% most extreme clean
        # windows lie from their median: the one furthest past names what was heard.
        beyond = {k: (median[j] - r["clean_p50"]) / max(r["clean_p99"] - r["clean_p50"], 1e-9)
                  for j, (k, r) in enumerate((k, self.reference[k]) for k in MEASUREMENTS)}
        return HEARD[max(beyond, key=beyond.get)]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"measurements": list(MEASUREMENTS), "trees": asdict(self.trees),
                                          "threshold": self.threshold, "reference": self.reference}))

    @classmethod
    def load(cls, path: str | Path) -> "ArtifactDetector":
        d = json.loads(Path(path).read_text())
        if d.get("measurements") != list(MEASUREMENTS):   # trees read features by position: no silent mismatch
            raise ValueError(f"{path}: fitted on other measurements ({d.get('measurements')}); refit it with "
                             "scripts/fit_artifacts.py")
        return cls(Trees(**d["trees"]), d["threshold"], d["reference"])

    @classmethod
    def fit(cls, X: np.ndarray, artifact: np.ndarray, weight: np.ndarray, clean_flag_rate: float = 0.02,
            seed: int = 0) -> "ArtifactDetector":
        """Windows `X` with `artifact` labels and `weight`s (databases and kinds weigh alike); the threshold
        sets aside no more than `clean_flag_rate` of the (weighted) clean windows."""
        artifact, weight = np.asarray(artifact, bool), np.asarray(weight, float)
        trees = Trees.fit(X, artifact, balanced(weight, artifact), seed, list(MONOTONIC))
        clean = ~artifact
        scores = trees.probs(X[clean])
        order = np.argsort(scores)[::-1]
        cum = np.cumsum(weight[clean][order]) / weight[clean].sum()
        threshold = float(max(0.5, scores[order][min(np.searchsorted(cum, clean_flag_rate), len(order) - 1)]))
        reference = {k: {"clean_p50": float(np.percentile(X[clean, j], 50)),
                         "clean_p99": float(np.percentile(X[clean, j], 99))}
                     for j, k in enumerate(MEASUREMENTS)}
        return cls(trees, threshold, reference)


@dataclass
class Screened:
    """Which windows leave the decision, and what was heard in them."""
    keep: np.ndarray | None           # boolean per window; None: no detector, every window is judged
    heard: str | None                 # None when nothing was set aside

    @property
    def enough(self) -> bool:
        return self.keep is None or self.heard is None or int(self.keep.sum()) >= MIN_CLEAN_WINDOWS


def screen(prepared: Prepared, cfg: FeatureConfig, detector: ArtifactDetector | None) -> Screened:
    """The windows to judge (a bundle made before artifacts.json has no detector: all of them)."""
    if detector is None:
        return Screened(None, None)
    m = window_measurements(prepared, cfg)
    flagged = detector.flag(m)
    return Screened(~flagged, detector.heard(m[flagged]) if flagged.any() else None)
