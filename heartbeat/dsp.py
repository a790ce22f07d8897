"""The signal steps the serving path needs, without importing scipy.signal: Butterworth design, causal and
zero-phase IIR filtering, peak picking, the analytic envelope, a running median and a spectrogram.

Why not `scipy.signal` itself: importing it pulls in scipy.stats, optimize, sparse, linalg, interpolate and
special, ~75 MB of the app's memory and ~0.3 s of its start-up, for six functions. Each function here gives
scipy's answer (tests/test_dsp.py holds every one to scipy.signal on real recordings). The IIR loop is
scipy's own compiled `_sosfilt`, loaded on its own: a numpy recursion would cost a Python step per sample.
Training and the scripts keep using scipy.signal directly.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np


# ---------------------------------------------------------------- Butterworth design ----

def butter(order: int, cutoff, btype: str, fs: float) -> np.ndarray:
    """(sections, 6) second-order sections of a digital Butterworth filter, as
    `scipy.signal.butter(order, cutoff, btype, fs=fs, output="sos")`: the analog prototype's poles, moved to
    the (pre-warped) band and mapped by the bilinear transform; sections ordered and paired as scipy's
    zpk2sos does (poles nearest the unit circle last, each with its nearest zeros)."""
    warped = 4.0 * np.tan(np.pi * np.atleast_1d(np.asarray(cutoff, float)) / fs)    # scipy's fs=2 convention
    poles = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))   # analog prototype, k = 1
    if btype == "lowpass":
        zeros, poles, gain = np.array([]), poles * warped[0], warped[0] ** order
    elif btype == "highpass":
        zeros, poles, gain = np.zeros(order), warped[0] / poles, float(np.real(1 / np.prod(-poles)))
    elif btype == "bandpass":
        centre, width = np.sqrt(warped[0] * warped[1]), warped[1] - warped[0]
        half = poles * width / 2
        root = np.sqrt(half ** 2 - centre ** 2)
        zeros, poles, gain = np.zeros(order), np.concatenate([half + root, half - root]), width ** order
    else:
        raise ValueError(f"unknown filter type {btype!r}")
    # Bilinear transform (fs2 = 2 * 2.0): zeros at infinity land at z = -1.
    fs2 = 4.0
    gain = gain * float(np.real(np.prod(fs2 - zeros) / np.prod(fs2 - poles)))
    zeros = np.concatenate([(fs2 + zeros) / (fs2 - zeros), -np.ones(len(poles) - len(zeros))])
    poles = (fs2 + poles) / (fs2 - poles)
    return _sections(zeros.real, poles, gain)


def _sections(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """Pair complex-conjugate poles (and real ones two by two), the pair nearest the unit circle first, each
    with the two remaining (real) zeros nearest to it; that pair becomes the last section. An odd order
    gains a pole and a zero at the origin, as in scipy, so that every section is second order."""
    if len(poles) % 2:
        poles, zeros = np.append(poles, 0.0), np.append(zeros, 0.0)
    upper = poles[poles.imag > 1e-12]
    real = np.sort(poles[np.abs(poles.imag) <= 1e-12].real)
    groups = [np.array([p, np.conj(p)]) for p in upper] + [real[i:i + 2] for i in range(0, len(real), 2)]
    groups.sort(key=lambda g: -np.abs(g).max())
    zeros = list(zeros)
    sos = []
    for group in groups:
        chosen = []
        for _ in range(len(group)):
            i = int(np.argmin([abs(z - group[0]) for z in zeros]))
            chosen.append(zeros.pop(i))
        sos.append(np.r_[np.real(np.poly(chosen)), np.real(np.poly(group))])
    sos = np.array(sos[::-1])
    sos[0, :3] *= gain
    return sos


# ---------------------------------------------------------------- filtering ----

def _scipy_extension(name: str):
    """One of scipy's compiled modules (`name`: dotted, under scipy), loaded from its file alone, so that
    none of the scipy subpackage it sits in is imported; the normal import when a scipy release moves it."""
    folder, _, stem = name.rpartition(".")
    spec = importlib.util.find_spec("scipy")
    for path in Path(spec.submodule_search_locations[0], *folder.split(".")).glob(f"{stem}.*so"):
        loader = importlib.machinery.ExtensionFileLoader(f"scipy.{name}", str(path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
        return module
    return importlib.import_module(f"scipy.{name}")      # pragma: no cover - the slow import, same module


@lru_cache(maxsize=1)
def _compiled_loop():
    """scipy's `_sosfilt(sos, x, zi)`, in place over rows of x."""
    return _scipy_extension("signal._sosfilt")._sosfilt


def sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None) -> np.ndarray:
    """`scipy.signal.sosfilt` along the last axis: the sections in cascade, from rest, or from state `zi`:
    (sections, 2) for every row of x alike, or (rows, sections, 2) a state per row."""
    dtype = np.result_type(sos, x, np.float32)
    rows = np.array(np.reshape(x, (-1, np.shape(x)[-1])), dtype, order="C")    # filtered in place
    state = np.zeros((len(rows), len(sos), 2), dtype) if zi is None else \
        np.array(np.broadcast_to(np.asarray(zi, dtype), (len(rows), len(sos), 2)), order="C")
    _compiled_loop()(np.asarray(sos, dtype), rows, state)
    return rows.reshape(np.shape(x))


def _steady_state(sos: np.ndarray) -> np.ndarray:
    """`scipy.signal.sosfilt_zi`: each section's state after a unit step has settled, scaled by the gain
    of the sections before it. Solved once per filter (an answer runs the same few filters many times)."""
    return _settled_state(np.asarray(sos, float).tobytes(), len(sos))


@lru_cache(maxsize=32)
def _settled_state(sos_bytes: bytes, sections: int) -> np.ndarray:
    sos = np.frombuffer(sos_bytes).reshape(sections, 6)
    zi, scale = np.empty((sections, 2)), 1.0
    for i, (b0, b1, b2, a0, a1, a2) in enumerate(sos / sos[:, 3:4]):
        zi[i] = scale * np.linalg.solve([[1 + a1, -1.0], [a2, 1.0]], [b1 - a1 * b0, b2 - a2 * b0])
        scale *= (b0 + b1 + b2) / (1 + a1 + a2)
    return zi


def sosfiltfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`scipy.signal.sosfiltfilt` along the last axis with its defaults: odd extension by 3 * (2 * sections + 1)
    samples at each end, forward and backward from the steady state of the first sample."""
    sos = np.asarray(sos, float)
    taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    edge = 3 * taps
    x = np.asarray(x)
    if x.shape[-1] <= edge:
        raise ValueError(f"The length of the input vector x must be greater than padlen, which is {edge}.")
    ext = np.concatenate([2 * x[..., :1] - x[..., edge:0:-1], x,
                          2 * x[..., -1:] - x[..., -2:-(edge + 2):-1]], axis=-1)
    zi = _steady_state(sos)

    def settled(u):     # each row from the steady state of its own first sample
        return sosfilt(sos, u, zi[None] * np.reshape(u, (-1, u.shape[-1]))[:, :1, None])

    return settled(settled(ext)[..., ::-1])[..., ::-1][..., edge:-edge]


# ---------------------------------------------------------------- peaks, envelope, median, spectrogram ----

def find_peaks(x: np.ndarray, height: float | None = None) -> np.ndarray:
    """`scipy.signal.find_peaks(x, height)[0]`: samples higher than both neighbours; a flat top counts once,
    at its middle (the left one of two); optionally only those at least `height` high."""
    x = np.asarray(x)
    starts = np.r_[0, np.flatnonzero(np.diff(x) != 0) + 1]      # runs of equal values
    ends = np.r_[starts[1:], len(x)] - 1
    v = x[starts]
    top = np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])) + 1
    peaks = (starts[top] + ends[top]) // 2
    return peaks if height is None else peaks[x[peaks] >= height]


def next_fast_len(n: int) -> int:
    """`scipy.fft.next_fast_len(n)` (complex transforms): the least 11-smooth number >= n."""
    m = max(int(n), 1)
    while True:
        r = m
        for p in (2, 3, 5, 7, 11):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


@lru_cache(maxsize=1)
def _pocketfft():
    """scipy.fft's compiled pocketfft (+0.5 MB; `import scipy.fft` costs 27 MB and 0.15 s of start-up)."""
    return _scipy_extension("fft._pocketfft.pypocketfft")


def rfft(x: np.ndarray, n: int | None = None, axis: int = -1) -> np.ndarray:
    """`numpy.fft.rfft(x, n, axis)`, through scipy.fft's pocketfft: numpy's transforms many short rows one at a
    time, ~7x slower on the frames of one recording (750 frames of 256: 1.65 against 0.24 ms)."""
    x = np.asarray(x)
    x = x.astype(np.result_type(x.dtype, np.float32), copy=False)
    if n is not None and n != x.shape[axis]:
        x = _fit(x, n, axis)
    return _pocketfft().r2c(x, axes=[axis % x.ndim], forward=True, inorm=0)


def irfft(spectrum: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """`numpy.fft.irfft(spectrum, n, axis)` (n: the real output's length), through scipy.fft's pocketfft."""
    spectrum = np.asarray(spectrum)
    spectrum = spectrum.astype(np.result_type(spectrum.dtype, np.complex64), copy=False)   # a real power too
    spectrum = _fit(spectrum, n // 2 + 1, axis) if spectrum.shape[axis] != n // 2 + 1 else spectrum
    return _pocketfft().c2r(spectrum, axes=[axis % spectrum.ndim], lastsize=n, forward=False, inorm=2)


def _fit(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """x cut or zero-padded to length n along axis."""
    if x.shape[axis] >= n:
        return np.take(x, np.arange(n), axis=axis)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, n - x.shape[axis])
    return np.pad(x, pad)


def analytic_envelope(x: np.ndarray, n: int) -> np.ndarray:
    """|scipy.signal.hilbert(x, N=n)|: the magnitude of the analytic signal from an n-point transform (the
    real input's half spectrum, positive frequencies doubled; in the input's precision, as scipy)."""
    spectrum = rfft(x, n)
    spectrum[1:(n + 1) // 2] *= 2
    return np.abs(np.fft.ifft(spectrum, n))


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """`scipy.ndimage.median_filter(x, size, mode="nearest")` of a 1-D array (odd size)."""
    half = size // 2
    padded = np.pad(x, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1).astype(np.asarray(x).dtype)


def spectrogram(x: np.ndarray, fs: float, nperseg: int, noverlap: int):
    """`scipy.signal.spectrogram(x, fs, nperseg=..., noverlap=...)` with its defaults (Tukey 0.25 window,
    each segment's mean removed, one-sided power density): (frequencies, segment centres in s, power)."""
    step = nperseg - noverlap
    segments = np.lib.stride_tricks.sliding_window_view(np.asarray(x, float), nperseg)[::step]
    segments = segments - segments.mean(axis=1, keepdims=True)
    window = _tukey(nperseg, 0.25)
    power = np.abs(rfft(segments * window, axis=1)) ** 2 / (fs * (window ** 2).sum())
    power[:, 1:-1 if nperseg % 2 == 0 else None] *= 2
    times = (np.arange(len(segments)) * step + nperseg / 2) / fs
    return np.fft.rfftfreq(nperseg, 1 / fs), times, power.T


def _tukey(n: int, alpha: float) -> np.ndarray:
    """scipy.signal.windows.tukey(n, alpha, sym=False): a periodic window, as spectrogram uses."""
    m = n + 1
    k = np.arange(m)
    width = int(np.floor(alpha * (m - 1) / 2.0))
    w = np.ones(m)
    rise = k[: width + 1]
    w[: width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * rise / alpha / (m - 1))))
    fall = k[m - width - 1:]
    w[m - width - 1:] = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * fall / alpha / (m - 1))))
    return w[:-1]
