"""Preprocessing: the signal the features are computed from. Pure functions of (audio, settings)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .dsp import butter, sosfiltfilt


@lru_cache(maxsize=8)
def _bandpass_sos(low_hz: float, high_hz: float, sample_rate: int, order: int) -> np.ndarray:
    return butter(order, [low_hz, high_hz], "bandpass", sample_rate)


def bandpass(audio: np.ndarray, sample_rate: int, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass: keeps S1, S2 and murmurs, drops breathing rumble and hiss.

    Zero-phase (forward-backward) so that beat times found later are not shifted by the filter.
    """
    sos = _bandpass_sos(float(low_hz), float(high_hz), int(sample_rate), int(order))
    return sosfiltfilt(sos, audio).astype(np.float32)


EDGE_S = 0.1   # seconds faded in and out at each end of a recording: see fade_edges()


def fade_edges(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Fade the first and last EDGE_S in and out (raised cosine), in place. The ends hold the transients of
    the chain that made the file (a resampler's or codec's edge, hiss cut off mid-stream, the band-pass
    itself), which differ between copies of the same sound; faded, they cannot move the answer."""
    n = min(int(EDGE_S * sample_rate), len(audio) // 4)
    if n > 1:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(audio.dtype)
        audio[:n] *= ramp
        audio[-n:] *= ramp[::-1]
    return audio


def normalize(audio: np.ndarray) -> np.ndarray:
    """Scale to unit RMS. Unlike peak scaling, one knock on the stethoscope does not shrink the rest."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return (audio / rms).astype(np.float32) if rms > 1e-10 else audio.astype(np.float32)


def window_starts(n_frames: int, window: int, hop: int) -> np.ndarray:
    """Start frames of fixed-length windows with overlap; the last window is aligned to the end so the
    whole recording is covered. Empty when the recording is shorter than one window."""
    if n_frames < window:
        return np.zeros(0, dtype=int)
    starts = np.arange(0, n_frames - window + 1, hop)
    if starts[-1] + window < n_frames:
        starts = np.append(starts, n_frames - window)
    return starts
