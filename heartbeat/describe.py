"""What kind of abnormal: when in the cycle the murmur sounds, how loud it is, and whether the rhythm is regular.

Read off what the front end already found (frontend.Prepared: the cleaned sound and the segmenter's
S1 / systole / S2 / diastole states), so it changes no decision; ~2 ms for an abnormal 30 s recording, nothing
for a normal one:
- `cycle_profile`: per heart cycle and band, the sound's level in SYS_BINS stretches of systole and DIA_BINS
  of diastole, and S1's and S2's peaks, in dB above the cycle's quietest stretch of diastole; QUANTILES over
  cycles. Relative levels only, so a recording 20 dB quieter gives the same profile.
- `irregularity`: how often the beat interval jumps from one beat to the next (level- and rate-free).
A `Describer` (fitted by scripts/fit_describe.py on CirCor's murmur descriptions; describe.json in the model
bundle) turns them into words a clinician uses: CirCor's timing categories and grade I/VI ("soft") against
II/VI and louder ("loud"), and the rhythm "irregular" where the irregularity is above what 95% of normal
recordings of all nine databases show (an irregularly irregular rhythm such as atrial fibrillation; single
early beats are mostly missed: reports/describe.md).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .beats import FRAME_RATE, cycle_bounds
from .dsp import butter, sosfilt

SYS_BINS, DIA_BINS = 8, 6
HOP_S = 0.005                          # the level envelope's step: systole is 60 such steps at 100 bpm
# Three bands: S1/S2's bulk and a mitral rumble (25-100 Hz), and two of murmurs' (most are 100-400 Hz;
# a blowing regurgitation is high, an innocent vibratory murmur lower).
BANDS_HZ = ((25.0, 100.0), (100.0, 200.0), (200.0, 400.0))
QUANTILES = (50, 80)                   # over cycles: the typical cycle, and the louder ones (a murmur may come and go)
MIN_CYCLES = 3                         # fewer whole cycles and there is nothing steady to describe
PER_BAND = ([f"sys{i}" for i in range(SYS_BINS)] + [f"dia{i}" for i in range(DIA_BINS)] + ["s1", "s2"])
PROFILE_NAMES = [f"q{q}_{int(lo)}_{name}" for q in QUANTILES for lo, _ in BANDS_HZ for name in PER_BAND]
TIMINGS = ("early-systolic", "mid-systolic", "late-systolic", "holosystolic", "diastolic", "systolic and diastolic")
GRADES = ("soft", "loud")
RHYTHMS = ("regular", "irregular")
RR_STEP = 0.10                         # a beat-to-beat change in interval over this share of the median counts
MIN_INTERVALS = 5                      # fewer beat intervals and the rhythm is not said
# Where in the cycle each timing sounds: (in systole, in diastole); the page marks those phases.
PHASES = {"early-systolic": (True, False), "mid-systolic": (True, False), "late-systolic": (True, False),
          "holosystolic": (True, False), "diastolic": (False, True), "systolic and diastolic": (True, True)}


def band_view(profile: np.ndarray) -> np.ndarray:
    """(len(QUANTILES), len(BANDS_HZ), len(PER_BAND)) view of a profile."""
    return np.asarray(profile).reshape(len(QUANTILES), len(BANDS_HZ), len(PER_BAND))


def timing_features(profile: np.ndarray) -> np.ndarray:
    """What the timing model reads: the top band's systolic and diastolic levels, and the shape of systole
    (each stretch against the loudest; late against early), where a decrescendo and a plateau differ."""
    top = band_view(profile)[:, -1]
    sys = top[:, :SYS_BINS]
    shape = sys - sys.max(axis=1, keepdims=True)
    slope = sys[:, -2:].mean(axis=1) - sys[:, :2].mean(axis=1)
    return np.r_[top.ravel(), shape.ravel(), slope]


def whole_cycles(states: np.ndarray | None) -> np.ndarray:
    """beats.cycle_bounds in HOP_S steps (FRAME_RATE frames are 20 ms: four steps each)."""
    return cycle_bounds(states) * round(1.0 / (FRAME_RATE * HOP_S))


@lru_cache(maxsize=8)
def _band_filter(band: tuple, sample_rate: int) -> np.ndarray:
    return butter(4, band, "bandpass", sample_rate)


def _levels_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean power per HOP_S step, in dB."""
    hop = int(round(HOP_S * sample_rate))
    n = len(x) // hop
    power = np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)
    return 10 * np.log10(power + 1e-12)


def _bin_means(cumsum: np.ndarray, start: np.ndarray, stop: np.ndarray, bins: int) -> np.ndarray:
    """(cycles, bins): the mean of each of `bins` equal stretches of [start, stop), from a leading-zero cumsum."""
    edges = start[:, None] + ((stop - start)[:, None] * np.arange(bins + 1)[None, :]) // bins
    return (cumsum[edges[:, 1:]] - cumsum[edges[:, :-1]]) / (edges[:, 1:] - edges[:, :-1])


def cycle_profile(cleaned: np.ndarray, sample_rate: int, states: np.ndarray | None) -> np.ndarray | None:
    """PROFILE_NAMES: per band, each cycle's SYS_BINS stretches of systole, DIA_BINS of diastole and the
    peaks of S1 and S2, in dB above that cycle's quietest diastolic stretch in that band; QUANTILES over
    the cycles. None with fewer than MIN_CYCLES whole cycles. Vectorised over cycles: ~2 ms for 30 s."""
    c = whole_cycles(states)
    hop = int(round(HOP_S * sample_rate))
    c = c[(c[:, 4] <= len(cleaned) // hop) & (c[:, 2] - c[:, 1] >= SYS_BINS) & (c[:, 4] - c[:, 3] >= DIA_BINS)]
    if len(c) < MIN_CYCLES:
        return None
    parts = []
    for band in BANDS_HZ:
        lv = _levels_db(sosfilt(_band_filter(band, sample_rate), cleaned), sample_rate)
        cumsum = np.r_[0.0, np.cumsum(lv)]
        sys, dia = _bin_means(cumsum, c[:, 1], c[:, 2], SYS_BINS), _bin_means(cumsum, c[:, 3], c[:, 4], DIA_BINS)
        floor = dia.min(axis=1, keepdims=True)
        # Peaks of S1 over [S1, systole) and of S2 over [S2, diastole): the stretches are disjoint and in order.
        peaks = np.maximum.reduceat(lv, c[:, :4].ravel())[: 4 * len(c)].reshape(-1, 4)[:, [0, 2]]
        parts.append(np.hstack([sys - floor, dia - floor, peaks - floor]))
    return np.percentile(np.hstack(parts), QUANTILES, axis=0).ravel()


def irregularity(s1_times, step: float = RR_STEP, min_intervals: int = MIN_INTERVALS) -> float | None:
    """The share of successive beat intervals that differ by more than `step` of the median interval:
    high when no beat predicts the next (atrial fibrillation), low for a steady rhythm and for the smooth
    swing of breathing (each step small). None with fewer than `min_intervals` intervals. A share, so it
    is free of the rate and the level; the intervals come in 20 ms frames (beats.FRAME_RATE)."""
    rr = np.diff(np.asarray(s1_times, float))
    if len(rr) < min_intervals:
        return None
    return float(np.mean(np.abs(np.diff(rr / np.median(rr))) > step))


@dataclass
class Linear:
    """A fitted linear scorer on standardised features: class scores = ((x - mean) / scale) @ coef.T + intercept."""
    classes: list
    mean: list
    scale: list
    coef: list
    intercept: list

    def __call__(self, x: np.ndarray) -> str:
        z = (np.asarray(x, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        scores = np.asarray(self.coef) @ z + np.asarray(self.intercept)
        if len(self.classes) == 2 and scores.shape == (1,):
            return self.classes[int(scores[0] > 0)]
        return self.classes[int(np.argmax(scores))]

    @classmethod
    def from_sklearn(cls, pipeline) -> "Linear":
        scaler, lr = pipeline[0], pipeline[-1]
        return cls(list(map(str, lr.classes_)), scaler.mean_.tolist(), scaler.scale_.tolist(),
                   lr.coef_.tolist(), lr.intercept_.tolist())


@dataclass
class Description:
    murmur_timing: str | None = None  # one of TIMINGS, None when not abnormal or no murmur was located
    murmur_grade: str | None = None   # soft | loud, with a timing
    rhythm: str | None = None         # regular | irregular; None: not assessed, or too few beats to tell


@dataclass
class Describer:
    timing: Linear                     # systolic timing of a murmur (CirCor's categories present in training)
    grade: Linear                      # soft | loud
    systolic_min_db: float             # a murmur band's loudest systolic stretch at or above this: a systolic murmur
    diastolic_min_db: list             # per band: early diastole at or above this: a diastolic murmur
    rhythm_cut: float | None = None    # irregularity above this: irregular (None: not assessed)
    # The irregularity's own settings, saved with the cut they were fitted with (inference reads these).
    rhythm_step: float = RR_STEP
    rhythm_min_intervals: int = MIN_INTERVALS
    info: dict = field(default_factory=dict)

    def __call__(self, profile: np.ndarray | None, irregular: float | None, abnormal: bool,
                 diastolic_heard: bool = False) -> Description:
        """`diastolic_heard`: the diastolic listener (diastolic.py) heard a murmur in diastole, so the timing
        has a diastolic part whatever the thresholds below say."""
        out = Description()
        if self.rhythm_cut is not None and irregular is not None:    # said for every answer, normal included
            out.rhythm = RHYTHMS[int(irregular > self.rhythm_cut)]
        if not abnormal or profile is None:
            return out
        typical = band_view(profile)[0]
        systolic = typical[1:, :SYS_BINS].max() >= self.systolic_min_db
        # early diastole (the murmur of regurgitation starts at S2) or the whole of it (a rumble), any band
        diastolic = diastolic_heard or bool(np.any(typical[:, SYS_BINS:SYS_BINS + 2].max(axis=1)
                                                   >= np.asarray(self.diastolic_min_db)))
        if systolic:
            out.murmur_timing = self.timing(timing_features(profile))
        if diastolic:
            out.murmur_timing = "systolic and diastolic" if systolic else "diastolic"
        if out.murmur_timing is not None:
            out.murmur_grade = self.grade(profile)
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def load(cls, path) -> "Describer":
        d = json.loads(Path(path).read_text())
        return cls(Linear(**d.pop("timing")), Linear(**d.pop("grade")), **d)


def profile_of(prepared) -> np.ndarray | None:
    """`cycle_profile` of a prepared recording (frontend.Prepared)."""
    return cycle_profile(prepared.cleaned, prepared.sample_rate, prepared.beats.states)


def describe(prepared, describer: Describer | None, abnormal: bool, profile: np.ndarray | None = None,
             diastolic_heard: bool = False) -> Description:
    """The Description of a prepared recording (empty without a fitted describer). `profile`: its
    `profile_of`, when the caller has it already; else computed here for an abnormal answer only (a normal
    one costs nothing here, ~2 ms otherwise)."""
    if describer is None:
        return Description()
    if profile is None and abnormal:
        profile = profile_of(prepared)
    irregular = irregularity(prepared.beats.s1_times, describer.rhythm_step, describer.rhythm_min_intervals)
    return describer(profile, irregular, abnormal, diastolic_heard)
