"""The quality gate asks two questions: is a heart sound present, and how clean is it.

No heart sound (or a silent or overdriven recording): the answer is "no heartbeat", with the plain
reason. A heart sound that is present but noisy is judged all the same, with a caution: refusing it
would leave the patient with no answer at all.

Every measurement is made on the recording at the model's rate (2 kHz), so what lies above 1 kHz (a
phone's hiss, a 44.1 kHz file's treble) cannot change the answer: the same heart sound gets the same
answer whatever the file's sample rate. Two hard rules give the plainest reasons (no sound in the heart
band, clipping); then boosted trees, fitted by scripts/quality_gate.py on heart recordings of every
database against many kinds of non-heart audio, give the presence score. When presence fails, the
measurement most unlike heart recordings names the reason. A third rule, after the trees, refuses a sound
whose level hardly rises and falls (a fan, a ventilation whoosh): heart sounds swing the level with every
beat, and trees asked about a kind of steady sound they never heard may find a heart in it. "Noisy" is one
interpretable measurement: the heart sounds stand less than NOISY_BELOW_DB above the sound between beats.
The trees and the cuts live in the model bundle (quality.json), as plain JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .beats import EDGE_FRAMES, frames_of
from .dsp import analytic_envelope, butter, median_filter, next_fast_len, rfft, sosfiltfilt
from .frontend import Prepared

SILENT_DBFS = -70.0        # heart-band (25-400 Hz) level below which nothing audible was recorded
CLIPPED_FRACTION = 0.05    # more than 5% of samples at full scale: the input was overdriven
SPECTRUM_HZ = (20.0, 800.0)   # what every input at 2 kHz holds, clear of the resampler's edge

# The measurements the trees use, in order. None depends on the recording's level (which only the
# silence rule reads): the same heart sound, louder or quieter, gets the same answer.
MEASUREMENTS = ("periodicity", "cycle_fit", "contrast_db", "heart_band", "flatness", "tonality", "peakiness",
                "impulsiveness", "voicing", "low_sounds_db", "weaker_sound_db")
# How presence may move with each measurement (+1 only up, -1 only down, 0 free): a heart sound is
# periodic, fits the S1/S2 cycle and lives low in the spectrum; noise is flat, hum and tones are lines.
# Constraints keep the trees from carving pockets of "heart" where no heart sound could be, which is what
# generalises to kinds of audio never heard in fitting.
MONOTONIC = {"periodicity": 1, "cycle_fit": 1, "heart_band": 1, "flatness": -1, "peakiness": -1, "voicing": -1,
             "low_sounds_db": 1, "weaker_sound_db": 1}
# What a measurement means for a clinician when it is what failed the recording, and which way it must lie
# from real heart recordings to mean that (+1: above them, -1: below). Tonality feeds the trees but makes a
# poor explanation, so it never names the reason.
CAUSE_SIDE = {"periodicity": -1, "cycle_fit": -1, "contrast_db": -1, "heart_band": -1, "flatness": 1, "peakiness": 1,
              "impulsiveness": -1, "voicing": 1}
SPECIFIC = ("flatness", "peakiness", "voicing", "heart_band")     # they name what to change
EXPLANATIONS = {
    "periodicity": "no steady heart rhythm was found",
    "cycle_fit": "no heart sounds (S1 and S2 in a steady cycle) were found",
    "contrast_db": "no heart sounds stand out from the background noise",
    "heart_band": "most of the sound is above the heart-sound range (speech, music or other noise)",
    "flatness": "the recording is mostly noise",
    "peakiness": "the sound is a steady hum or tone, not heart sounds",
    "impulsiveness": "no distinct heart sounds (S1/S2) were found, only a steady sound",
    # Voicing is periodicity at a voice's pitch (frame_voicing): a voice, a melody and a steady or sweeping tone
    # all have it, so the reason names all three (a pure tone was once called "voiced, like speech").
    "voicing": "the sound is pitched (a voice, music or a tone), not heart sounds",
}
REASONS = {"silent": "the recording is silent in the heart-sound range: place the stethoscope or microphone "
                     "firmly on the chest",
           "clipped": "the recording is overdriven (clipping): lower the input volume and record again",
           "steady": "only a steady sound (noise or a hum) was heard: no heart sounds rise and fall with the beats"}
# The cause each reason names, in the six a clinician can act on (and clipping): what the gate's report and
# tests hold each non-heart kind's reasons to.
CAUSES = {EXPLANATIONS["periodicity"]: "no heart sounds", EXPLANATIONS["cycle_fit"]: "no heart sounds",
          EXPLANATIONS["impulsiveness"]: "no heart sounds", EXPLANATIONS["contrast_db"]: "noise",
          EXPLANATIONS["flatness"]: "noise", EXPLANATIONS["heart_band"]: "sound above the heart band",
          EXPLANATIONS["voicing"]: "a voice, music or a tone", EXPLANATIONS["peakiness"]: "tone or hum",
          REASONS["silent"]: "silence", REASONS["clipped"]: "clipping", REASONS["steady"]: "noise"}
NOISY_CAUTION = "noisy recording: judge with caution, record again if you can"
# Noisy: S1 and S2 stand less than 6 dB (twice the amplitude) above the sound of diastole. A stated cut,
# not a fitted one: the databases' own noise labels are too weak to fit it on (reports/quality_gate.md).
NOISY_BELOW_DB = 6.0
# The frames' bands for low_sounds_db (Hz): S1 and S2 carry most of their power below 100 Hz, so in a heart
# recording one of the first two is the loudest; rubbing, speech, clicks and hiss are loudest above.
SOUND_BANDS_HZ = ((25, 50), (50, 100), (100, 200), (200, 400), (400, 700))
LOW_BANDS = 2
NO_SOUNDS_DB = -30.0      # low_sounds_db where the segmenter found no S1 or S2 frame: unlike any heart recording
# Below this the frames' levels are read without: a slow drift or a DC step is a ramp inside a 40 ms frame, which
# leaks into its lowest bands and fills the pauses between beats (a 0.3 Hz drift moved a heart's levels by 10 dB).
DRIFT_HZ = 20.0
STEADY_QUANTILE = 0.5     # percent of heart recordings (copies included) whose level swings less than the steady rule's cut


@dataclass
class Quality:
    usable: bool
    score: float            # 0..1: how sure the gate is that a heart sound is present
    level: str              # "good", "noisy" or "unusable"
    reason: str | None      # why unusable, in plain words
    measurements: dict


def _psd(x: np.ndarray, rate: int, segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectrum with Hann windows, no overlap, vectorised (scipy's welch loops per segment)."""
    n = max(1, len(x) // segment)
    segments = np.resize(x, n * segment).reshape(n, segment) if len(x) >= segment else x[None, :]
    segments = segments - segments.mean(axis=1, keepdims=True)
    window = np.hanning(segments.shape[1]).astype(np.float32)
    power = np.abs(rfft(segments.astype(np.float32) * window, axis=1)) ** 2
    return np.fft.rfftfreq(segments.shape[1], 1 / rate), power.mean(axis=0, dtype=np.float64)


@lru_cache(maxsize=4)
def _highpass(sample_rate: int, hz: float = 90.0) -> np.ndarray:
    return butter(4, hz, "highpass", sample_rate)


VOICING_FRAME_S = 0.06     # a frame of the voicing measure: 6-18 periods of a 100-300 Hz voice


def frame_voicing(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 60 ms frame: the highest normalised autocorrelation at a pitch of 100-300 Hz (lags of 3.3-10 ms),
    and the frame's energy. Speech and music repeat at their pitch within a frame; heart sounds are
    transients whose low ring sits at longer lags (the audio is high-passed at 90 Hz first)."""
    n = int(VOICING_FRAME_S * sample_rate)
    audio = sosfiltfilt(_highpass(sample_rate), audio)    # above the heart sounds' low ring
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.einsum("ij,ij->i", frames, frames)
    # The autocorrelation at a voice's lags only (15 at 2 kHz), summed directly: a third of the transforms' time.
    lags = range(int(sample_rate / 300), int(sample_rate / 100) + 1)
    ac = np.stack([np.einsum("ij,ij->i", frames[:, :n - k], frames[:, k:]) for k in lags], axis=1)
    return ac.max(axis=1) / (energy + 1e-12), energy


def voicing_of(prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """frame_voicing of a prepared recording, made once: the gate reads its louder half, the artifact windows
    every frame (artifacts.window_measurements)."""
    if prepared.voicing_frames is None:
        prepared.voicing_frames = frame_voicing(prepared.audio, prepared.sample_rate)
    return prepared.voicing_frames


def voicing(prepared: Prepared) -> float:
    """How voiced the louder half of the recording is: the median of frame_voicing over its louder frames."""
    voiced, energy = voicing_of(prepared)
    return float(np.median(voiced[energy >= np.median(energy)])) if len(voiced) else 0.0


def measure(prepared: Prepared) -> dict:
    """The gate's measurements of a recording the front end prepared: its audio at the model rate, its
    band-passed, unit-RMS version and its beat analysis."""
    audio, cleaned, sample_rate, beats = prepared.audio, prepared.cleaned, prepared.sample_rate, prepared.beats
    centred = audio - audio.mean()
    freqs, psd = _psd(centred, sample_rate, 512)
    band = (freqs >= SPECTRUM_HZ[0]) & (freqs <= SPECTRUM_HZ[1])
    p = psd[band] + 1e-20
    # Heart-band level from the spectrum: drift, DC offset and anything above 400 Hz do not count.
    heart_share = psd[(freqs >= 25) & (freqs <= 400)].sum() / (psd.sum() + 1e-20)
    level_db = 10 * np.log10(np.mean(centred.astype(np.float64) ** 2) * heart_share + 1e-20)
    # Peakiness: share of the power in spectral lines (hum, tones): 1 Hz bins ten times above the local
    # floor. Relative to the floor, so a short recording's ragged spectrum does not count as lines.
    fine_f, fine = _psd(centred, sample_rate, 2048)
    fine = fine[(fine_f >= SPECTRUM_HZ[0]) & (fine_f <= SPECTRUM_HZ[1])] + 1e-20
    lines = fine[fine > 10 * median_filter(fine, 21)].sum()
    # Impulsiveness: heart sounds are short loud events; a high envelope crest factor says so.
    env = analytic_envelope(cleaned, next_fast_len(len(cleaned)))[: len(cleaned)]
    frames = env[: len(env) // 40 * 40].reshape(-1, 40).mean(axis=1)   # 20 ms frames at 2 kHz
    impulsiveness = (np.percentile(frames, 95) + 1e-9) / (np.median(frames) + 1e-9) if len(frames) else 1.0
    by_frame = sound_levels(sosfiltfilt(_highpass(sample_rate, DRIFT_HZ), centred), sample_rate, beats.states)
    return {"level_db": float(level_db), "clipped": float(np.mean(np.abs(audio) >= 0.98)),
            "periodicity": beats.periodicity, "cycle_fit": beats.cycle_fit, "contrast_db": beats.contrast_db,
            "heart_band": float(p[freqs[band] <= 200].sum() / p.sum()),
            "flatness": float(np.exp(np.mean(np.log(p))) / np.mean(p)), "tonality": float(np.max(p) / p.sum()),
            "peakiness": float(lines / fine.sum()), "impulsiveness": float(np.log(impulsiveness)),
            "voicing": voicing(prepared)} | by_frame


def sound_levels(audio: np.ndarray, sample_rate: int, states: np.ndarray | None) -> dict:
    """Per 20 ms frame (the segmenter's frames), the level in SOUND_BANDS_HZ and in the heart band, read three ways:
    low_sounds_db    over the frames the segmenter calls S1 or S2, the median of how far the louder of the two
                     lowest bands lies below the loudest band (0: the heart sounds are low, as S1 and S2 are)
    weaker_sound_db  the weaker of S1 and S2 (median heart-band level of its frames) above systole and diastole's:
                     a heart makes two sounds a cycle; footsteps, knocks and a clock's clicks make one, and the
                     segmenter's other "sound" is as quiet as the pause (0 where it found none)
    dynamics_db      how far the heart band's loud frames (95th percentile) lie above its quiet ones (20th): a
                     heart sound swings its level with every beat, a fan or an engine hardly does.
    `audio`: at the model's rate, drift removed (DRIFT_HZ). The faded ends (beats.EDGE_FRAMES) count in none."""
    frames = frames_of(np.asarray(audio, np.float32), sample_rate)    # single precision: 5x faster transforms
    spectrum = rfft(frames * np.hanning(frames.shape[1]).astype(np.float32), axis=1)
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / sample_rate)
    # Every band's power in one product: a 0/1 column per band (SOUND_BANDS_HZ, then the heart band).
    member = np.column_stack([(freqs >= lo) & (freqs < hi) for lo, hi in SOUND_BANDS_HZ + ((25, 400),)])
    levels = 10 * np.log10((spectrum.real ** 2 + spectrum.imag ** 2) @ member.astype(np.float32) + 1e-12)
    bands, heart = levels[:, :-1], levels[:, -1]
    inner = np.zeros(len(heart), bool)
    inner[EDGE_FRAMES:len(heart) - EDGE_FRAMES] = True
    if not inner.any():
        return {"low_sounds_db": NO_SOUNDS_DB, "weaker_sound_db": 0.0, "dynamics_db": 0.0}
    level = np.maximum(heart, heart.max() - 60)            # 60 dB below the loudest frame counts as silence
    dynamics = float(np.percentile(level[inner], 95) - np.percentile(level[inner], 20))
    low_sounds, weaker = NO_SOUNDS_DB, 0.0
    if states is not None:
        n = min(len(states), len(bands))
        state = np.where(inner[:n], states[:n], -1)         # -1: a faded end, in no state
        sounds = np.isin(state, (0, 2))
        if sounds.any():
            b = bands[:n][sounds]
            low_sounds = float(np.median(b[:, :LOW_BANDS].max(axis=1) - b.max(axis=1)))
        pauses = level[:n][np.isin(state, (1, 3))]
        if len(pauses) and (state == 0).any() and (state == 2).any():
            weaker = float(min(np.median(level[:n][state == k]) for k in (0, 2)) - np.median(pauses))
    return {"low_sounds_db": low_sounds, "weaker_sound_db": weaker, "dynamics_db": dynamics}


def balanced(weight: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`weight` rescaled so that the two answers weigh alike in fitting (each sums to 1)."""
    w = np.asarray(weight, float).copy()
    for label in (True, False):
        w[labels == label] /= w[labels == label].sum()
    return w


@dataclass
class Trees:
    """Gradient-boosted trees stored as plain JSON (no pickles: they break across scikit-learn versions)."""
    nodes: list            # per tree: nodes as [feature, threshold, left, right, value, is_leaf]
    baseline: float

    def prob(self, x) -> float:
        return float(self.probs(np.asarray(x, np.float64)[None, :])[0])

    def probs(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for the rows of X, every tree and row walked at once (one numpy step per level:
        the artifact detector scores all of a recording's windows in well under a millisecond)."""
        feature, threshold, left, right, value, leaf = self._arrays
        X = np.asarray(X, np.float64)
        trees = np.arange(feature.shape[0])[None, :]
        at = np.zeros((len(X), feature.shape[0]), int)          # each row's node in each tree
        while not leaf[trees, at].all():
            go_left = X[np.arange(len(X))[:, None], feature[trees, at]] <= threshold[trees, at]
            at = np.where(leaf[trees, at], at, np.where(go_left, left[trees, at], right[trees, at]))
        return 1 / (1 + np.exp(-(self.baseline + value[trees, at].sum(axis=1))))

    @property
    def _arrays(self):
        """The nodes as padded (trees, nodes) arrays, made once."""
        if not hasattr(self, "_cache"):
            width = max(len(t) for t in self.nodes)
            table = np.zeros((len(self.nodes), width, 6))
            table[:, :, 5] = 1                                  # padding: leaves of value 0, never reached
            for i, tree in enumerate(self.nodes):
                table[i, : len(tree)] = tree
            self._cache = (table[..., 0].astype(int), table[..., 1], table[..., 2].astype(int),
                           table[..., 3].astype(int), table[..., 4], table[..., 5].astype(bool))
        return self._cache

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, weight=None, seed: int = 0, monotonic=None) -> "Trees":
        from sklearn.ensemble import HistGradientBoostingClassifier
        model = HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.1, random_state=seed,
                                               monotonic_cst=monotonic)
        model.fit(X, np.asarray(y, bool), sample_weight=weight)
        nodes = [[[int(n["feature_idx"]), float(n["num_threshold"]), int(n["left"]), int(n["right"]),
                   float(n["value"]), bool(n["is_leaf"])] for n in predictors[0].nodes]
                 for predictors in model._predictors]
        return cls(nodes, float(np.ravel(model._baseline_prediction)[0]))


@dataclass
class QualityGate:
    """`present`: is a heart sound there. `reference` holds each measurement's mean over heart
    recordings and over non-heart audio, to name the reason for a refusal."""
    present: Trees
    reference: dict
    threshold: float = 0.5          # presence score at or above this: a heart sound is present
    noisy_below_db: float = NOISY_BELOW_DB   # beat contrast below this: "noisy", judged with a caution
    steady_below_db: float = float("-inf")   # level swing (dynamics_db) below this: a steady sound, refused

    @staticmethod
    def rule(m: dict) -> str | None:
        """The hard rules' reason, or None when neither applies."""
        if m["level_db"] < SILENT_DBFS:
            return REASONS["silent"]
        if m["clipped"] > CLIPPED_FRACTION:
            return REASONS["clipped"]
        return None

    @staticmethod
    def vector(m: dict) -> list[float]:
        return [m[k] for k in MEASUREMENTS]

    def judge(self, m: dict) -> Quality:
        if reason := self.rule(m):
            return Quality(False, 0.0, "unusable", reason, m)
        x = self.vector(m)
        score = self.present.prob(x)
        if score < self.threshold:
            return Quality(False, score, "unusable", EXPLANATIONS[self.cause(m)], m)
        if m["dynamics_db"] < self.steady_below_db:      # a hard rule, like silence: no presence score
            return Quality(False, 0.0, "unusable", REASONS["steady"], m)
        return Quality(True, score, "noisy" if m["contrast_db"] < self.noisy_below_db else "good", None, m)

    def cause(self, m: dict) -> str:
        """The measurement that lies furthest from real heart recordings on its cause's side, in units of how
        far the 1% most extreme heart recordings lie from their median on that side: a measurement where
        heart and non-heart audio overlap cannot name the reason on a small difference (voicing once named
        white noise "voiced, like speech", from a value below every heart recording's)."""
        def beyond(k):
            r, side = self.reference[k], CAUSE_SIDE[k]
            edge = r["heart_p99"] if side > 0 else r["heart_p01"]
            return side * (m[k] - r["heart_p50"]) / max(abs(edge - r["heart_p50"]), 1e-9)
        score = {k: beyond(k) for k in self.reference if k in CAUSE_SIDE}
        # A cause a clinician can remove (noise, a hum, speech) comes before "no heart sounds" whenever it
        # lies beyond every heart recording but the most extreme 1%: it says what to change.
        specific = {k: v for k, v in score.items() if k in SPECIFIC and v >= 1}
        return max(specific or score, key=(specific or score).get)

    def to_dict(self) -> dict:
        return {"measurements": list(MEASUREMENTS), "present": asdict(self.present), "reference": self.reference,
                "threshold": self.threshold, "noisy_below_db": self.noisy_below_db, "steady_below_db": self.steady_below_db}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> "QualityGate":
        d = json.loads(Path(path).read_text())
        if d.get("measurements") != list(MEASUREMENTS):   # trees read measurements by position: no silent mismatch
            raise ValueError(f"{path}: fitted on other measurements ({d.get('measurements')}); refit it with "
                             "scripts/quality_gate.py --keep-segmenter")
        return cls(Trees(**d["present"]), d["reference"], d["threshold"], d["noisy_below_db"], d["steady_below_db"])

    @classmethod
    def fit(cls, rows: list[dict], heart: np.ndarray, weight: np.ndarray, original: np.ndarray,
            pass_rate: float = 0.99, seed: int = 0) -> "QualityGate":
        """`rows`: measurements; `heart`: a heart sound is present; `weight` balances databases and kinds;
        `original`: a real recording, not an augmented copy. The presence threshold lets `pass_rate` of
        the (weighted) real heart recordings through, and asks no more than 0.5. The steady rule's cut is the
        level swing that all but STEADY_QUANTILE percent of heart recordings (copies in other rooms and under
        background sounds included) exceed."""
        X = np.array([cls.vector(r) for r in rows])
        heart, weight, original = np.asarray(heart, bool), np.asarray(weight, float), np.asarray(original, bool)
        present = Trees.fit(X, heart, balanced(weight, heart), seed, [MONOTONIC.get(k, 0) for k in MEASUREMENTS])
        # Means (for reading), and where real heart recordings lie (median, 1st and 99th percentiles): what
        # names a refusal's reason (cause()).
        real = heart & original
        reference = {k: {"heart": float(np.mean(X[heart, j])), "other": float(np.mean(X[~heart, j])),
                         **{f"heart_p{q:02d}": float(np.percentile(X[real, j], q)) for q in (1, 50, 99)}}
                     for j, k in enumerate(MEASUREMENTS)}
        scores = np.array([present.prob(x) for x in X[real]])
        order = np.argsort(scores)
        cum = np.cumsum(weight[real][order]) / weight[real].sum()
        steady = float(np.percentile([r["dynamics_db"] for r, h in zip(rows, heart) if h], STEADY_QUANTILE))
        return cls(present, reference, float(min(0.5, scores[order][np.searchsorted(cum, 1 - pass_rate)])),
                   steady_below_db=steady)
