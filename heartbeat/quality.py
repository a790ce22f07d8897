"""The quality gate: is there a usable heart sound in this recording, and if not, why not.

Two hard rules give the plainest reasons (silent, clipped). Then shallow gradient-boosted trees on a
handful of signal measurements, fitted by scripts/quality_gate.py on real heart recordings against real
and generated non-heart audio, give a quality score; when it fails, the measurement most unlike heart
recordings (in the direction non-heart audio goes) names the reason. The trees live in the model bundle
(quality.json).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import signal

from .audio import WIDEBAND_RATE, resample
from .beats import Beats, find_beats
from .features import FeatureConfig, clean

SILENT_DBFS = -55.0        # below this RMS level nothing audible was recorded
CLIPPED_FRACTION = 0.05    # more than 5% of samples at full scale: the input was overdriven

# The measurements the gate's trees use, in order.
MEASUREMENTS = ("periodicity", "heart_band", "flatness", "tonality", "impulsiveness", "level_db", "high_band")
# What a measurement means for a clinician when it is what failed the recording. Level and tonality feed
# the trees but make poor explanations (level differs little between heart and non-heart audio; a heart
# sound's energy is itself concentrated in few frequencies), so they never name the reason.
EXPLANATIONS = {
    "periodicity": "no steady heart rhythm was found",
    "heart_band": "most of the sound is above the heart-sound band (speech, music or other noise)",
    "flatness": "the recording is mostly noise",
    "impulsiveness": "no distinct heart sounds (S1/S2) were found, only a steady sound",
    "high_band": "much of the sound is high-pitched (speech, music or hiss), not heart sounds",
}
REASONS = {"silent": "the recording is silent or far too quiet: place the stethoscope or microphone on the chest",
           "clipped": "the recording is overdriven (clipping): lower the input volume and record again"}


@dataclass
class Quality:
    usable: bool
    score: float            # 0..1: how sure the gate is that a usable heart sound is present
    reason: str | None      # why not, in plain words (None when usable)
    measurements: dict


def _psd(x: np.ndarray, rate: int, segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectrum with Hann windows, no overlap, vectorised (scipy's welch loops per segment)."""
    n = max(1, len(x) // segment)
    segments = np.resize(x, n * segment).reshape(n, segment) if len(x) >= segment else x[None, :]
    segments = segments - segments.mean(axis=1, keepdims=True)
    window = np.hanning(segments.shape[1]).astype(np.float32)
    power = np.abs(scipy.fft.rfft(segments.astype(np.float32) * window, axis=1)) ** 2
    return np.fft.rfftfreq(segments.shape[1], 1 / rate), power.mean(axis=0, dtype=np.float64)


def measure(audio: np.ndarray, sample_rate: int, beats: Beats, wideband: np.ndarray | None = None) -> dict:
    """Signal measurements of the raw audio (before band-pass and normalisation) and its beat analysis.
    `wideband` is the same recording at WIDEBAND_RATE: its share of energy above 1 kHz (speech, music,
    hiss) is invisible at the model's 2 kHz. A 2 kHz original has none, and counts as 0."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    freqs, psd = _psd(audio, sample_rate, 512)
    band = (freqs >= 20) & (freqs <= min(1000, sample_rate / 2))
    p = psd[band] + 1e-20
    heart = p[freqs[band] <= 200].sum() / p.sum()
    flatness = float(np.exp(np.mean(np.log(p))) / np.mean(p))
    tonality = float(np.max(p) / p.sum())
    # Impulsiveness: heart sounds are short loud events; a high envelope crest factor says so.
    # Analytic signal at a fast FFT length (an awkward length such as a large prime costs ten times more).
    env = np.abs(signal.hilbert(audio - audio.mean(), N=scipy.fft.next_fast_len(len(audio))))[: len(audio)]
    frames = env[: len(env) // 40 * 40].reshape(-1, 40).mean(axis=1)   # 20 ms frames at 2 kHz
    impulsiveness = float((np.percentile(frames, 95) + 1e-9) / (np.median(frames) + 1e-9))
    high = 0.0
    if wideband is not None and len(wideband):
        f, pw = _psd(wideband, WIDEBAND_RATE, 1024)
        high = float(pw[f > 1000].sum() / (pw[f > 20].sum() + 1e-20))
    return {"level_db": 20 * np.log10(rms + 1e-12), "clipped": float(np.mean(np.abs(audio) >= 0.98)),
            "high_band": high,
            "periodicity": beats.periodicity, "heart_band": float(heart), "flatness": flatness,
            "tonality": tonality, "impulsiveness": float(np.log(impulsiveness))}


def analyse(wideband: np.ndarray, cfg: FeatureConfig) -> tuple[dict, Beats, np.ndarray, np.ndarray]:
    """A recording at WIDEBAND_RATE -> (measurements, beats, cleaned signal, audio at cfg.sample_rate).
    The one place the gate's inputs are made: classify() and the gate's fitting both call it."""
    audio = resample(wideband, WIDEBAND_RATE, cfg.sample_rate)
    cleaned = clean(audio, cfg)
    beats = find_beats(cleaned, cfg.sample_rate)
    return measure(audio, cfg.sample_rate, beats, wideband), beats, cleaned, audio


@dataclass
class QualityGate:
    """Gradient-boosted trees over MEASUREMENTS, stored as plain JSON (no pickles: they break across
    scikit-learn versions), with a pass threshold. `reference` holds each measurement's median and spread
    over heart recordings and the direction in which non-heart audio departs from it, to name a reason."""
    trees: list            # per tree: nodes as [feature, threshold, left, right, value, is_leaf]
    baseline: float
    reference: dict        # measurement -> {"heart": median over heart recordings, "other": over non-heart}
    threshold: float = 0.5

    @staticmethod
    def rule(m: dict) -> str | None:
        """The hard rules' reason, or None when neither applies."""
        if m["level_db"] < SILENT_DBFS:
            return REASONS["silent"]
        if m["clipped"] > CLIPPED_FRACTION:
            return REASONS["clipped"]
        return None

    def score(self, m: dict) -> float:
        x = [m[k] for k in MEASUREMENTS]
        raw = self.baseline
        for nodes in self.trees:
            i = 0
            while not nodes[i][5]:
                feature, threshold, left, right = nodes[i][:4]
                i = left if x[feature] <= threshold else right
            raw += nodes[i][4]
        return float(1 / (1 + np.exp(-raw)))

    def judge(self, m: dict) -> Quality:
        if reason := self.rule(m):
            return Quality(False, 0.0, reason, m)
        score = self.score(m)
        if score >= self.threshold:
            return Quality(True, score, None, m)
        atypical = {k: (m[k] - r["heart"]) / (r["other"] - r["heart"]) for k, r in self.reference.items()
                    if k in EXPLANATIONS and r["other"] != r["heart"]}
        return Quality(False, score, EXPLANATIONS[max(atypical, key=atypical.get)], m)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(vars(self)))

    @classmethod
    def load(cls, path: str | Path) -> "QualityGate":
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def fit(cls, rows: list[dict], usable: np.ndarray, threshold: float = 0.5, seed: int = 0) -> "QualityGate":
        from sklearn.ensemble import HistGradientBoostingClassifier
        X = np.array([[r[k] for k in MEASUREMENTS] for r in rows])
        usable = np.asarray(usable, bool)
        model = HistGradientBoostingClassifier(max_depth=3, class_weight="balanced", random_state=seed)
        model.fit(X, usable)
        trees = [[[int(n["feature_idx"]), float(n["num_threshold"]), int(n["left"]), int(n["right"]),
                   float(n["value"]), bool(n["is_leaf"])] for n in predictors[0].nodes]
                 for predictors in model._predictors]
        baseline = float(np.ravel(model._baseline_prediction)[0])
        reference = {k: {"heart": float(np.median(X[usable, j])), "other": float(np.median(X[~usable, j]))}
                     for j, k in enumerate(MEASUREMENTS)}
        return cls(trees, baseline, reference, threshold)
