"""Features: MFCC or log-mel heat maps of fixed-length windows, and the settings that make them.

`FeatureConfig` is saved inside every model bundle and loaded back with it, so inference computes
exactly the features the model was trained on.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from .preprocess import bandpass, normalize, window_starts


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 2000
    band_hz: tuple[float, float] = (25.0, 400.0)
    filter_order: int = 4
    kind: str = "mfcc"               # "mfcc" or "logmel"
    n_mfcc: int = 20
    n_mels: int = 32
    n_fft: int = 256                 # 128 ms at 2 kHz: resolves murmur frequencies to ~8 Hz
    hop_length: int = 80             # 40 ms frames: S1/S2 last ~100 ms; halves the CNN's cost vs 20 ms
    fmax: float = 800.0
    window_s: float = 3.0
    hop_s: float = 1.5
    # Per-recording standardisation of each coefficient: a stethoscope's fixed frequency response is an
    # additive offset in the cepstrum, so removing the recording's mean removes much of the device.
    recording_norm: bool = True
    # Floor of the log-mel, in dB below the recording's loudest band: bands the band-pass left nearly
    # empty otherwise carry the file's noise floor (16-bit quantisation, resampler residue), which differs
    # between sample rates and containers of the same sound. None: no floor (the bundled model's setting).
    floor_db: float | None = None

    def __post_init__(self):
        if self.kind not in ("mfcc", "logmel"):
            raise ValueError(f"unknown feature kind {self.kind!r}")
        object.__setattr__(self, "band_hz", tuple(float(b) for b in self.band_hz))

    @property
    def n_coeffs(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def window_frames(self) -> int:
        return int(round(self.window_s * self.frame_rate))

    @property
    def hop_frames(self) -> int:
        return int(round(self.hop_s * self.frame_rate))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.n_coeffs, self.window_frames, 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature settings {sorted(unknown)}: made by a newer heartbeat?")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "FeatureConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def clean(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Band-pass then unit-RMS: the signal every feature and the beat detector start from."""
    return normalize(bandpass(audio, cfg.sample_rate, *cfg.band_hz, order=cfg.filter_order))


def feature_map(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_coeffs, n_frames) heat map of a whole recording at cfg.sample_rate, already cleaned."""
    mel = librosa.feature.melspectrogram(y=audio, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                         n_mels=cfg.n_mels, fmin=cfg.band_hz[0], fmax=cfg.fmax, center=True)
    logmel = librosa.power_to_db(mel, ref=1.0, top_db=cfg.floor_db)
    fmap = librosa.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc) if cfg.kind == "mfcc" else logmel
    if cfg.recording_norm:
        fmap = (fmap - fmap.mean(axis=1, keepdims=True)) / (fmap.std(axis=1, keepdims=True) + 1e-6)
    return fmap.astype(np.float32)


def windows(fmap: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut a heat map into model inputs (n, n_coeffs, window_frames, 1) and their start times in seconds."""
    starts = window_starts(fmap.shape[1], cfg.window_frames, cfg.hop_frames)
    batch = np.stack([fmap[:, s:s + cfg.window_frames] for s in starts]) if len(starts) else \
        np.zeros((0, cfg.n_coeffs, cfg.window_frames), np.float32)
    return batch[..., None], starts / cfg.frame_rate


def extract(audio: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Audio at cfg.sample_rate -> (windows, start times): the whole feature pipeline in one call."""
    return windows(feature_map(clean(audio, cfg), cfg), cfg)
