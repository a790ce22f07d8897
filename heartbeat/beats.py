"""Heart rate and beat positions from the sound envelope, so a person can check the machine.

The envelope is the smoothed Shannon energy of the band-passed signal: it rises on S1 and S2 and stays
low through most murmurs and noise. The heart rate is the strongest autocorrelation peak of the envelope
between 30 and 200 bpm (the S1->S1 period, which also matches S2->S2 and so beats the S1->S2 lag);
beats are the envelope's peaks, and of each pair the one followed by the shorter gap (systole) is S1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

ENVELOPE_RATE = 50          # Hz: 20 ms resolution is plenty for 30-200 bpm
MIN_BPM, MAX_BPM = 30.0, 200.0


@dataclass
class Beats:
    heart_rate_bpm: float | None          # None when no steady rhythm was found
    periodicity: float                    # 0..1: height of the envelope's autocorrelation peak at the beat period
    s1_times: list[float] = field(default_factory=list)
    s2_times: list[float] = field(default_factory=list)


def envelope(clean_audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Shannon-energy envelope at ENVELOPE_RATE Hz, zero-mean and unit-variance.

    Energy is averaged over 20 ms blocks first and smoothed (8 Hz low-pass) at the envelope's own rate:
    the same envelope as filtering at the audio rate, at a fraction of the cost.
    """
    x = clean_audio / (np.max(np.abs(clean_audio)) + 1e-12)
    energy = -(x ** 2) * np.log(x ** 2 + 1e-12)                         # Shannon energy: favours mid-level peaks
    block = sample_rate // ENVELOPE_RATE
    blocks = energy[: len(energy) // block * block].reshape(-1, block).mean(axis=1)
    if len(blocks) < 16:
        return np.zeros(len(blocks), np.float32)
    env = signal.sosfiltfilt(signal.butter(2, 8.0, "lowpass", fs=ENVELOPE_RATE, output="sos"), blocks)
    return ((env - env.mean()) / (env.std() + 1e-12)).astype(np.float32)


def autocorrelation(env: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lag 0 = 1). Biased on purpose: long lags shrink, so the S1->S1
    period wins over its multiples (the unbiased form halved the rate on 2 of 21 hand-timed recordings)."""
    n = len(env)
    spectrum = np.fft.rfft(env, 2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    return ac / (ac[0] + 1e-12)


def find_beats(clean_audio: np.ndarray, sample_rate: int) -> Beats:
    env = envelope(clean_audio, sample_rate)
    ac = autocorrelation(env)
    lo, hi = int(ENVELOPE_RATE * 60 / MAX_BPM), int(ENVELOPE_RATE * 60 / MIN_BPM)
    hi = min(hi, len(ac) // 2)                     # at least two periods must fit in the recording
    if hi <= lo + 1:
        return Beats(None, 0.0)
    peaks, _ = signal.find_peaks(ac[lo:hi + 1])
    if len(peaks) == 0:
        return Beats(None, 0.0)
    lag = lo + peaks[np.argmax(ac[lo + peaks])]
    periodicity = float(max(ac[lag], 0.0))
    bpm = 60.0 * ENVELOPE_RATE / lag
    s1, s2 = _label_sounds(env, lag)
    return Beats(round(bpm, 1), round(periodicity, 3), s1, s2)


def _label_sounds(env: np.ndarray, period: int) -> tuple[list[float], list[float]]:
    """Heart sounds are envelope peaks at least 0.15 s apart; S1 is the one followed by the shorter gap."""
    peaks, _ = signal.find_peaks(env, distance=max(1, int(0.15 * ENVELOPE_RATE)), height=0.0,
                                 prominence=0.5)
    if len(peaks) < 3:
        return [round(p / ENVELOPE_RATE, 2) for p in peaks], []
    s1, s2 = [], []
    for i, p in enumerate(peaks):
        after = peaks[i + 1] - p if i + 1 < len(peaks) else None
        before = p - peaks[i - 1] if i > 0 else None
        if after is not None and after < 0.5 * period and (before is None or before >= after):
            s1.append(p)
        elif before is not None and before < 0.5 * period:
            s2.append(p)
        else:
            s1.append(p)                             # a lone sound in a full period: count it as the beat
    return [round(p / ENVELOPE_RATE, 2) for p in s1], [round(p / ENVELOPE_RATE, 2) for p in s2]
