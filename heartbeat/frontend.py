"""The front end: a decoded recording becomes what every later step reads.

    decoded at the model's rate (audio.load_audio: one resampling step from the file's) -> cleaned -> beats

Serving (predict.classify), training's feature cache, evaluation, the quality gate's fitting and the page's
pictures all start from `prepare`, so none of them can drift from the others. The gate only judges what
this made; the features only read it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .audio import resample
from .beats import FRAME_RATE, Beats, Segmenter, find_beats
from .features import FeatureConfig, in_kept_windows
from .preprocess import bandpass, fade_edges, normalize


@dataclass
class Prepared:
    audio: np.ndarray         # at `sample_rate`, as decoded (the gate reads its level and spectrum)
    cleaned: np.ndarray       # band-passed, ends faded, unit RMS: what beats and features are computed from
    beats: Beats
    sample_rate: int
    # Per 60 ms frame, voicing and energy (quality.voicing_of fills it once: the gate and the artifact windows read it)
    voicing_frames: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def clean(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Band-pass, fade the ends, then unit-RMS: the signal every feature and the beat detector start from."""
    x = bandpass(audio, cfg.sample_rate, *cfg.band_hz, order=cfg.filter_order)
    return normalize(fade_edges(x, cfg.sample_rate))


def prepare(recording: np.ndarray, cfg: FeatureConfig, segmenter: Segmenter | None,
            augment: Callable[[np.ndarray, int], np.ndarray] | None = None, rate: int | None = None) -> Prepared:
    """A recording at cfg.sample_rate (what audio.load_audio gives the app), or at `rate` (a sound mixed at
    another rate: resampled here) -> Prepared. `augment(audio, rate)`: training's device-mimicking copies,
    applied at the model's rate before cleaning, as a device would have. No `segmenter`: the beats are the
    rhythm's periodicity only."""
    audio = resample(recording, rate or cfg.sample_rate, cfg.sample_rate)
    if augment is not None:
        audio = augment(audio, cfg.sample_rate)
    cleaned = clean(audio, cfg)
    return Prepared(audio, cleaned, find_beats(cleaned, cfg.sample_rate, segmenter), cfg.sample_rate)


def judged_part(prepared: Prepared, cfg: FeatureConfig, segmenter: Segmenter | None, kept) -> Prepared:
    """The recording as the network judges it when some windows were set aside (artifacts.screen; `kept`: a
    boolean per window): the segmenter's frame probabilities, which become the heat map's cycle rows, with
    their features scaled on the kept windows' frames alone, so that an artifact set aside moves nothing in
    the windows judged (features.feature_map does the same for the heat map's own rows). Everything else,
    and any recording with nothing set aside, as prepared."""
    probs = prepared.beats.state_probs
    if segmenter is None or probs is None or kept is None or kept.all() or not kept.any():
        return prepared
    frames = in_kept_windows((np.arange(len(probs)) + 0.5) / FRAME_RATE, kept, len(prepared.cleaned), cfg)
    probs = segmenter.state_probs(prepared.cleaned, prepared.sample_rate, frames).astype(np.float32)
    return dataclasses.replace(prepared, beats=dataclasses.replace(prepared.beats, state_probs=probs))
