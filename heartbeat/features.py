"""Features: MFCC or log-mel heat maps of fixed-length windows, and the settings that make them.

`FeatureConfig` is saved inside every model bundle and loaded back with it, so inference computes
exactly the features the model was trained on.

The heat map is librosa's (`melspectrogram` -> `power_to_db` -> `mfcc`, Slaney mel scale, periodic Hann,
centred zero-padded frames), computed here with numpy (scipy.fft for the cepstra's DCT) with librosa's precision (transform in double, stored in single):
importing librosa.feature and its numba kernels cost the app 2 s and 70 MB on the first answer. Training
and serving share this one implementation; tests/test_features.py holds it to librosa's output on real
recordings of every database.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE
from .beats import FRAME_RATE, STATES, Beats
from .dsp import rfft
from .preprocess import window_starts


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    band_hz: tuple[float, float] = (25.0, 400.0)
    filter_order: int = 4
    # "mfcc", "logmel", "pcen" (per-channel energy normalisation of the mel bands), "logmel+pcen" (both,
    # stacked: the log-mel's ranking with PCEN's device-free gain) or "spectrum" (the power spectrum's bins
    # under the mel filters, for a network that learns its own filterbank: model.LearnableFilterbank)
    kind: str = "mfcc"
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
    # Smallest spread a row is divided by in that standardisation (dB). A row that barely moves (a mel
    # band at the floor in one copy of a sound, a hair above it in another) would otherwise be blown up to
    # unit variance: the recording chain, not the heart, would fill it. 0: the earlier recipes (1e-6).
    norm_floor_db: float = 0.0
    # Floor of the log-mel, in dB below the recording's loudest band: bands the band-pass left nearly
    # empty otherwise carry the file's noise floor (16-bit quantisation, resampler residue), which differs
    # between sample rates and containers of the same sound. None: no floor (the earlier recipes);
    # the bundled model uses 50.
    floor_db: float | None = None
    # Per-cycle information: below the heat map, one row per heart-cycle state (S1, systole, S2, diastole)
    # holding the share of each frame the segmenter's Viterbi pass put in it, so the network can tell a
    # sound in systole from one in diastole. All zero where no steady rhythm was found.
    cycle_states: bool = False
    # Where those rows come from: "viterbi", the cycle path's states; "posterior", the frame classifier's
    # probabilities, which change smoothly with the sound, so a path one frame off between two copies of a
    # recording cannot move the answer.
    cycle_source: str = "viterbi"

    def __post_init__(self):
        if self.kind not in ("mfcc", "logmel", "pcen", "logmel+pcen", "spectrum"):
            raise ValueError(f"unknown feature kind {self.kind!r}")
        if self.cycle_source not in ("viterbi", "posterior"):
            raise ValueError(f"unknown cycle_source {self.cycle_source!r}")
        object.__setattr__(self, "band_hz", tuple(float(b) for b in self.band_hz))

    @property
    def n_coeffs(self) -> int:
        return {"mfcc": self.n_mfcc, "logmel+pcen": 2 * self.n_mels,
                "spectrum": len(spectrum_bins(self))}.get(self.kind, self.n_mels)

    @property
    def state_rows(self) -> int:
        return len(STATES) if self.cycle_states else 0

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
        return (self.n_coeffs + self.state_rows, self.window_frames, 1)

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


def _hz_to_mel(hz):
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz / (200.0 / 3))


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters, area-normalised ("slaney"), as float32."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    ramps = edges[:, None] - np.fft.rfftfreq(n_fft, 1.0 / sample_rate)[None, :]
    widths = np.diff(edges)
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def power_spectrogram(audio: np.ndarray, n_fft: int, hop: int, single: bool = True) -> np.ndarray:
    """|STFT|^2, (1 + n_fft // 2, n_frames): periodic Hann, frames centred on k * hop (zero padding).
    `single`: the transform in float32, 5x faster; its rounding lies ~140 dB below each frame's peak, under any
    floor of 100 dB or less (tests/test_features.py holds the floored heat maps to librosa's). Without such a
    floor, and for PCEN (which lifts every band to unit level, rounding and all), in double precision, as
    librosa does (transform in double, stored in single)."""
    x = np.pad(np.asarray(audio, np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    spectrum = rfft(frames * _hann(n_fft).astype(np.float32 if single else np.float64), axis=1)
    spectrum = spectrum.astype(np.complex64, copy=False)
    return (spectrum.real ** 2 + spectrum.imag ** 2).T


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """The periodic Hann window."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def feature_map(audio: np.ndarray, cfg: FeatureConfig, beats: Beats | None = None,
                kept: np.ndarray | None = None) -> np.ndarray:
    """(n_coeffs + state_rows, n_frames) heat map of a whole recording at cfg.sample_rate, already cleaned;
    `beats`: what find_beats made of it, whose states or state probabilities make the rows of cfg.cycle_states.
    `kept`: a boolean per window (`windows`); only the frames of the kept windows set the recording's floor
    and standardisation, so that an artifact set aside (artifacts.screen) moves nothing in the windows judged."""
    single = cfg.floor_db is not None and cfg.floor_db <= 100 and "pcen" not in cfg.kind
    power = power_spectrogram(audio, cfg.n_fft, cfg.hop_length, single)
    # Every frame when all windows are kept (the common case, computed as it always was), and when none is
    # (nothing will be judged).
    frames = slice(None) if kept is None or np.all(kept) or not np.any(kept) else \
        in_kept_windows(np.arange(power.shape[1]) / cfg.frame_rate, kept, len(audio), cfg)
    if cfg.kind == "spectrum":
        return _finish(_spectrum_db(power, cfg, frames), cfg, beats, frames)
    mel = mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.band_hz[0], cfg.fmax) @ power
    if cfg.kind == "pcen":
        return _finish(pcen(mel, cfg), cfg, beats, frames)
    logmel = 10.0 * np.log10(np.maximum(mel, 1e-10))          # dB re 1; librosa.power_to_db(ref=1.0)
    if cfg.floor_db is not None:
        logmel = np.maximum(logmel, logmel[:, frames].max() - cfg.floor_db)
    if cfg.kind == "logmel+pcen":
        return _finish(np.vstack([logmel, pcen(mel, cfg)]), cfg, beats, frames)
    if cfg.kind == "mfcc":
        import scipy.fft     # the cepstra only: serving the shipped log-mel model never imports scipy
        return _finish(scipy.fft.dct(logmel, type=2, norm="ortho", axis=0)[: cfg.n_mfcc], cfg, beats, frames)
    return _finish(logmel, cfg, beats, frames)


def in_kept_windows(times: np.ndarray, kept: np.ndarray, n_samples: int, cfg: FeatureConfig) -> np.ndarray:
    """Boolean per time (s) of a recording of `n_samples`: inside one of the kept windows (`kept`: a boolean
    per window, as `windows` cuts them)."""
    inside = np.zeros(len(times), bool)
    for start in window_times(n_samples, cfg)[kept]:
        inside |= (times >= start) & (times < start + cfg.window_s)
    return inside


def spectrum_bins(cfg: FeatureConfig) -> np.ndarray:
    """The power spectrum's bins any mel filter of cfg reaches: the rows of a "spectrum" heat map."""
    return np.flatnonzero(mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.band_hz[0], cfg.fmax).any(axis=0))


def _spectrum_db(power: np.ndarray, cfg: FeatureConfig, frames=slice(None)) -> np.ndarray:
    """The bins under the mel filters in dB, floored as the log-mel is, less each bin's mean over the
    recording: a device's fixed response (a gain per bin) and the level are divided out in the power
    domain, where a learnt filterbank can still sum the bins (model.LearnableFilterbank)."""
    db = 10.0 * np.log10(np.maximum(power[spectrum_bins(cfg)], 1e-10))
    if cfg.floor_db is not None:
        db = np.maximum(db, db[:, frames].max() - cfg.floor_db)
    return db - db[:, frames].mean(axis=1, keepdims=True)


def pcen(mel: np.ndarray, cfg: FeatureConfig, time_constant: float = 0.4) -> np.ndarray:
    """Per-channel energy normalisation (Wang et al. 2017; Lostanlen et al. 2019): each mel band divided by
    its own smoothed energy (an automatic gain per band, a 0.4 s memory: about one heart cycle), then
    root-compressed. What a device adds as a slowly varying gain or tilt is divided out within the recording.
    The recording is scaled to unit peak band energy first, so the result does not depend on its level."""
    import librosa
    mel = mel / max(float(mel.max()), 1e-20)
    return librosa.pcen(mel * 2 ** 31, sr=cfg.sample_rate, hop_length=cfg.hop_length, time_constant=time_constant)


def _finish(fmap: np.ndarray, cfg: FeatureConfig, beats: Beats | None, frames=slice(None)) -> np.ndarray:
    """The per-recording standardisation (over `frames`) and the cycle rows, for every kind of heat map."""
    if cfg.recording_norm and cfg.kind != "spectrum":     # "spectrum" is standardised after its filterbank
        spread = fmap[:, frames].std(axis=1, keepdims=True) + 1e-6
        fmap = (fmap - fmap[:, frames].mean(axis=1, keepdims=True)) / np.maximum(spread, cfg.norm_floor_db)
    if cfg.cycle_states:
        states = None if beats is None else beats.states if cfg.cycle_source == "viterbi" else beats.state_probs
        fmap = np.vstack([fmap, cycle_shares(states, fmap.shape[1], cfg)])
    return fmap.astype(np.float32)


def cycle_shares(states: np.ndarray | None, n_frames: int, cfg: FeatureConfig) -> np.ndarray:
    """(4, n_frames): the share of each heat-map frame (centred on k * hop_length) in each cycle state,
    from the segmenter's frames (frame i centred on (i + 0.5) / FRAME_RATE seconds): `states` holds a
    state index per frame, or (frames, 4) probabilities. Shares, not the nearest frame: at a child's
    190 bpm systole lasts one segmenter frame, half a heat-map frame."""
    rows = np.zeros((len(STATES), n_frames), np.float32)
    if states is not None and len(states):
        share = np.eye(len(STATES), dtype=np.float32)[states] if states.ndim == 1 else states
        k = np.floor((np.arange(len(states)) + 0.5) / FRAME_RATE * cfg.frame_rate + 0.5).astype(int)
        inside = k < n_frames
        np.add.at(rows.T, k[inside], share[inside])
        rows /= np.maximum(np.bincount(k[inside], minlength=n_frames), 1)
    return rows


def windows(fmap: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut a heat map into model inputs (n, n_coeffs, window_frames, 1) and their start times in seconds."""
    starts = window_starts(fmap.shape[1], cfg.window_frames, cfg.hop_frames)
    batch = np.stack([fmap[:, s:s + cfg.window_frames] for s in starts]) if len(starts) else \
        np.zeros((0, fmap.shape[0], cfg.window_frames), np.float32)
    return batch[..., None], starts / cfg.frame_rate


def window_times(n_samples: int, cfg: FeatureConfig) -> np.ndarray:
    """Start times (s) of the windows `windows` cuts from a recording of `n_samples` at cfg.sample_rate (the
    heat map has a frame centred on every hop_length-th sample)."""
    return window_starts(n_samples // cfg.hop_length + 1, cfg.window_frames, cfg.hop_frames) / cfg.frame_rate


def model_input(prepared, cfg: FeatureConfig, kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A frontend.Prepared recording -> (windows, their start times): what the network is fed. `kept`: see
    feature_map."""
    return windows(feature_map(prepared.cleaned, cfg, prepared.beats, kept), cfg)
