"""The network, and the model bundle the app ships: one folder, one door (`load_model`).

A bundle is `model.tflite` (the CNN, run through LiteRT: ~1 ms a window, no TensorFlow at serving),
`bundle.json` (feature settings, calibration, decision threshold, training facts), `segmenter.json` (the
S1/S2 segmenter, fitted by scripts/fit_segmenter.py), `quality.json` (the quality gate, fitted by
scripts/quality_gate.py), and optionally `describe.json` (murmur timing and loudness, scripts/fit_describe.py),
`artifacts.json` (speech and handling set aside, scripts/fit_artifacts.py) and `diastolic.json` (the second
listener for diastolic murmurs, scripts/fit_diastolic.py). The feature settings travel with the weights, so
inference cannot drift from training.
"""
from __future__ import annotations

import json
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import FeatureConfig, mel_filters, spectrum_bins
from .beats import Segmenter
from .artifacts import NETWORK as ARTIFACT_NETWORK, ArtifactDetector
from .describe import Describer
from .diastolic import DiastolicListener
from .litert import Network, to_tflite
from .quality import QualityGate

# The bundled model is package data (heartbeat/bundled; models/heartbeat in the checkout points there), so
# an installed wheel finds it wherever site-packages is.
DEFAULT_MODEL_DIR = Path(str(resources.files("heartbeat") / "bundled"))


def build_cnn(input_shape, variant: str = "cnn", seed: int = 0, state_rows: int = 0, freq_mixstyle: float = 0.0,
              filterbank: np.ndarray | None = None, norm_floor_db: float = 3.0, width: float = 1.0):
    """Keras CNN on one heat-map window. Output: one logit, positive = abnormal.

    "baseline": the original notebooks' network (4 blocks of 2x2 conv + 2x2 max-pool + dropout 0.2,
    global average pooling, dense softmax over two classes), kept to measure what ours improves on.
    "cnn": ours: 3x3 convolutions with batch norm (the device's gain and tilt vary; BN keeps every block
    in range), dropout growing with depth, global average pooling over time *and* frequency.
    `state_rows`: the input's last rows are the cycle states (FeatureConfig.cycle_states); each becomes a
    channel repeated over every coefficient, so the first convolution sees sound and cycle phase together.
    `freq_mixstyle`: the probability of Freq-MixStyle on the heat map while training (identity at inference).
    `filterbank`: (bins, bands) starting weights of a learnt filterbank over a "spectrum" heat map
    (LearnableFilterbank); `width`: the convolutions' filters times this (the capacity check).
    """
    import keras
    from keras import layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape)
    x = inputs
    if state_rows:
        n = input_shape[0] - state_rows
        heat = layers.Cropping2D(((0, state_rows), (0, 0)))(inputs)
        states = layers.Permute((3, 2, 1))(layers.Cropping2D(((n, 0), (0, 0)))(inputs))  # (1, frames, states)
        if filterbank is not None:
            heat = LearnableFilterbank(filterbank, norm_floor_db)(heat)
            n = filterbank.shape[1]
        if freq_mixstyle:
            heat = FreqMixStyle(freq_mixstyle, seed=seed)(heat)
        x = layers.Concatenate()([heat, layers.UpSampling2D((n, 1))(states)])
    else:
        if filterbank is not None:
            x = LearnableFilterbank(filterbank, norm_floor_db)(x)
        if freq_mixstyle:
            x = FreqMixStyle(freq_mixstyle, seed=seed)(x)
    if variant == "baseline":
        for filters in (16, 32, 64, 128):
            x = layers.Conv2D(filters, 2, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
            x = layers.Dropout(0.2)(x)
        x = layers.GlobalAveragePooling2D()(x)
        probs = layers.Dense(2, activation="softmax")(x)
        # The same two-class softmax expressed as one logit, so both variants score alike.
        logit = layers.Lambda(lambda p: keras.ops.log(p[:, 1:2] + 1e-7) - keras.ops.log(p[:, 0:1] + 1e-7))(probs)
        return keras.Model(inputs, logit, name="baseline")
    if variant != "cnn":
        raise ValueError(f"unknown variant {variant!r}")
    for filters, drop in ((16, 0.1), (32, 0.1), (48, 0.2), (64, 0.3)):
        x = layers.Conv2D(int(round(filters * width)), 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.SpatialDropout2D(drop)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    logit = layers.Dense(1)(x)
    return keras.Model(inputs, logit, name="cnn")


def _freq_mixstyle_class():
    import keras
    from keras import ops

    class FreqMixStyle(keras.layers.Layer):
        """Freq-MixStyle (Kim et al. 2022; Schmid et al., DCASE 2022): while training, with probability `p`
        per batch, each window's per-band mean and spread (over time) are replaced by a Beta(alpha, alpha)
        mix of its own and another window's, so a device's colouring becomes noise the network must ignore.
        Balanced sampling draws windows of every database, so the partner is mostly another device's."""

        def __init__(self, p: float = 0.7, alpha: float = 0.3, seed: int = 0, **kwargs):
            super().__init__(**kwargs)
            self.p, self.alpha = float(p), float(alpha)
            self.seeds = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            mean = ops.mean(x, axis=(2, 3), keepdims=True)             # (batch, bands, 1, 1)
            std = ops.sqrt(ops.var(x, axis=(2, 3), keepdims=True) + 1e-6)
            n = ops.shape(x)[0]
            lam = keras.random.beta((n, 1, 1, 1), self.alpha, self.alpha, seed=self.seeds)
            partner = keras.random.shuffle(ops.arange(n), seed=self.seeds)
            mixed_mean = lam * mean + (1 - lam) * ops.take(mean, partner, axis=0)
            mixed_std = lam * std + (1 - lam) * ops.take(std, partner, axis=0)
            mixed = (x - mean) / std * mixed_std + mixed_mean
            on = keras.random.uniform((), seed=self.seeds) < self.p
            return ops.where(on, mixed, x)

    return FreqMixStyle


def FreqMixStyle(p: float, seed: int = 0):
    return _freq_mixstyle_class()(p, seed=seed)


def LearnableFilterbank(init: np.ndarray, norm_floor_db: float = 3.0):
    """A filterbank the network learns (Sainath et al. 2013; for heart sounds across devices, a learnable
    front end was reported to raise MAcc on unseen domains): the "spectrum" heat map's bins (dB, each bin's
    recording mean removed: features._spectrum_db) back to power, summed by non-negative weights that start
    as the mel triangles (each scaled to sum 1), to dB, then each band standardised over the window (spread
    at least `norm_floor_db`), as the log-mel recipes standardise each band over the recording."""
    import keras
    from keras import ops

    class _LearnableFilterbank(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=init.shape, initializer=keras.initializers.Constant(init),
                                     constraint=keras.constraints.NonNeg(), name="filters")

        def call(self, x):                                            # (batch, bins, frames, 1)
            power = ops.power(10.0, ops.transpose(x[..., 0], (0, 2, 1)) / 10.0)      # (batch, frames, bins)
            db = 10.0 * ops.log10(ops.matmul(power, self.w) + 1e-6)                 # (batch, frames, bands)
            mean = ops.mean(db, axis=1, keepdims=True)
            spread = ops.maximum(ops.sqrt(ops.var(db, axis=1, keepdims=True) + 1e-6), norm_floor_db)  # no NaN gradient at 0
            return ops.expand_dims(ops.transpose((db - mean) / spread, (0, 2, 1)), -1)

    return _LearnableFilterbank(name="learnable_filterbank")


def filterbank_init(cfg: FeatureConfig) -> np.ndarray:
    """(bins, bands): cfg's mel triangles over features.spectrum_bins, each scaled to sum 1."""
    w = mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.band_hz[0], cfg.fmax)[:, spectrum_bins(cfg)]
    return (w / w.sum(axis=1, keepdims=True)).T.astype(np.float32)


@dataclass
class Calibration:
    """Platt scaling of the recording logit: p_abnormal = sigmoid(a * z + b), fitted on held-out data."""
    a: float = 1.0
    b: float = 0.0

    def __call__(self, z):
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(z, np.float64) + self.b)))


@dataclass
class Bundle:
    features: FeatureConfig
    calibration: Calibration
    threshold: float                  # on calibrated p_abnormal; at or above it the answer is "abnormal"
    info: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"features": self.features.to_dict(), "calibration": vars(self.calibration),
                           "threshold": self.threshold, "info": self.info}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Bundle":
        d = json.loads(text)
        return cls(FeatureConfig.from_dict(d["features"]), Calibration(**d["calibration"]),
                   float(d["threshold"]), d.get("info", {}))


PARTS = ("model.tflite", "bundle.json", "segmenter.json", "quality.json")
DESCRIBER = "describe.json"   # optional: a bundle without it answers without murmur timing and loudness
ARTIFACTS = "artifacts.json"  # optional: a bundle without it judges every window (no speech or handling set aside)
DIASTOLIC = "diastolic.json"  # optional: a bundle without it has no second listener for diastolic murmurs


def save_bundle(keras_model, bundle: Bundle, out_dir: str | Path, gate_from: Path = DEFAULT_MODEL_DIR) -> Path:
    """Convert the Keras network to TFLite (float32) and write it beside its settings. The segmenter and
    the quality gate do not depend on the network: those in `gate_from` are carried over when the bundle
    has none."""
    import shutil
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.tflite").write_bytes(to_tflite(keras_model))
    (out / "bundle.json").write_text(bundle.to_json())
    for part in ("segmenter.json", "quality.json", DESCRIBER, ARTIFACTS, ARTIFACT_NETWORK, DIASTOLIC):
        if not (out / part).exists() and (Path(gate_from) / part).exists():
            shutil.copy(Path(gate_from) / part, out / part)
    return out


class HeartModel:
    """A loaded bundle: scores windows with LiteRT and turns window scores into a calibrated probability."""

    def __init__(self, tflite_path: Path, bundle: Bundle, segmenter: Segmenter, quality: QualityGate,
                 describer: Describer | None = None, artifacts: ArtifactDetector | None = None,
                 diastolic: DiastolicListener | None = None):
        self.bundle = bundle
        self.segmenter = segmenter
        self.quality = quality
        self.describer = describer
        self.artifacts = artifacts
        self.diastolic = diastolic
        self.features = bundle.features
        self.network = Network(tflite_path)

    def window_logits(self, windows: np.ndarray) -> np.ndarray:
        """(n, coeffs, frames, 1) heat-map windows -> n logits (positive = abnormal)."""
        return self.network(windows)[:, 0]

    def p_abnormal(self, window_logits: np.ndarray) -> float:
        """Recording-level calibrated probability: the mean window logit through Platt scaling."""
        return float(self.bundle.calibration(np.mean(window_logits)))


def load_model(path: str | Path | None = None) -> HeartModel:
    """The one door to weights: a bundle folder (default: the model shipped with the package)."""
    folder = Path(path) if path is not None else DEFAULT_MODEL_DIR
    missing = [f for f in PARTS if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"No complete model bundle in {folder}: {', '.join(missing)} missing")
    return HeartModel(folder / "model.tflite", Bundle.from_json((folder / "bundle.json").read_text()),
                      Segmenter.load(folder / "segmenter.json"), QualityGate.load(folder / "quality.json"),
                      Describer.load(folder / DESCRIBER) if (folder / DESCRIBER).exists() else None,
                      ArtifactDetector.load(folder / ARTIFACTS) if (folder / ARTIFACTS).exists() else None,
                      DiastolicListener.load(folder / DIASTOLIC) if (folder / DIASTOLIC).exists() else None)
