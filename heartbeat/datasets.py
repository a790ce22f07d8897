"""The real databases as one table, and the splits that keep a recording on one side only.

One row per recording: path, label (normal / abnormal / no_heartbeat / unknown), database (the
sub-database: one site and device each), group (the unit that must not straddle a split), duration_s,
sample_rate, original_label. Reads both the layout in ../shared/data (FLAC + MANIFEST.csv) and the
official downloads (PhysioNet's training-?/*.wav + REFERENCE.csv, Kaggle's set_a/set_b of .wav). CirCor
2022 is read from its MANIFEST.csv; its patients are its groups.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

DATA_ENV = "HEARTBEAT_DATA"
LABELS = ("normal", "abnormal", "no_heartbeat", "unknown")
PHYSIONET_DBS = tuple(f"training-{c}" for c in "abcdef")
PASCAL_DBS = ("set_a", "set_b")
CIRCOR_DBS = ("circor2022",)
ALL_DBS = PHYSIONET_DBS + PASCAL_DBS + CIRCOR_DBS
# Where "abnormal" is mostly a disease that makes no sound: training-b's and training-e's abnormal recordings
# are largely coronary artery disease (field-facts), often with a normal-sounding heart, and training-e's were
# recorded on another device than its normals. A sound-based screen is judged apart on these.
NOT_AUDIBLE_DBS = ("training-b", "training-e")
# Where "abnormal" is something a clinician can hear: valve disease (training-a, c, d, f), a murmur or an
# extra sound (PASCAL), a murmur (CirCor). The screening targets are set on these.
AUDIBLE_DBS = tuple(db for db in ALL_DBS if db not in NOT_AUDIBLE_DBS)
# The four heart-cycle states of CirCor's segmentation files (0 = not annotated: noise or uncertain).
CIRCOR_STATES = {1: "S1", 2: "systole", 3: "S2", 4: "diastole"}
COLUMNS = ["path", "label", "database", "group", "duration_s", "sample_rate", "original_label"]
AUDIO_SUFFIXES = (".wav", ".flac")

# PASCAL's class is the file-name prefix (its CSVs do not match the file names; see ../shared/data).
PASCAL_LABELS = {"normal": "normal", "murmur": "abnormal", "extrahls": "abnormal", "extrastole": "abnormal",
                 "artifact": "no_heartbeat", "Aunlabelledtest": "unknown", "Bunlabelledtest": "unknown"}


def database_of(path) -> str:
    """The database a recording of the shared data belongs to, from its path."""
    parts = Path(path).parts
    return "circor2022" if "circor2022" in parts else parts[-2]


def data_root() -> Path | None:
    """$HEARTBEAT_DATA if set, else ../shared/data beside the repository if it exists, else None."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else None


def _require_root(root) -> Path:
    root = Path(root) if root is not None else data_root()
    if root is None or not root.is_dir():
        raise FileNotFoundError(f"No data folder: set {DATA_ENV} or put the databases in ../shared/data "
                                "(README: Data).")
    return root


def _audio_file(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{s}" for s in AUDIO_SUFFIXES if (folder / f"{stem}{s}").exists()), None)


def _with_audio_info(rows: list[dict], manifest: Path) -> pd.DataFrame:
    """Durations and rates from MANIFEST.csv when present (instant), else from the file headers."""
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("duration_s", "sample_rate")])
    if manifest.exists():
        m = pd.read_csv(manifest, usecols=["path", "duration_s", "sample_rate"])
        m["stem"] = m["path"].str.replace(r"\.\w+$", "", regex=True)
        info = m.set_index("stem")[["duration_s", "sample_rate"]]
        stems = table["path"].map(lambda p: str(Path(p).relative_to(manifest.parent).with_suffix("")))
        if stems.isin(info.index).all():
            table[["duration_s", "sample_rate"]] = info.loc[stems].to_numpy()
            table["sample_rate"] = table["sample_rate"].astype(int)
            return table[COLUMNS]
    infos = [sf.info(p) for p in table["path"]]
    table["duration_s"] = [i.frames / i.samplerate for i in infos]
    table["sample_rate"] = [i.samplerate for i in infos]
    return table[COLUMNS]


def physionet2016(root=None) -> pd.DataFrame:
    """PhysioNet/CinC 2016 training-a..f: REFERENCE.csv gives 1 (abnormal) or -1 (normal)."""
    base = _require_root(root)
    base = base / "physionet2016" if (base / "physionet2016").is_dir() else base
    rows = []
    for db in PHYSIONET_DBS:
        folder = base / db
        if not (folder / "REFERENCE.csv").exists():
            continue
        ref = pd.read_csv(folder / "REFERENCE.csv", header=None, names=["stem", "y"])
        for stem, y in zip(ref["stem"], ref["y"]):
            path = _audio_file(folder, stem)
            if path is not None:
                # No subject ids are published: the recording is the finest group we can keep together.
                rows.append(dict(path=str(path), label="abnormal" if y == 1 else "normal", database=db,
                                 group=f"{db}/{stem}", original_label=str(y)))
    if not rows:
        raise FileNotFoundError(f"No PhysioNet 2016 recordings (training-?/REFERENCE.csv) under {base}")
    return _with_audio_info(rows, base / "MANIFEST.csv")


def pascal2011(root=None) -> pd.DataFrame:
    """PASCAL 2011 set_a (iPhone) and set_b (DigiScope). set_b names carry a patient number: its group."""
    base = _require_root(root)
    base = base / "pascal2011" if (base / "pascal2011").is_dir() else base
    rows = []
    for db in PASCAL_DBS:
        for path in sorted(p for p in (base / db).glob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            prefix, _, rest = path.stem.partition("__")
            if not rest:  # noisy set_b files: "normal_noisynormal_101_..."
                prefix, _, rest = path.stem.partition("_noisy")
                sub = "noisy" + rest.split("_")[0]
                original, rest = f"{prefix}/{sub}", rest.partition("_")[2]
            else:
                original = prefix
            if prefix not in PASCAL_LABELS:
                continue
            patient = re.match(r"(\d+)_", rest)
            group = f"{db}/patient{patient.group(1)}" if db == "set_b" and patient else f"{db}/{path.stem}"
            rows.append(dict(path=str(path), label=PASCAL_LABELS[prefix], database=db, group=group,
                             original_label=original))
    if not rows:
        raise FileNotFoundError(f"No PASCAL 2011 recordings (set_a/, set_b/) under {base}")
    return _with_audio_info(rows, base / "MANIFEST.csv")


def circor2022(root=None) -> pd.DataFrame:
    """CirCor DigiScope 2022: one recording per patient; label = the patient's murmur status (Present ->
    abnormal, Absent -> normal, Unknown -> unknown: real heart sound, too noisy for the annotators)."""
    base = _require_root(root)
    base = base / "circor2022" if (base / "circor2022").is_dir() else base
    manifest = base / "MANIFEST.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"No CirCor 2022 recordings (MANIFEST.csv) under {base}")
    m = pd.read_csv(manifest, dtype={"subject": str})
    rows = [dict(path=str(base / r.path), label=r.binary, database="circor2022", group=f"circor2022/{r.subject}",
                 original_label=r.label) for r in m.itertuples() if (base / r.path).exists()]
    return _with_audio_info(rows, manifest)


def circor_patients(root=None) -> pd.DataFrame:
    """CirCor's patients.csv (murmur timing, shape, grade, pitch, quality per patient), indexed by the
    patient id that is the `subject` of its recordings."""
    base = _require_root(root)
    base = base / "circor2022" if (base / "circor2022").is_dir() else base
    return pd.read_csv(base / "patients.csv", dtype={"Patient ID": str}).set_index("Patient ID")


def circor_segments(path) -> pd.DataFrame:
    """The annotators' segmentation beside a CirCor recording: start_s, end_s, state (S1, systole, S2,
    diastole; unannotated stretches dropped)."""
    seg = pd.read_csv(Path(path).with_suffix(".tsv"), sep="\t", header=None, names=["start_s", "end_s", "state"])
    seg = seg[seg["state"].isin(CIRCOR_STATES)]
    return seg.assign(state=seg["state"].map(CIRCOR_STATES)).reset_index(drop=True)


def load_table(root=None) -> pd.DataFrame:
    """Every database in one table (whichever are present under the data root)."""
    base = _require_root(root)
    parts = []
    for reader in (physionet2016, pascal2011, circor2022):
        try:
            parts.append(reader(base))
        except FileNotFoundError:
            pass
    if not parts:
        raise FileNotFoundError(f"None of PhysioNet 2016, PASCAL 2011, CirCor 2022 found under {base}")
    return pd.concat(parts, ignore_index=True)


# ---- splits: indices into a table; groups (recordings, or set_b patients) never straddle a split ----

def stratified_kfold(table: pd.DataFrame, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds of (train, test) row indices, stratified by database x label, grouped by `group`."""
    from sklearn.model_selection import StratifiedGroupKFold
    strata = table["database"] + "/" + table["label"]
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(table.index[tr].to_numpy(), table.index[te].to_numpy())
            for tr, te in cv.split(table, strata, groups=table["group"])]


def leave_one_database_out(table: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(held-out database, train indices, test indices), one per database in the table."""
    return [(db, table.index[table["database"] != db].to_numpy(), table.index[table["database"] == db].to_numpy())
            for db in sorted(table["database"].unique())]


def select(table: pd.DataFrame, databases=None, labels=None, min_seconds: float = 0.0) -> pd.DataFrame:
    """Rows of the given databases and labels, at least `min_seconds` long: e.g. an external test set."""
    keep = np.ones(len(table), bool)
    if databases is not None:
        keep &= table["database"].isin(list(databases)).to_numpy()
    if labels is not None:
        keep &= table["label"].isin(list(labels)).to_numpy()
    keep &= (table["duration_s"] >= min_seconds).to_numpy()
    return table[keep]
