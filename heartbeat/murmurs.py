"""Diastolic murmurs made from what is known of their sound, placed by the segmenter into real recordings.

The shared databases hold 4 diastolic murmurs (early-diastolic, CirCor) and no mid-diastolic rumble, so a
network trained on them alone is deaf to mitral stenosis, the hallmark of rheumatic heart disease. These
are for training (as abnormal copies of real normal recordings) and for a held-out check; never a score of
real disease.

What each sound is, and where the description comes from:
- Mitral stenosis (MS): an opening snap 40-120 ms after the aortic part of S2 (the shorter, the tighter the
  valve), then a low-pitched rumble, roughly 30-100 Hz (heard with the bell at the apex), loudest early in
  diastole and fading, with presystolic accentuation (a crescendo into S1) in sinus rhythm, none in atrial
  fibrillation; S1 is often loud. Wood, "An appreciation of mitral stenosis", Br Med J 1954;1:1051-63 (the
  A2-opening snap interval); Bickley, Bates' Guide to Physical Examination, 13th ed., table of diastolic
  murmurs; Otto & Bonow, Valvular Heart Disease (Braunwald companion), ch. on mitral stenosis.
- Aortic (and pulmonary) regurgitation (AR): a high-pitched, blowing decrescendo starting right at S2
  (early diastolic), heard with the diaphragm along the left sternal border; mostly above ~150 Hz (its
  energy reaches several hundred Hz: within the model's 25-400 Hz band). Bates' (ibid.); Tavel, "Cardiac
  auscultation: a glorious past - and it does have a future!", Circulation 2006;113:1255-9.
- Loudness: Levine's grades are heard, not measured; here grade g is a murmur whose RMS over the stretch it
  sounds in sits GRADE_DB[g] below the RMS of S1 and S2 in the same recording (the model's 25-400 Hz band),
  6 dB a grade. Anchored on real murmurs (scripts/murmur_levels.py, reports/murmur_levels.md): CirCor's
  annotated grade II/VI systolic murmurs, recorded where they were most audible, sit at a median -13.1 dB by
  the same measure (`murmur_level_db`), so grade II is -14 dB. Levine's scale is the same for diastolic
  murmurs, and a low rumble must be physically louder than a systolic murmur to be heard as loud, so this errs
  quiet for mitral stenosis. (Until 2026-12-07 the scale was assumed, 6 dB quieter: grade II at -20 dB lay
  under the diastolic sound of most recordings, and 6.4 dB below CirCor's real grade I murmurs.)
- Atrial fibrillation (common with MS): the real cycles re-timed, each diastole cut or stretched at random
  (irregularly irregular), and no presystolic accentuation. The same re-timing with a smooth swing
  (`breathing`) makes the regular rhythm a child breathes with: the rhythm check must call it regular.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from .beats import FRAME_RATE, cycle_bounds

KINDS = ("mitral_stenosis", "aortic_regurgitation")
GRADES = (1, 2, 3, 4)
GRADE_DB = {1: -20.0, 2: -14.0, 3: -8.0, 4: -2.0}
OPENING_SNAP_S = (0.04, 0.12)          # after S2's onset (A2)
BREATH_SWING = (0.03, 0.08)            # sinus arrhythmia: the interval's swing with the breath (share of it)
BREATH_BEATS = (3.0, 6.0)              # beats per breath


class NoCycles(Exception):
    """Too few whole heart cycles in a recording to place a murmur in."""


def heart_band(x: np.ndarray, rate: int) -> np.ndarray:
    """`x` through the model's 25-400 Hz band: where a grade's level is set and measured."""
    return signal.sosfilt(signal.butter(2, (25, 400), "bandpass", fs=rate, output="sos"), x)


def annotated_power(banded: np.ndarray, rate: int, segments, state: str, middle: float = 1.0) -> float:
    """Mean power of `banded` (heart_band's output) over the middle `middle` share of every annotated segment
    in `state` (datasets.circor_segments: "S1", "systole", "S2" or "diastole"); NaN without one."""
    total, n = 0.0, 0
    for a, b in segments.loc[segments["state"] == state, ["start_s", "end_s"]].to_numpy():
        i, j = int((a + (b - a) * (1 - middle) / 2) * rate), int((b - (b - a) * (1 - middle) / 2) * rate)
        if i < j <= len(banded):
            total, n = total + float(np.sum(banded[i:j] ** 2)), n + j - i
    return total / n if n else float("nan")


def sounds_power(banded: np.ndarray, rate: int, segments) -> float:
    """The mean power of the annotated S1 and S2 (heart_band's output): what a grade is set against."""
    return (annotated_power(banded, rate, segments, "S1") + annotated_power(banded, rate, segments, "S2")) / 2


def murmur_level_db(audio: np.ndarray, rate: int, segments) -> float:
    """A real systolic murmur's level as GRADE_DB places a synthetic one: its power through mid-systole (the
    middle 60% of systole, less the middle of diastole's, which is the recording's own background) over the
    mean power of S1 and S2, in dB (-60 where systole is no louder than diastole)."""
    x = heart_band(np.asarray(audio, np.float64), rate)
    sounds = sounds_power(x, rate, segments)
    excess = annotated_power(x, rate, segments, "systole", 0.6) - annotated_power(x, rate, segments, "diastole", 0.5)
    return float(10 * np.log10(max(excess, 1e-6 * sounds) / sounds))


def sample_cycles(states: np.ndarray, rate: int, length: int) -> np.ndarray:
    """(n, 5) sample indices of the whole cycles that end within `length` samples: S1 start, systole start,
    S2 start, diastole start, next S1 start."""
    cycles = cycle_bounds(states) * (rate // FRAME_RATE)
    return cycles[cycles[:, 4] <= length]


def _band_noise(n: int, rate: int, band: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    sos = signal.butter(4, band, "bandpass", fs=rate, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n + rate // 10))[rate // 10:]     # past the filter's start-up
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def retime(audio: np.ndarray, cycles: np.ndarray, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recording with cycle k's diastole cut or stretched (by repeating its quiet middle) to ratios[k]
    of its length; S1, systole and S2 untouched. Returns the audio and its new cycles."""
    pieces, out_cycles, pos = [audio[: cycles[0, 0]]], [], cycles[0, 0]
    for (s1, sy, s2, dia, end), ratio in zip(cycles, ratios):
        length = end - dia
        target = max(int(length * ratio), length // 3)
        mid = audio[dia + length // 4: end - length // 4] if length >= 8 else audio[dia:end]
        head, tail = audio[dia: dia + length // 4], audio[end - length // 4: end]
        body_len = max(target - len(head) - len(tail), 0)
        body = np.resize(mid, body_len) if len(mid) else np.zeros(body_len)
        cycle = np.concatenate([audio[s1:dia], head, body, tail])
        out_cycles.append(np.array([0, sy - s1, s2 - s1, dia - s1, len(cycle)]) + pos)
        pieces.append(cycle)
        pos += len(cycle)
    pieces.append(audio[cycles[-1, 4]:])
    return np.concatenate(pieces), np.array(out_cycles)


def irregular(audio: np.ndarray, cycles: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Atrial fibrillation's rhythm from a regular recording: each diastole independently 0.6-1.5 of its
    length (irregularly irregular: no beat predicts the next)."""
    return retime(audio, cycles, rng.uniform(0.6, 1.5, len(cycles)))


def breathing(audio: np.ndarray, cycles: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Respiratory sinus arrhythmia from a regular recording: the beat interval swings smoothly with the
    breath, by BREATH_SWING of itself over BREATH_BEATS beats per breath (regular in the clinical sense).
    The ranges are an assumption meant to cover a resting child's (fast breathing, few beats per breath)
    and an adult's (slower breathing, more beats per breath); the diastole absorbs the whole swing."""
    swing, beats = rng.uniform(*BREATH_SWING), rng.uniform(*BREATH_BEATS)
    k = np.arange(len(cycles))
    interval_ratio = 1 + swing * np.sin(2 * np.pi * k / beats + rng.uniform(0, 2 * np.pi))
    period, diastole = cycles[:, 4] - cycles[:, 0], np.maximum(cycles[:, 4] - cycles[:, 3], 1)
    return retime(audio, cycles, 1 + (interval_ratio - 1) * period / diastole)


def retimed(audio: np.ndarray, rate: int, states: np.ndarray, how, rng: np.random.Generator) -> np.ndarray | None:
    """`audio` (at `rate`) re-timed by `how` (`irregular` or `breathing`) on the cycles the segmenter found
    (`states`); None with fewer than 3 whole cycles."""
    cycles = sample_cycles(states, rate, len(audio))
    return None if len(cycles) < 3 else how(np.asarray(audio, np.float64), cycles, rng)[0].astype(np.float32)


def add_murmur(audio: np.ndarray, rate: int, states: np.ndarray, kind: str, grade: int,
               rng: np.random.Generator, fibrillation: bool = False) -> np.ndarray | None:
    """`audio` (at `rate`, the model's) with a diastolic murmur in every whole cycle the segmenter found
    (`states`, per FRAME_RATE frame, from the clean recording). None with fewer than 3 whole cycles."""
    cycles = sample_cycles(states, rate, len(audio))
    if len(cycles) < 3:
        return None
    x = np.asarray(audio, np.float64).copy()
    if fibrillation:
        x, cycles = irregular(x, cycles, rng)
    # The heart sounds' level: RMS over S1 and S2 (in the band every feature starts from).
    heart = heart_band(x, rate)
    sounds = np.concatenate([heart[a:b] for c in cycles for a, b in ((c[0], c[1]), (c[2], c[3]))])
    level = np.sqrt(np.mean(sounds ** 2)) * 10 ** (GRADE_DB[grade] / 20)
    murmur = np.zeros_like(x)
    if kind == "mitral_stenosis":
        if rng.random() < 0.6:                                   # a loud S1, often
            gain = rng.uniform(1.2, 1.8)
            for c in cycles:
                x[c[0]:c[1]] *= gain
        rumble_band = (rng.uniform(25, 40), rng.uniform(80, 110))
        for s1, sy, s2, dia, end in cycles:
            snap = s2 + int(rng.uniform(*OPENING_SNAP_S) * rate)
            if snap >= end - int(0.1 * rate):
                continue
            t = np.arange(int(0.03 * rate)) / rate               # the snap: a short, sharp, higher click
            click = np.sin(2 * np.pi * rng.uniform(100, 180) * t) * np.exp(-t / 0.008)
            stop = min(snap + len(t), len(x))
            murmur[snap:stop] += 2.5 * click[: stop - snap]
            start = snap + int(0.02 * rate)
            n = end - start
            phase = np.linspace(0, 1, n)
            envelope = np.clip(1.2 - phase, 0.25, 1.0)           # loudest early, fading through mid-diastole
            if not fibrillation:                                 # presystolic accentuation into S1
                envelope = np.maximum(envelope, np.clip((phase - 0.7) / 0.3, 0, 1) * 1.3)
            murmur[start:end] += envelope * _band_noise(n, rate, rumble_band, rng)
    elif kind == "aortic_regurgitation":
        band = (rng.uniform(150, 200), rng.uniform(350, 400))
        for s1, sy, s2, dia, end in cycles:
            start = s2 + int(rng.uniform(0.01, 0.04) * rate)
            n = int((end - start) * rng.uniform(0.5, 0.9))
            attack = np.clip(np.arange(n) / (0.01 * rate), 0, 1)
            envelope = attack * np.linspace(1, 0.05, n)          # decrescendo
            murmur[start:start + n] += envelope * _band_noise(n, rate, band, rng)
    else:
        raise ValueError(f"unknown murmur {kind!r}")
    # Scale so the murmur's RMS over the stretches it sounds in is `level` (the snap rides along).
    active = np.abs(murmur) > 0
    murmur *= level / (np.sqrt(np.mean(murmur[active] ** 2)) + 1e-12)
    return (x + murmur).astype(np.float32)


def random_murmur(audio: np.ndarray, rate: int, states: np.ndarray, rng: np.random.Generator,
                  kind: str | None = None, grade: int | None = None) -> np.ndarray | None:
    """A murmur of a random (or given) kind and grade: MS three times in five, with atrial fibrillation in
    a third of those."""
    kind = kind or ("mitral_stenosis" if rng.random() < 0.6 else "aortic_regurgitation")
    grade = grade or int(rng.choice(GRADES))
    return add_murmur(audio, rate, states, kind, grade, rng, fibrillation=kind == "mitral_stenosis" and rng.random() < 1 / 3)
