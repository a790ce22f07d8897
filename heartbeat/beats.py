"""Heart rate and S1/S2 positions: a small frame classifier and a Viterbi pass over the heart cycle.

Every 20 ms frame of the band-passed recording is described by its energy in five bands and its Shannon
energy, standardised within the recording (so a device's gain and tilt do not matter), together with the
frames 100 ms either side. A small network, fitted on CirCor's annotated S1 / systole / S2 / diastole
(scripts/fit_segmenter.py; weights in the model bundle's segmenter.json), gives every frame the probability
of each state. The heart period comes from the autocorrelation of those probabilities; a Viterbi pass over
the phases of one cycle (S1 and S2 of fixed length, systole and diastole allowed to stretch or shrink from
beat to beat) then finds the sequence that best explains them: Springer's duration-dependent HMM idea, in
a form that costs a fraction of a millisecond (every candidate period in one pass, compiled: _viterbi.c; the
same pass in numpy where no C compiler built it). The heart rate is the mean S1-to-S1 interval of that sequence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dsp import butter, find_peaks, irfft, rfft, sosfiltfilt
from .preprocess import EDGE_S

try:        # built by pip where a C compiler is found (pyproject.toml: optional)
    from . import _viterbi
except ImportError:
    _viterbi = None

FRAME_RATE = 50                     # Hz: 20 ms frames; S1 and S2 last 80-150 ms
MIN_BPM, MAX_BPM = 30.0, 200.0
BANDS_HZ = ((25, 50), (50, 100), (100, 150), (150, 250), (250, 400))
CONTEXT = 5                         # frames either side fed to the classifier (+-100 ms)
STATES = ("S1", "systole", "S2", "diastole")
# Per frame of systole or diastole: the chance the cycle pauses a frame or skips one (beat-to-beat
# variation of the rate lives there); S1 and S2 always advance, their length is fixed.
FLEX_STAY, FLEX_SKIP = 0.1, 0.1
# Frame energies are floored this far below the recording's loudest frame: stretches of near silence (a
# muted device, 16-bit quantisation, a resampler's residue) sit 90-140 dB down, where the log energy tells
# which file chain made them, not what the heart did; and a log energy column is divided by no less than
# MIN_SPREAD_DB, so a band that hardly moves is not blown up to unit variance.
FLOOR_DB, MIN_SPREAD_DB = 60.0, 1.0
EDGE_FRAMES = round(EDGE_S * FRAME_RATE)    # frames at each end that clean() faded
VITERBI_BLOCK = 256                  # frames whose choices are taken together (_forward, the numpy pass)
COMPILED = True                      # use _viterbi.c when it was built (tests set False to compare the two)


@dataclass
class Beats:
    heart_rate_bpm: float | None          # None when no steady rhythm was found
    periodicity: float                    # 0..1: height of the envelope's autocorrelation peak at the beat period
    cycle_fit: float = 0.0                # how well S1-systole-S2-diastole cycles explain the frames (per frame)
    contrast_db: float = 0.0              # how far S1/S2 stand above the sound of diastole (median, dB)
    s1_times: list[float] = field(default_factory=list)
    s2_times: list[float] = field(default_factory=list)
    states: np.ndarray | None = field(default=None, repr=False)   # per FRAME_RATE frame: index into STATES
    state_probs: np.ndarray | None = field(default=None, repr=False)   # (frames, 4): the frame classifier's


# ---------------------------------------------------------------- frame features ----

def frames_of(clean_audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n, 2*hop) overlapping frames, frame i centred at (i + 0.5) / FRAME_RATE seconds."""
    hop = sample_rate // FRAME_RATE
    n = len(clean_audio) // hop
    x = np.pad(clean_audio, (hop // 2, 2 * hop))
    return np.lib.stride_tricks.sliding_window_view(x, 2 * hop)[::hop][:n]


_SMOOTH = butter(2, 8.0, "lowpass", FRAME_RATE)   # designed once, not per answer


def envelope(clean_audio: np.ndarray, sample_rate: int, kept: np.ndarray | None = None) -> np.ndarray:
    """Shannon-energy envelope at FRAME_RATE, smoothed (8 Hz), zero-mean and unit-variance: high on S1
    and S2, low through most murmurs and noise. `kept`: a boolean per frame; only those set the scale."""
    block = sample_rate // FRAME_RATE
    n = len(clean_audio) // block
    if kept is None:
        peak, kept = np.max(np.abs(clean_audio)), slice(None)
    else:
        peak = np.max(np.abs(clean_audio[: n * block].reshape(n, block)[kept]))
    x = clean_audio / (peak + 1e-12)
    energy = -(x ** 2) * np.log(x ** 2 + 1e-12)
    blocks = energy[: n * block].reshape(-1, block).mean(axis=1)
    if len(blocks) < 16:
        return np.zeros(len(blocks), np.float32)
    env = sosfiltfilt(_SMOOTH, blocks)
    return ((env - env[kept].mean()) / (env[kept].std() + 1e-12)).astype(np.float32)


def frame_features(clean_audio: np.ndarray, sample_rate: int, kept: np.ndarray | None = None,
                   env: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, 7): log energy in BANDS_HZ, total log energy (each floored and standardised over the
    recording, or over the `kept` frames only: a boolean per frame, some true), and the Shannon envelope
    (`env`: envelope(clean_audio, sample_rate, kept), where the caller made it already)."""
    frames = frames_of(clean_audio, sample_rate)
    power = np.abs(rfft(frames * np.hanning(frames.shape[1]).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / sample_rate)
    bands = [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in BANDS_HZ]
    env = envelope(clean_audio, sample_rate, kept) if env is None else env
    env = np.pad(env, (0, max(0, len(frames) - len(env))))[: len(frames)]
    db = 10 * np.log10(np.column_stack(bands + [power.sum(axis=1)]) + 1e-12)
    scale = np.ones(len(db), bool) if kept is None else kept.copy()
    f = np.column_stack([np.maximum(db, db[scale].max() - FLOOR_DB), env])
    if EDGE_FRAMES and len(f) > 4 * EDGE_FRAMES:      # the faded ends set no scale
        scale[:EDGE_FRAMES] = scale[-EDGE_FRAMES:] = False
    inner = f[scale]
    least = np.r_[np.full(db.shape[1], MIN_SPREAD_DB), 1e-6]
    return ((f - np.median(inner, axis=0)) / np.maximum(inner.std(axis=0), least)).astype(np.float32)


def with_context(f: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """Each frame's features followed by those of the `context` frames before and after it."""
    padded = np.pad(f, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[i:i + len(f)] for i in range(2 * context + 1)], axis=1)


# ---------------------------------------------------------------- the segmenter ----

@dataclass
class Segmenter:
    """Frame classifier (a one-hidden-layer network, stored as plain JSON) and the cycle's timing."""
    layers: list                # [[W, b], ...] as nested lists; ReLU between, softmax at the end
    prior: list                 # share of each state among the frames it was fitted on
    s1_s: float = 0.12          # S1 and S2 lengths, seconds
    s2_s: float = 0.10
    systole: tuple = (0.21, 0.0)   # systole (end of S1 to start of S2) = a + b * period, seconds

    def state_probs(self, clean_audio: np.ndarray, sample_rate: int, kept: np.ndarray | None = None,
                    env: np.ndarray | None = None) -> np.ndarray:
        """(n_frames, 4) probability of S1, systole, S2, diastole for every frame; `kept` (a boolean per
        frame): only those frames set the features' scale; `env`: as frame_features."""
        h = with_context(frame_features(clean_audio, sample_rate, kept, env))
        for i, (w, b) in enumerate(self._arrays):
            h = h @ w + b
            if i < len(self._arrays) - 1:
                np.maximum(h, 0, out=h)
        h = np.exp(h - h.max(axis=1, keepdims=True))
        return h / h.sum(axis=1, keepdims=True)

    @property
    def _arrays(self):
        if not hasattr(self, "_cache"):
            self._cache = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in self.layers]
        return self._cache

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({k: v for k, v in vars(self).items() if not k.startswith("_")}))

    @classmethod
    def load(cls, path: str | Path) -> "Segmenter":
        return cls(**json.loads(Path(path).read_text()))


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lag 0 = 1). Biased on purpose: long lags shrink, so the S1->S1
    period wins over its multiples."""
    n = len(x)
    spectrum = rfft(x - x.mean(), 2 * n)
    ac = irfft(spectrum * np.conj(spectrum), 2 * n)[:n]
    return ac / (ac[0] + 1e-12)


def _period(ac: np.ndarray) -> tuple[float, float] | None:
    """(period in frames, with sub-frame interpolation; autocorrelation there), between MIN and MAX_BPM."""
    lo, hi = int(FRAME_RATE * 60 / MAX_BPM), min(int(FRAME_RATE * 60 / MIN_BPM), len(ac) // 2)
    if hi <= lo + 1:
        return None
    peaks = find_peaks(ac[lo:hi + 1])
    if len(peaks) == 0:
        return None
    k = lo + peaks[np.argmax(ac[lo + peaks])]
    a, b, c = ac[k - 1], ac[k], ac[k + 1] if k + 1 < len(ac) else ac[k]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return k + float(np.clip(shift, -0.5, 0.5)), float(max(b, 0.0))


def cycle(period: float, seg: Segmenter) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The phases of one heart cycle of `period` frames: each phase's state (0..3) and the log cost of
    leaving it by staying, by one phase and by skipping one (S1 and S2 always advance by one)."""
    period_s = period / FRAME_RATE
    d1, d2 = max(2, round(seg.s1_s * FRAME_RATE)), max(2, round(seg.s2_s * FRAME_RATE))
    k = max(int(round(period)), d1 + d2 + 4)
    dsys = int(np.clip(round((seg.systole[0] + seg.systole[1] * period_s) * FRAME_RATE), 2, k - d1 - d2 - 2))
    phase = np.repeat([0, 1, 2, 3], [d1, dsys, d2, k - d1 - dsys - d2])
    flex = (phase == 1) | (phase == 3)
    neg = -1e9
    return (phase, np.where(flex, np.log(FLEX_STAY), neg), np.where(flex, np.log(1 - FLEX_STAY - FLEX_SKIP), 0.0),
            np.where(flex, np.log(FLEX_SKIP), neg))


def best_cycle(log_p: np.ndarray, periods, seg: Segmenter) -> tuple[np.ndarray, float]:
    """Viterbi over the phases of one heart cycle, for each candidate period at once: the most likely state
    (0..3) of every frame under the period whose best path explains the frames best, and that path's
    log-likelihood (the first such period in `periods` order on a tie).

    Every period's cycle is a ring of phases; phase j is reached from j (stay), j-1 (one) or j-2 (skip), at the
    cost set by the source phase. All the rings sit side by side in one vector, so every period is run in one
    pass: compiled (_viterbi.c) or, without it, a handful of numpy operations a frame (_forward)."""
    rings = {}
    for p in periods:     # periods a fraction of a frame apart make the same ring: it is run once (the first wins ties)
        ring = cycle(p, seg)
        rings.setdefault(ring[0].tobytes(), ring)
    rings = list(rings.values())
    sizes = np.array([len(r[0]) for r in rings])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    phase = np.concatenate([r[0] for r in rings])
    local = np.arange(len(phase)) - np.repeat(starts, sizes)
    ring_start, ring_size = np.repeat(starts, sizes), np.repeat(sizes, sizes)
    sources = np.stack([ring_start + (local - step) % ring_size for step in range(3)])    # (3, phases)
    leave = np.stack([np.concatenate([r[1 + step] for r in rings])[sources[step]] for step in range(3)])
    emit = np.ascontiguousarray(log_p[:, phase], dtype=np.float64)
    n = len(emit)
    back = np.zeros((n, len(phase)), np.int8)    # which way into each phase was best, per frame
    score = emit[0].copy()
    sources, leave = np.ascontiguousarray(sources, dtype=np.intp), np.ascontiguousarray(leave, dtype=np.float64)
    compiled = _viterbi is not None and COMPILED
    (_viterbi.forward if compiled else _forward)(emit, sources, leave, back, score)
    totals = np.maximum.reduceat(score, starts)
    r = int(np.argmax(totals))
    path = np.empty(n, np.intp)
    path[-1] = starts[r] + int(np.argmax(score[starts[r]:starts[r] + sizes[r]]))
    (_viterbi.backtrack if compiled else _backtrack)(back, sources, path)
    return phase[path], float(totals[r])


def _forward(emit: np.ndarray, sources: np.ndarray, leave: np.ndarray, back: np.ndarray, score: np.ndarray) -> None:
    """best_cycle's forward pass in numpy, where _viterbi.c was not built: fills `back` (the first best of
    stay / one / skip into every phase, per frame) and leaves in `score` the best path's log-likelihood ending
    in each phase. Each frame's three ways into every phase are kept for a block of frames and the choices taken
    for the whole block at once: one numpy call per block, not per frame; four numpy calls a frame remain
    (~5 ms for 30 s; best_cycle whole ~0.4 ms compiled)."""
    n = len(emit)
    block = np.empty((VITERBI_BLOCK, 3, emit.shape[1]))
    best_of = np.maximum.reduce
    for t in range(1, n):                  # the same additions as a scalar loop, and as _viterbi.c
        options = block[t % VITERBI_BLOCK]
        np.add(score[sources], leave, out=options)
        np.add(best_of(options, 0), emit[t], out=score)
        if t % VITERBI_BLOCK == VITERBI_BLOCK - 1 or t == n - 1:
            first = t - t % VITERBI_BLOCK
            back[first:t + 1] = np.argmax(block[: t - first + 1], axis=1)


def _backtrack(back: np.ndarray, sources: np.ndarray, path: np.ndarray) -> None:
    """The best path back from its last phase `path[-1]`, in Python (where _viterbi.c was not built)."""
    for t in range(len(path) - 1, 0, -1):
        path[t - 1] = sources[back[t, path[t]], path[t]]


def _centres(states: np.ndarray, which: int) -> np.ndarray:
    """Centre times (s) of each run of `which` in a state sequence."""
    on = np.r_[False, states == which, False].astype(np.int8)
    starts, ends = np.flatnonzero(np.diff(on) == 1), np.flatnonzero(np.diff(on) == -1)
    return (starts + ends) / 2 / FRAME_RATE


def find_beats(clean_audio: np.ndarray, sample_rate: int, seg: Segmenter | None = None) -> Beats:
    """Heart rate and S1/S2 times of a cleaned recording; periodicity alone when `seg` is None."""
    env = envelope(clean_audio, sample_rate)
    found = _period(autocorrelation(env))
    periodicity = round(found[1], 3) if found else 0.0
    if seg is None:
        return Beats(None, periodicity)
    probs = seg.state_probs(clean_audio, sample_rate, env=env)
    if found is None:        # no rhythm: no cycle, but the frames' probabilities still describe the sound
        return Beats(None, periodicity, state_probs=probs.astype(np.float32))
    log_p = np.log(probs + 1e-6) - np.log(np.asarray(seg.prior) + 1e-6)     # scaled likelihoods
    # The frames whose sound or context reaches into the faded ends are no evidence either way: what is
    # there differs between copies of one recording (preprocess.fade_edges).
    ends = EDGE_FRAMES + CONTEXT if len(log_p) > 4 * (EDGE_FRAMES + CONTEXT) else 0
    if ends:
        log_p[:ends] = log_p[-ends:] = 0.0
    # Candidate periods: the envelope's, the S1 probability's (sharper: S2 and murmurs do not count) and
    # half of each where the S1 probability repeats there too (a weak S1 every other beat doubles the
    # autocorrelation's period). The cycle that explains the frames best wins.
    ac_s1 = autocorrelation(probs[:, 0])
    from_s1 = _period(ac_s1)
    candidates = {round(p, 2) for p in (found[0], from_s1[0] if from_s1 else found[0])}
    peaks = find_peaks(ac_s1, height=0.05)
    candidates |= {round(p / 2, 2) for p in candidates if p / 2 >= FRAME_RATE * 60 / MAX_BPM
                   and np.any(np.abs(peaks - p / 2) <= 0.15 * p / 2)}    # only where a beat there is heard
    states, best = best_cycle(log_p, list(candidates), seg)
    s1, s2 = _centres(states, 0), _centres(states, 2)
    # Diastole is quiet in a clean recording (systolic murmurs do not reach it); noise fills it.
    energy = 10 * np.log10(np.mean(frames_of(clean_audio, sample_rate) ** 2, axis=1) + 1e-12)[: len(states)]
    energy, inner = np.maximum(energy, energy.max() - FLOOR_DB)[ends:len(states) - ends], states[ends:len(states) - ends]
    sounds, diastole = energy[(inner == 0) | (inner == 2)], energy[inner == 3]
    contrast = float(np.median(sounds) - np.median(diastole)) if len(sounds) and len(diastole) else 0.0
    return Beats(rate(s1), periodicity, round(float(best) / (len(states) - 2 * ends), 3), round(contrast, 2),
                 [round(float(t), 2) for t in s1], [round(float(t), 2) for t in s2], states.astype(np.int8),
                 probs.astype(np.float32))


def cycle_bounds(states: np.ndarray | None) -> np.ndarray:
    """(n, 5) frame indices of each whole cycle S1 -> systole -> S2 -> diastole -> S1 in a state sequence: S1
    start, systole start, S2 start, diastole start, next S1 start. The first run is skipped: the recording's
    start may have cut it."""
    if states is None or len(states) == 0:
        return np.zeros((0, 5), int)
    starts = np.r_[0, np.flatnonzero(np.diff(states)) + 1]
    if len(starts) < 6:
        return np.zeros((0, 5), int)
    runs = np.lib.stride_tricks.sliding_window_view(starts, 5)[1:]     # every five runs from the second on
    whole = (np.lib.stride_tricks.sliding_window_view(states[starts], 5)[1:] == (0, 1, 2, 3, 0)).all(axis=1)
    return runs[whole].astype(int)


def rate(s1_times) -> float | None:
    """Beats per minute from S1 times: the mean S1-to-S1 interval (sub-frame precise, and right for
    irregular rhythms too), leaving out gaps over half or double the median (a stretch of noise)."""
    gaps = np.diff(s1_times)
    if len(gaps) < 2:
        return None
    kept = gaps[(gaps > 0.5 * np.median(gaps)) & (gaps < 2 * np.median(gaps))]
    return round(float(60 / kept.mean()), 1)
