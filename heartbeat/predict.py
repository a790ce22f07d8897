"""One recording in, one answer out: audio -> quality gate and beats -> windows -> model -> Result."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import numpy as np

from .audio import WIDEBAND_RATE, AudioError, load_audio
from .features import feature_map, windows
from .model import HeartModel, load_model
from .quality import NOISY_CAUTION, analyse

LABELS = ("normal", "abnormal", "no_heartbeat")


@dataclass
class Result:
    label: str                        # normal | abnormal | no_heartbeat
    confidence: float                 # calibrated probability that `label` is right (gate score for no_heartbeat)
    p_abnormal: float | None          # calibrated, None when no usable heart sound
    threshold: float                  # p_abnormal at or above this is called abnormal (chosen for MAcc)
    heart_rate_bpm: float | None
    quality: str                      # good | noisy (judged, with a caution) | unusable (no heartbeat)
    quality_score: float              # 0..1: how sure the gate is that a heart sound is present
    quality_reason: str | None        # why unusable, in plain words
    caution: str | None               # said wherever the answer is shown (noisy recordings)
    duration_s: float
    windows: list[dict] = field(default_factory=list)   # start_s, end_s, p_abnormal per analysis window
    s1_times: list[float] = field(default_factory=list)
    s2_times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def classify(wideband: np.ndarray, model: HeartModel) -> Result:
    """Judge a recording at WIDEBAND_RATE (what `read` returns)."""
    cfg = model.features
    measurements, beats, cleaned, audio = analyse(wideband, cfg, model.segmenter)
    quality = model.quality.judge(measurements)
    duration = len(audio) / cfg.sample_rate
    common = dict(threshold=model.bundle.threshold, quality=quality.level, quality_score=round(quality.score, 3),
                  quality_reason=quality.reason, caution=NOISY_CAUTION if quality.level == "noisy" else None,
                  duration_s=round(duration, 2))
    if not quality.usable:
        result = Result("no_heartbeat", round(1 - quality.score, 3), None, heart_rate_bpm=None, **common)
    else:
        batch, starts = windows(feature_map(cleaned, cfg, beats), cfg)
        logits = model.window_logits(batch)
        p = model.p_abnormal(logits)
        label = "abnormal" if p >= model.bundle.threshold else "normal"
        per_window = model.bundle.calibration(logits)
        result = Result(label, round(p if label == "abnormal" else 1 - p, 3), round(p, 3),
                        heart_rate_bpm=beats.heart_rate_bpm, **common,
                        windows=[{"start_s": round(float(s), 2), "end_s": round(float(s) + cfg.window_s, 2),
                                  "p_abnormal": round(float(q), 3)} for s, q in zip(starts, per_window)],
                        s1_times=beats.s1_times, s2_times=beats.s2_times)
    return result


def read(source, model: HeartModel, **limits) -> np.ndarray:
    """Decode a file or bytes for `classify`: at WIDEBAND_RATE, at least one analysis window long."""
    return load_audio(source, WIDEBAND_RATE, min_seconds=model.features.window_s, **limits)


def predict_files(paths: Iterable[str], model: HeartModel | None = None, model_path=None) -> Iterator[dict]:
    """One dict per file: the Result's fields plus `path`, or `path` and `error` when it cannot be judged."""
    model = model or load_model(model_path)
    for path in paths:
        try:
            yield {"path": str(path)} | classify(read(path, model), model).to_dict()
        except AudioError as e:
            yield {"path": str(path), "error": e.message, "error_code": e.code}
