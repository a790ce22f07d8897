"""Non-heart audio for fitting and measuring the quality gate: what a clinician may record by mistake.

Generated here (silence, noise, hum, tones, music-like, taps, rubbing), spoken by espeak-ng (Debian),
or read from Debian's sound theme. Nothing is saved in the repository: it is all made at run time.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

SR = 8000  # generated at 8 kHz, then read like any upload (load_audio resamples)


def _coloured(rng, n, alpha):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= f[1:] ** (alpha / 2)
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.abs(x).max() + 1e-12)


def silence(rng, s):
    return np.zeros(int(s * SR))


def near_silence(rng, s):
    return 10 ** (rng.uniform(-80, -62) / 20) * rng.standard_normal(int(s * SR))


def white_noise(rng, s):
    return rng.uniform(0.05, 0.5) * _coloured(rng, int(s * SR), 0)


def pink_noise(rng, s):
    return rng.uniform(0.05, 0.5) * _coloured(rng, int(s * SR), 1)


def brown_noise(rng, s):
    return rng.uniform(0.05, 0.5) * _coloured(rng, int(s * SR), 2)


def mains_hum(rng, s):
    t = np.arange(int(s * SR)) / SR
    f0 = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) for k in range(1, 6))
    return 0.3 * x / np.abs(x).max() + 0.003 * rng.standard_normal(len(t))


def tone(rng, s):
    t = np.arange(int(s * SR)) / SR
    if rng.random() < 0.5:
        return 0.4 * np.sin(2 * np.pi * rng.uniform(60, 1500) * t)
    return 0.4 * signal.chirp(t, rng.uniform(50, 300), t[-1], rng.uniform(400, 2000))


def music_like(rng, s):
    """Notes with harmonics and decays at a tempo: the hardest generated kind (rhythmic, tonal)."""
    n, t = int(s * SR), np.arange(int(0.6 * SR)) / SR
    x = np.zeros(n)
    beat = 60 / rng.uniform(60, 160)
    for start in np.arange(0, s - 0.6, beat / rng.choice([1, 2])):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        note = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5)) * np.exp(-t * rng.uniform(3, 8))
        i = int(start * SR)
        x[i:i + len(note)] += note[: n - i]
    return 0.3 * x / (np.abs(x).max() + 1e-12)


def taps(rng, s):
    """Irregular knocks and taps on the chest piece or table."""
    n = int(s * SR)
    x = 0.002 * rng.standard_normal(n)
    t = np.arange(int(0.05 * SR)) / SR
    for when in np.cumsum(rng.exponential(rng.uniform(0.3, 1.2), 60)):
        i = int(when * SR)
        if i >= n:
            break
        knock = np.sin(2 * np.pi * rng.uniform(80, 600) * t) * np.exp(-t * 80) * rng.uniform(0.2, 1)
        x[i:i + len(knock)] += knock[: n - i]
    return 0.5 * x / np.abs(x).max()


def rubbing(rng, s):
    """Cloth or fingers rubbing the microphone: band-limited noise in slow, uneven strokes."""
    n = int(s * SR)
    sos = signal.butter(2, [rng.uniform(100, 300), rng.uniform(1000, 3500)], "bandpass", fs=SR, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    strokes = np.abs(signal.sosfilt(signal.butter(2, rng.uniform(0.5, 3), fs=SR, output="sos"), rng.standard_normal(n)))
    x = noise * strokes
    return 0.4 * x / np.abs(x).max()


GENERATED = [silence, near_silence, white_noise, pink_noise, brown_noise, mains_hum, tone, music_like, taps, rubbing]

SENTENCES = ["Please take a deep breath and hold it.", "The patient is resting quietly on the bed.",
             "Can you hear me? Tell me if it hurts.", "Twelve, thirteen, fourteen, fifteen, sixteen.",
             "This recording is for the clinic in the morning.", "Breathe in slowly, and now breathe out."]
VOICES = ["en", "en-us", "fr", "de", "es", "sw"]


def speech(seed: int, seconds: float = 8.0) -> np.ndarray | None:
    """A sentence or two from espeak-ng (None when it is not installed), repeated to fill `seconds`."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    rng = np.random.default_rng(seed)
    import soundfile as sf
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "s.wav")
        text = " ".join(rng.choice(SENTENCES, 2, replace=False))
        subprocess.run([exe, "-v", VOICES[seed % len(VOICES)], "-s", str(rng.integers(130, 190)), "-w", str(out), text],
                       check=True, capture_output=True)
        x, sr = sf.read(out)
    import soxr
    x = soxr.resample(x, sr, SR)
    return np.resize(x, int(seconds * SR)) * 0.8


def debian_sounds() -> list[Path]:
    """Bells, alarms and alerts of Debian's sound-theme-freedesktop, where installed."""
    return sorted(Path("/usr/share/sounds/freedesktop/stereo").glob("*.oga"))
