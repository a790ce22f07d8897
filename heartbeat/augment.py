"""Another device and another room: random changes to a recording's chain, for training and fitting.

`classic` is what the earlier classifier recipes were trained with (time shift, band limits, gain, coloured
noise). `channel` is the wider set the bundled classifier and the quality gate are trained with, as the
field reports for unseen devices: random EQ and spectral tilt, band limits, gain, DC offset and slow drift,
mains hum, coloured noise, mild clipping. `phone` adds low-bitrate codec round trips (the `codec` recipe,
measured and not adopted). All work on audio at one sample rate and keep its length (but for the time shift).
"""
from __future__ import annotations

import numpy as np
from scipy import signal


def coloured_noise(rng: np.random.Generator, n: int, sr: int, alpha: float | None = None) -> np.ndarray:
    """Noise with a 1/f^alpha power spectrum: 0 white, 1 pink, 2 brown (None: one of them at random)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    alpha = rng.choice([0.0, 1.0, 2.0]) if alpha is None else alpha
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum[1:] /= freqs[1:] ** (alpha / 2)
    return np.fft.irfft(spectrum, n=n)


def add_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x plus `noise` scaled so that the power ratio x : noise is `snr_db`."""
    scale = np.sqrt(np.mean(x ** 2) / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    return x + scale * noise[: len(x)]


def band_limit(x: np.ndarray, sr: int, rng: np.random.Generator, low=(15, 90), high=(180, 950)) -> np.ndarray:
    """A different chest piece or microphone: a random band-pass of random order."""
    lo, hi = rng.uniform(*low), min(rng.uniform(*high), 0.45 * sr)
    sos = signal.butter(int(rng.integers(1, 4)), [lo, hi], btype="bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def classic(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The bundled classifier's augmentation: time shift, band limits, gain, white/pink/brown noise."""
    x = audio[rng.integers(0, min(int(1.5 * sr), len(audio) // 4) + 1):]   # time shift: windows fall elsewhere
    x = band_limit(x, sr, rng)
    x = x * 10 ** (rng.uniform(-20, 20) / 20)
    return add_at_snr(x, coloured_noise(rng, len(x), sr), rng.uniform(5, 30)).astype(np.float32)


def equalise(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Random EQ: two peaking filters of +-9 dB and a spectral tilt of +-6 dB per octave."""
    for _ in range(2):
        f0, gain_db, q = rng.uniform(40, 0.4 * sr), rng.uniform(-9, 9), rng.uniform(0.7, 3)
        a = 10 ** (gain_db / 40)
        w = 2 * np.pi * f0 / sr
        alpha = np.sin(w) / (2 * q)
        b_ = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
        a_ = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
        x = signal.lfilter(b_, a_, x)
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    tilt_db = rng.uniform(-6, 6) * np.log2(np.maximum(freqs, 20) / 100)
    return np.fft.irfft(spectrum * 10 ** (tilt_db / 20), n=len(x))


def hiss_above(n: int, sr: int, rng: np.random.Generator, hz: float = 1100.0) -> np.ndarray:
    """White hiss with nothing below `hz`: what a phone or a 44.1 kHz file adds above the heart band,
    and a 2 kHz file cannot hold (a brick wall in the spectrum, so nothing leaks below it)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / sr) < hz] = 0
    return np.fft.irfft(spectrum, n=n)


def as_uploaded(x: np.ndarray, sr: int, rate: int, rng: np.random.Generator, snr_db: float = 0.0) -> np.ndarray:
    """`x` (at `sr` Hz) as a file at `rate` would hold it: resampled there and, above `sr`, with hiss above the
    heart band `snr_db` below the heart sound (what a phone or a browser adds; a 2 kHz file cannot hold it).
    The copies the invariance tests and scripts/listener_invariance.py upload."""
    from .audio import resample
    y = resample(x, sr, rate)
    return add_at_snr(y, hiss_above(len(y), rate, rng), snr_db) if rate > sr else y


def hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum at 50 or 60 Hz with random odd and even harmonics, unit RMS."""
    t = np.arange(n) / sr
    f0 = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.1, 1) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6))
            for k in range(1, 8) if f0 * k < sr / 2)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def channel(audio: np.ndarray, sr: int, rng: np.random.Generator, snr_db=(0, 30)) -> np.ndarray:
    """A heart recording as another device in another room would have made it."""
    x = equalise(np.asarray(audio, np.float64), sr, rng)
    if rng.random() < 0.5:
        x = band_limit(x, sr, rng, low=(15, 60), high=(250, 950))
    x = add_at_snr(x, coloured_noise(rng, len(x), sr), rng.uniform(*snr_db))
    if rng.random() < 0.3:
        x = add_at_snr(x, hum(len(x), sr, rng), rng.uniform(10, 30))
    x = x / (np.abs(x).max() + 1e-12) * 10 ** (rng.uniform(-40, -3) / 20)   # any recording level
    if rng.random() < 0.3:                                                # DC offset and slow drift
        t = np.arange(len(x)) / sr
        x = x + rng.uniform(-0.3, 0.3) + rng.uniform(0, 0.2) * np.sin(2 * np.pi * rng.uniform(0.05, 1) * t)
    if rng.random() < 0.1:                                                # a little clipping
        x = np.clip(x, -0.9 * np.abs(x).max(), 0.9 * np.abs(x).max())
    return np.clip(x, -1, 1).astype(np.float32)


def recolour(x: np.ndarray, sr: int, freqs: np.ndarray, gain_db: np.ndarray, limit_db: float = 20.0) -> np.ndarray:
    """`x` through a zero-phase filter whose gain at `freqs` is `gain_db` (clipped to +-limit_db): one
    device's response swapped for another's (cache.transfer builds the gains from the databases' spectra)."""
    g = np.clip(np.interp(np.fft.rfftfreq(len(x), 1 / sr), freqs, gain_db), -limit_db, limit_db)
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (g / 20), n=len(x))


# A phone or a messaging app between the chest and the file: (encoder, container, bitrates, its sample rate).
CODECS = [("aac", "adts", ("16k", "24k", "32k"), 8000), ("libopus", "ogg", ("6k", "8k", "12k", "16k"), 8000),
          ("libopencore_amrnb", "amr", ("4.75k", "7.95k", "12.2k"), 8000), ("libmp3lame", "mp3", ("16k", "24k"), 8000)]


def codec_round_trip(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Encode through one of CODECS at a low bitrate and decode again with the project's ffmpeg
    (all through pipes). The result keeps `x`'s length (codecs add priming samples; they are cut off)."""
    import subprocess
    from .audio import ffmpeg_binary, resample
    encoder, container, rates, codec_sr = CODECS[rng.integers(len(CODECS))]
    wide = resample(np.asarray(x, np.float32), sr, codec_sr)
    peak = np.abs(wide).max() + 1e-12
    common = [ffmpeg_binary(encoder), "-nostdin", "-hide_banner", "-v", "error"]
    encoded = subprocess.run(common + ["-f", "f32le", "-ar", str(codec_sr), "-ac", "1", "-i", "pipe:",
                                       "-c:a", encoder, "-b:a", str(rng.choice(rates)), "-f", container, "pipe:"],
                             input=(wide / peak * 0.9).tobytes(), capture_output=True, check=True).stdout
    decoded = subprocess.run(common + ["-i", "pipe:", "-f", "f32le", "-ac", "1", "-ar", str(codec_sr), "pipe:"],
                             input=encoded, capture_output=True, check=True).stdout
    y = resample(np.frombuffer(decoded, np.float32) / 0.9 * peak, codec_sr, sr)
    # Line the decoded copy up with the input (encoder delay differs by codec), then keep the input's length.
    lag = int(np.argmax(signal.correlate(y[: len(x) + sr], x[: 5 * sr], mode="valid"))) if len(y) >= len(x) else 0
    y = y[lag: lag + len(x)]
    return np.pad(y, (0, len(x) - len(y))).astype(np.float32)


def phone(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`channel`, then (seven times in ten) a low-bitrate codec round trip as a phone or messenger makes."""
    x = channel(audio, sr, rng, snr_db=(5, 30))
    return codec_round_trip(x, sr, rng) if rng.random() < 0.7 else x
