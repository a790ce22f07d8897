"""Training's windows, made once per recording and kept in a user cache directory.

Each recording goes through the same front end as serving (decode at the model's rate, then
frontend.prepare and features.model_input), with training's device-mimicking copies applied inside it.
One file per recording, keyed by everything that changes the result, so any subset of recordings (a fold,
an external set) reuses what was computed before.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import augment, murmurs, negatives
from .audio import SAMPLE_RATE, load_audio
from .beats import Segmenter, find_beats
from .features import FeatureConfig, model_input
from .frontend import clean, prepare
from .model import DEFAULT_MODEL_DIR


def cache_dir() -> Path:
    """$HEARTBEAT_CACHE, else the user's cache directory ($XDG_CACHE_HOME or ~/.cache)/heartbeat: never
    inside the installed package or the source checkout."""
    if os.environ.get("HEARTBEAT_CACHE"):
        return Path(os.environ["HEARTBEAT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heartbeat"


FEATURE_VERSION = 5  # bump when decoding, clean() or augment() changes, so cached features are recomputed
AUGMENTATIONS = {"classic": augment.classic, "channel": lambda x, sr, rng: augment.channel(x, sr, rng, snr_db=(5, 30)),
                 "phone": augment.phone}


@lru_cache(maxsize=1)
def _segmenter() -> Segmenter:
    """The segmenter the bundle will ship, so that training's cycle states are the ones inference will see."""
    return Segmenter.load(DEFAULT_MODEL_DIR / "segmenter.json")


def with_diastolic_murmur(kind: str, cfg: FeatureConfig, rng: np.random.Generator):
    """"diastolic" (a random murmur), or "diastolic:KIND:GRADE": a synthetic diastolic murmur placed by the
    segmenter's beats of the recording (murmurs.py), then another device's chain (`channel`)."""
    _, *spec = kind.split(":")
    murmur_kind, grade = (spec[0], int(spec[1])) if spec else (None, None)

    def make(audio, rate):
        states = find_beats(clean(audio, cfg), rate, _segmenter()).states
        with_murmur = None if states is None else murmurs.random_murmur(audio, rate, states, rng, murmur_kind, grade)
        if with_murmur is None:
            raise murmurs.NoCycles
        return AUGMENTATIONS["channel"](with_murmur, rate, rng)
    return make


# Training's `overlay` copies: half of them carry speech or movement (negatives.OVERLAY_KINDS) over a stretch,
# from as loud as the heart sound plus 5 dB to 15 dB below it, keeping the recording's label: an artifact is
# not heart disease. The louder end is where the gate and the artifact screen should answer "record again".
OVERLAY_SHARE, OVERLAY_RATIO_DB = 0.5, (-5.0, 15.0)


def with_artifact(kind: str, rng: np.random.Generator):
    """"overlay" (training): a random artifact over half the copies, then another device's chain (`channel`);
    "overlay:KIND:RATIO" (evaluate.overlay_predictions): that artifact at that heart-to-artifact ratio alone."""
    _, *spec = kind.split(":")

    def make(audio, rate):
        if spec:
            return negatives.overlay(audio, rate, spec[0], float(spec[1]), int(rng.integers(2**31)))[0]
        if rng.random() < OVERLAY_SHARE:
            which = negatives.OVERLAY_KINDS[rng.integers(len(negatives.OVERLAY_KINDS))]
            audio = negatives.overlay(audio, rate, which, rng.uniform(*OVERLAY_RATIO_DB), int(rng.integers(2**31)))[0]
        return AUGMENTATIONS["channel"](audio, rate, rng)
    return make


@lru_cache(maxsize=1)
def device_spectra(per_db: int = 40) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each database's long-term average spectrum (dB, its mean over 25-800 Hz removed): Welch spectra of
    `per_db` recordings drawn at random (fixed seed), averaged. Computed once from the data, then kept in
    the cache folder."""
    from scipy import signal
    from .datasets import load_table
    path = cache_dir() / f"device_spectra-{per_db}.json"
    if not path.exists():
        table = load_table()
        spectra = {}
        for db, rows in table.groupby("database"):
            dbs = []
            for p in rows.sample(min(per_db, len(rows)), random_state=0)["path"]:
                freqs, power = signal.welch(load_audio(p, SAMPLE_RATE, min_seconds=0), SAMPLE_RATE, nperseg=256)
                dbs.append(10 * np.log10(power + 1e-20))
            band = (freqs >= 25) & (freqs <= 800)
            mean = np.mean(dbs, axis=0)
            spectra[db] = (mean - mean[band].mean()).tolist()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps({"freqs": freqs.tolist(), "spectra": spectra}))
        os.replace(partial, path)
    d = json.loads(path.read_text())
    return np.array(d["freqs"]), {db: np.array(v) for db, v in d["spectra"].items()}


def transfer_target(path: str, seed: int, copy: int) -> str:
    """The database whose device a "transfer" copy of `path` is re-coloured as: any database but its own,
    drawn apart from the copy's other random choices so that training can tell which copies to drop."""
    from .datasets import ALL_DBS, database_of
    others = sorted(db for db in ALL_DBS if db != database_of(path))
    return others[np.random.default_rng([seed, copy, zlib.crc32(path.encode()), 1]).integers(len(others))]


def transfer(path: str, seed: int, copy: int, rng: np.random.Generator):
    """Device transfer (the field's device impulse-response augmentation, built from our nine devices):
    the recording re-coloured from its database's long-term spectrum to another's, then `channel`."""
    from .datasets import database_of
    freqs, spectra = device_spectra()
    gain_db = spectra[transfer_target(path, seed, copy)] - spectra[database_of(path)]
    return lambda audio, rate: AUGMENTATIONS["channel"](augment.recolour(audio, rate, freqs, gain_db), rate, rng)


def _featurize_one(job) -> np.ndarray:
    path, cfg, copy, seed, out, kind = job
    augment_copy = None
    if copy > 0:
        rng = np.random.default_rng([seed, copy, zlib.crc32(path.encode())])
        augment_copy = (with_diastolic_murmur(kind, cfg, rng) if kind.startswith("diastolic") else
                        with_artifact(kind, rng) if kind.startswith("overlay") else
                        transfer(path, seed, copy, rng) if kind == "transfer" else
                        lambda audio, rate: AUGMENTATIONS[kind](audio, rate, rng))  # noqa: E731
    try:
        prepared = prepare(load_audio(path, cfg.sample_rate, min_seconds=0), cfg, _segmenter(), augment_copy)
    except murmurs.NoCycles:      # too few heart cycles to place a murmur in: no windows from this copy
        return _save(out, np.zeros((0, *cfg.input_shape), np.float16))
    return _save(out, model_input(prepared, cfg)[0].astype(np.float16))


def _save(out: Path, windows: np.ndarray) -> np.ndarray:
    """Written whole or not at all: another process (a second test worker, a parallel run) may read it."""
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    with partial.open("wb") as f:
        np.save(f, windows)
    os.replace(partial, out)
    return windows


def in_workers(fn, jobs: list, workers: int, desc: str) -> list:
    """fn(job) for every job, in order, in fresh worker processes, with progress. Fresh processes, not forks:
    a fork of a process that has run TensorFlow can abort when the child collects TensorFlow's objects."""
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, jobs, chunksize=8), total=len(jobs), desc=desc, leave=False, disable=None))


def cached_table(folder: str, prefix: str, sources: list[bytes], make):
    """The table `make()` returns, made once and kept as parquet in the cache folder, under a key of `sources`
    (the bytes of whatever shapes its rows: code, the segmenter's weights, a version); written whole or not at
    all."""
    import pandas as pd
    out = cache_dir() / folder / f"{prefix}-{hashlib.sha1(b''.join(sources)).hexdigest()[:12]}.parquet"
    if out.exists():
        return pd.read_parquet(out)
    frame = make()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    frame.to_parquet(partial)
    os.replace(partial, out)
    return frame


def featurize(paths, cfg: FeatureConfig, copy: int = 0, seed: int = 0, workers: int = 2,
              augmentation: str = "classic") -> tuple[np.ndarray, np.ndarray]:
    """Windows of every recording (copy 0 clean, 1.. augmented) and each window's recording index."""
    paths = [str(p) for p in paths]
    defaults = {"cycle_states": False, "cycle_source": "viterbi", "norm_floor_db": 0.0}     # settings added later: older caches stay valid
    settings = {k: v for k, v in cfg.to_dict().items() if k not in defaults or v != defaults[k]}
    key = [settings, copy, seed if copy else 0, FEATURE_VERSION]
    key = key + [augmentation] if copy and augmentation != "classic" else key
    if copy and augmentation.startswith("diastolic"):     # the synthetic murmurs' own code is part of them
        key.append(hashlib.sha1(Path(murmurs.__file__).read_bytes()).hexdigest())
    if copy and augmentation.startswith("overlay"):       # and the artifacts' theirs
        key.append(hashlib.sha1(Path(negatives.__file__).read_bytes()).hexdigest())
    if cfg.cycle_states:
        key.append(hashlib.sha1((DEFAULT_MODEL_DIR / "segmenter.json").read_bytes()).hexdigest())
    key = json.dumps(key)
    folder = cache_dir() / "features" / hashlib.sha1(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / (hashlib.sha1(p.encode()).hexdigest()[:20] + ".npy") for p in paths]
    todo = [(p, cfg, copy, seed, f, augmentation) for p, f in zip(paths, files) if not f.exists()]
    if todo and augmentation == "transfer":
        device_spectra()          # once, here, before the workers read it
    if todo:
        in_workers(_featurize_one, todo, workers, f"features ({'clean' if copy == 0 else f'{augmentation} #{copy}'})")
    parts = [np.load(f) for f in files]
    X = np.concatenate(parts) if parts else np.zeros((0, *cfg.input_shape), np.float16)
    rec = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    return X, rec
