"""Training: cached window features, device-mimicking augmentation, balanced sampling, and the
threshold and calibration chosen on recordings the network never trained on.

The PhysioNet-challenge contract in three functions: `train_model` (table -> Trained), `save_bundle` /
`load_model` (model.py), and `classify` (predict.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from .cache import featurize, transfer_target
from .datasets import NOT_AUDIBLE_DBS
from .features import FeatureConfig
from .model import Bundle, Calibration, build_cnn, filterbank_init



@dataclass
class TrainSettings:
    variant: str = "cnn"              # "cnn" (ours) or "baseline" (the original notebooks' network)
    epochs: int = 10
    windows_per_epoch: int = 8192    # drawn afresh each epoch by the sampling weights
    batch_size: int = 128
    learning_rate: float = 1e-3
    augment_copies: int = 2           # augmented renditions of each training recording, besides the clean one
    augmentation: str = "classic"     # "classic" (band limits, gain, noise), "channel", "phone" (heartbeat.augment), "overlay" (cache.with_artifact)
    spec_augment: bool = False        # per drawn window: time reversal (p=0.5), one coefficient band and one time span masked
    balance: str = "database"         # "database": every (database, label) cell weighted alike; "class": labels only
    pretrain_epochs: int = 0          # contrastive pretraining of the convolutional trunk first (pretrain_contrastive)
    val_fraction: float = 0.15        # recordings held out for early stopping, threshold and calibration
    # "diagnosis": every database's own label; "audible": the abnormal recordings of NOT_AUDIBLE_DBS (mostly
    # coronary disease with no sound to hear) leave training and validation, their normals stay.
    target: str = "diagnosis"
    freq_mixstyle: float = 0.0        # probability that a training batch has its per-band statistics mixed
    width: float = 1.0                # the convolutions' filters times this (a larger network: is capacity the limit?)
    # Domain-adversarial training (Ganin et al. 2016): a head guesses each window's database from the pooled
    # features through a gradient reversal of this strength, so the trunk unlearns what names the device.
    domain_adversarial: float = 0.0
    # Synthetic diastolic murmurs (murmurs.py) placed into a copy of every normal training recording and
    # labelled abnormal; each copy weighs this share of its recording's own weight in the sampling.
    diastolic: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class Trained:
    keras_model: object
    bundle: Bundle
    history: list = field(default_factory=list)   # per epoch: loss, val AUROC, val MAcc


# ---------------------------------------------------------------- scoring helpers ----

def recording_logits(keras_model, X: np.ndarray, rec: np.ndarray, n_recordings: int,
                     hows: tuple[str, ...] = ("mean",)) -> dict[str, np.ndarray]:
    """Per recording, its windows' logits aggregated each way in `hows` (NaN for recordings too short to hold
    one window): "mean" (what the bundle does) and "median" (measured beside it: a minority of windows under
    an artifact cannot move it). The network runs once whatever the number of ways."""
    z = np.concatenate([keras_model(X[i:i + 2048].astype(np.float32), training=False).numpy()[:, 0]
                        for i in range(0, len(X), 2048)]) if len(X) else np.zeros(0)
    out = {}
    if "mean" in hows:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["mean"] = np.bincount(rec, weights=z, minlength=n_recordings) / np.bincount(rec, minlength=n_recordings)
    if "median" in hows:
        order = np.argsort(rec, kind="stable")
        recs, first = np.unique(rec[order], return_index=True)
        out["median"] = np.full(n_recordings, np.nan)
        out["median"][recs] = [np.median(part) for part in np.split(z[order], first[1:])]
    return out


def choose_threshold(y: np.ndarray, p: np.ndarray, weight=None) -> float:
    """The probability cut that maximises MAcc = (Se + Sp) / 2 on held-out recordings, weighted as in
    training so that one large database does not choose the cut for all of them."""
    from sklearn.metrics import roc_curve
    fpr, tpr, thr = roc_curve(y, p, sample_weight=weight)
    best = np.argmax(tpr - fpr)
    return float(np.clip(thr[best], 1e-6, 1 - 1e-6))


def fit_calibration(y: np.ndarray, z: np.ndarray) -> Calibration:
    """Platt scaling on held-out recording logits (a near-unregularised 1-D logistic regression)."""
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression(C=1e4).fit(z.reshape(-1, 1), y)
    return Calibration(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))


def sampling_weights(table: pd.DataFrame, balance: str) -> np.ndarray:
    """Per-recording weight. "database": each (database, label) cell counts alike within its database,
    and databases by the square root of their size, so training-e (two thirds of PhysioNet, and recorded
    on one device for normals and another for abnormals) cannot dominate. "class": labels alike."""
    if balance == "class":
        return (1.0 / table.groupby("label")["label"].transform("size")).to_numpy()
    cell = table.groupby(["database", "label"])["label"].transform("size")
    labels_in_db = table.groupby("database")["label"].transform("nunique")
    db_size = table.groupby("database")["label"].transform("size")
    return (np.sqrt(db_size) / (labels_in_db * cell)).to_numpy()


def _val_split(table: pd.DataFrame, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import StratifiedGroupKFold
    n_splits = max(2, int(round(1 / fraction)))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    tr, va = next(cv.split(table, table["database"] + "/" + table["label"], groups=table["group"]))
    return tr, va


# ---------------------------------------------------------------- training ----

def fit_windows(X, y, weight, cfg: FeatureConfig, settings: TrainSettings, val_score=None, views=None, domain=None):
    """Fit a fresh network on windows X with labels y; each epoch draws `windows_per_epoch` windows with
    probability proportional to `weight`. Keeps the epoch with the best `val_score(model)` (if given).
    With settings.pretrain_epochs, the trunk is first pretrained on `views` (see pretrain_contrastive);
    with settings.domain_adversarial, `domain` (each window's database code) is what the trunk must hide."""
    import keras
    p = np.asarray(weight, np.float64) / np.sum(weight)
    class_weight = None
    if settings.variant == "baseline":   # the original: windows drawn uniformly, class weights on the loss
        frac = float(np.mean(y))
        class_weight = {0: 0.5 / (1 - frac), 1: 0.5 / frac}
    model = build_cnn(cfg.input_shape, settings.variant, settings.seed, cfg.state_rows, settings.freq_mixstyle,
                      filterbank_init(cfg) if cfg.kind == "spectrum" else None, cfg.norm_floor_db, settings.width)
    history = []
    if settings.pretrain_epochs and views is not None:
        history = pretrain_contrastive(model, X, views, np.asarray(weight)[views[:, 0]], settings)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    fitted, targets = model, lambda idx: y[idx]
    if settings.domain_adversarial and domain is not None:
        fitted, strength = domain_adversarial_model(model, int(domain.max()) + 1, settings)
        targets = lambda idx: (y[idx], domain[idx])
    rng = np.random.default_rng(settings.seed)
    best = (-np.inf, None)
    for epoch in tqdm(range(settings.epochs), desc=f"training {settings.variant}", leave=False, disable=None):
        idx = rng.choice(len(X), size=settings.windows_per_epoch, p=p)
        batch = X[idx].astype(np.float32)
        if settings.spec_augment:
            batch = spec_augment(batch, rng)
        if fitted is not model:   # DANN's schedule: the reversal grows from 0 as the label head settles
            strength.assign(settings.domain_adversarial * (2 / (1 + np.exp(-10 * epoch / settings.epochs)) - 1))
        h = fitted.fit(batch, targets(idx), batch_size=settings.batch_size, epochs=1, verbose=0,
                       class_weight=class_weight, shuffle=True)
        entry = {"epoch": epoch + 1, "loss": float(h.history["loss"][-1])}
        if val_score is not None:
            entry["val_auroc"] = val_score(model)
            if entry["val_auroc"] > best[0]:
                best = (entry["val_auroc"], model.get_weights())
        history.append(entry)
    if best[1] is not None:
        model.set_weights(best[1])
    return model, history


def domain_adversarial_model(model, n_domains: int, settings: TrainSettings):
    """`model` with a second output: the database guessed from the pooled features through a gradient
    reversal layer (Ganin et al., JMLR 2016). Shares every layer with `model`, so fitting it trains `model`;
    returns it and the reversal's strength (a variable the epoch loop raises)."""
    import keras
    import tensorflow as tf
    strength = tf.Variable(0.0, trainable=False)

    class GradientReversal(keras.layers.Layer):
        def call(self, x):
            @tf.custom_gradient
            def reverse(v):
                return tf.identity(v), lambda dy: -strength * dy
            return reverse(x)

    pooled = next(layer.output for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    h = keras.layers.Dense(64, activation="relu")(GradientReversal()(pooled))
    guess = keras.layers.Dense(n_domains)(h)
    fitted = keras.Model(model.input, [model.output, guess])
    fitted.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                   loss=[keras.losses.BinaryCrossentropy(from_logits=True),
                         keras.losses.SparseCategoricalCrossentropy(from_logits=True)])
    return fitted, strength


def pretrain_contrastive(model, X, views: np.ndarray, weight, settings: TrainSettings,
                         temperature: float = 0.2) -> list[dict]:
    """SimCLR (Chen et al. 2020) on the network's trunk, labels unused: two renditions of one window
    (the clean recording and its device-mimicking copies, a row of `views`) are a positive pair, every
    other window in the batch a negative, so the trunk learns what stays when the recording chain
    changes. Rows drawn by `weight` (databases balanced as in training); the projection head is dropped."""
    import keras
    import tensorflow as tf
    trunk = keras.Model(model.input, next(layer.output for layer in model.layers
                                          if isinstance(layer, keras.layers.GlobalAveragePooling2D)))
    head = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32)])
    optimizer = keras.optimizers.Adam(settings.learning_rate)

    @tf.function
    def step(a, b):
        with tf.GradientTape() as tape:
            z = tf.math.l2_normalize(head(trunk(tf.concat([a, b], 0), training=True)), axis=1)
            n = tf.shape(a)[0]
            sim = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * tf.eye(2 * n)
            partner = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], 0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partner, sim))
        variables = trunk.trainable_variables + head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(settings.seed + 1)
    p = np.asarray(weight, np.float64) / np.sum(weight)
    history = []
    for epoch in tqdm(range(settings.pretrain_epochs), desc="contrastive pretraining", leave=False, disable=None):
        rows = views[rng.choice(len(views), size=settings.windows_per_epoch // 2, p=p)]
        pick = np.argsort(rng.random(rows.shape), axis=1)[:, :2]          # two different renditions per row
        pairs = np.take_along_axis(rows, pick, axis=1)
        losses = [float(step(X[pairs[i:i + settings.batch_size, 0]].astype(np.float32),
                             X[pairs[i:i + settings.batch_size, 1]].astype(np.float32)))
                  for i in range(0, len(pairs), settings.batch_size)]
        history.append({"pretrain_epoch": epoch + 1, "contrastive_loss": float(np.mean(losses))})
    return history


def _position(rec: np.ndarray) -> np.ndarray:
    """Each window's index within its recording (`rec` sorted, as featurize returns it)."""
    first = np.r_[0, np.flatnonzero(np.diff(rec)) + 1]
    return np.arange(len(rec)) - np.repeat(first, np.diff(np.r_[first, len(rec)]))


def _renditions(recs: list[np.ndarray]) -> np.ndarray:
    """(n, copies): indices into the concatenated windows of the copies, one row per (recording, window
    position) that every copy has: the same stretch of sound through each recording chain."""
    keys = [r.astype(np.int64) * 100_000 + _position(r) for r in recs]
    common = keys[0]
    for k in keys[1:]:
        common = np.intersect1d(common, k)
    offsets = np.r_[0, np.cumsum([len(k) for k in keys])[:-1]]
    return np.column_stack([o + np.searchsorted(k, common) for o, k in zip(offsets, keys)])


def spec_augment(windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, coeffs, frames, 1) windows, each time-reversed with probability 0.5 (reported to help most across
    heart-sound databases, Ballas et al. 2024) and with up to 3 coefficients and up to 10% of its frames set
    to the window's mean (SpecAugment's masks; the features are standardised, so the mean is about 0)."""
    out = windows.copy()
    n, coeffs, frames = out.shape[:3]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    for i in range(n):
        c0, cw = rng.integers(0, coeffs), rng.integers(0, 4)
        t0, tw = rng.integers(0, frames), rng.integers(0, frames // 10 + 1)
        out[i, c0:c0 + cw] = 0.0
        out[i, :, t0:t0 + tw] = 0.0
    return out


def heard_transfers(parts: list, paths: list[str], heard: set[str], seed: int) -> list:
    """`parts` (copy 0 clean, then "transfer" copies: (windows, recording index) each) without the copies
    re-coloured as a database outside `heard`: a held-out database's device must not reach training."""
    kept = [parts[0]]
    for c, (Xc, rc) in enumerate(parts[1:], 1):
        aimed = np.array([transfer_target(p, seed, c) in heard for p in paths])[rc]
        kept.append((Xc[aimed], rc[aimed]))
    return kept


def train_model(table: pd.DataFrame, cfg: FeatureConfig, settings: TrainSettings, log=print) -> Trained:
    """Train on the labelled (normal/abnormal) rows of `table` at least one window long; hold out a
    group-wise validation part for early stopping, calibration and the decision threshold."""
    table = table[table["label"].isin(["normal", "abnormal"]) & (table["duration_s"] >= cfg.window_s)]
    if settings.target == "audible":
        table = table[~(table["database"].isin(NOT_AUDIBLE_DBS) & (table["label"] == "abnormal"))]
    elif settings.target != "diagnosis":
        raise ValueError(f"unknown target {settings.target!r}")
    table = table.reset_index(drop=True)
    t0 = time.time()
    tr, va = _val_split(table, settings.val_fraction, settings.seed)
    y_all = (table["label"] == "abnormal").to_numpy(np.float32)
    paths = table["path"].tolist()

    # Windows: the clean copy of every recording, plus augmented copies of the training recordings only.
    X0, rec0 = featurize(paths, cfg, 0, settings.seed)
    parts = [(X0, rec0)] + [featurize(paths, cfg, c, settings.seed, augmentation=settings.augmentation)
                            for c in range(1, settings.augment_copies + 1)]
    if settings.augmentation == "transfer":
        parts = heard_transfers(parts, paths, set(table["database"]), settings.seed)
    in_train = np.isin(np.arange(len(table)), tr)
    X = np.concatenate([Xc[in_train[rc]] for Xc, rc in parts])
    recs = [rc[in_train[rc]] for _, rc in parts]
    rec = np.concatenate(recs)
    val_mask = ~in_train[rec0]
    Xv, recv = X0[val_mask], rec0[val_mask]
    # Per-epoch model selection looks at up to 4 windows per validation recording (cheap on 2 cores);
    # calibration and the threshold then use all of them.
    quick = _position(recv) < 4

    rec_weight = sampling_weights(table, settings.balance) if settings.variant == "cnn" else np.ones(len(table))
    win_per_rec = np.bincount(rec, minlength=len(table))
    domain = pd.factorize(table["database"], sort=True)[0]
    y_win, w_win, d_win = y_all[rec], rec_weight[rec] / win_per_rec[rec], domain[rec]
    if settings.diastolic:     # murmured copies of the training normals, labelled abnormal
        normals = np.flatnonzero(in_train & (y_all == 0))
        Xs, rs = featurize([paths[i] for i in normals], cfg, 1, settings.seed, augmentation="diastolic")
        src = normals[rs]
        X = np.concatenate([X, Xs])
        y_win = np.r_[y_win, np.ones(len(rs), np.float32)]
        w_win = np.r_[w_win, settings.diastolic * rec_weight[src] / np.bincount(rs)[rs]]
        d_win = np.r_[d_win, domain[src]]
    yv = y_all[va]

    def val_auroc(model) -> float:
        from sklearn.metrics import roc_auc_score
        return float(roc_auc_score(yv, recording_logits(model, Xv[quick], recv[quick], len(table))["mean"][va]))

    model, history = fit_windows(X, y_win, w_win, cfg, settings, val_auroc,
                                 views=_renditions(recs) if len(recs) > 1 else None, domain=d_win)
    zv = recording_logits(model, Xv, recv, len(table))["mean"][va]
    calibration = fit_calibration(yv, zv)
    threshold = choose_threshold(yv, calibration(zv), rec_weight[va])
    info = {"variant": settings.variant, "settings": settings.to_dict(), "train_seconds": round(time.time() - t0, 1),
            "train_recordings": int(len(tr)), "val_recordings": int(len(va)), "val_auroc": max(h.get("val_auroc", -1) for h in history),
            "databases": sorted(table["database"].unique()), "parameters": int(model.count_params())}
    log(f"trained {settings.variant} on {len(tr)} recordings in {info['train_seconds']} s, val AUROC {info['val_auroc']:.3f}")
    return Trained(model, Bundle(cfg, calibration, threshold, info), history)


def score_table(trained: Trained, table: pd.DataFrame, copy: int = 0, seed: int = 0,
                augmentation: str = "classic", hows: tuple[str, ...] = ("mean",)) -> dict[str, np.ndarray]:
    """Calibrated p_abnormal for each row of `table`, its windows aggregated each way in `hows` (recording_logits;
    NaN where the recording is shorter than a window, or has no windows in that copy); `copy` > 0: an augmented
    copy (cache.featurize), e.g. a synthetic murmur's."""
    X, rec = featurize(table["path"].tolist(), trained.bundle.features, copy, seed, augmentation=augmentation)
    return {how: trained.bundle.calibration(z) for how, z in
            recording_logits(trained.keras_model, X, rec, len(table), hows).items()}
