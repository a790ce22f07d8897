"""The referral cut for screening on devices the model has not heard, chosen from leave-one-database-out
predictions (each database scored by a model that never heard it), never from the training devices.

A screen is judged by what it misses, so the cut is set for sensitivity: the highest cut at which
TARGET_SENSITIVITY of the held-out abnormal recordings of audible disease score at or above it, every
database weighing alike ("pooled": one database's many recordings do not set the cut for all). The stricter
rule, "every" (each database reaching the target: the lowest of the databases' own cuts), is measured too:
while a murmur does not score alike on every device, it refers nearly everyone (reports/cross_device.md).

Judged without tuning on the database judged: `nested` scores each database at the cut chosen from the
other audible databases alone.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .datasets import AUDIBLE_DBS

TARGET_SENSITIVITY = 0.85


def sensitivity_cut(y, p, target: float = TARGET_SENSITIVITY) -> float:
    """The highest cut at which a share `target` of the abnormal recordings scores at or above it."""
    y, p = np.asarray(y).astype(bool), np.asarray(p, float)
    positives = np.sort(p[y & ~np.isnan(p)])
    if not len(positives):
        return float("nan")
    return float(positives[int(np.floor((1 - target) * len(positives) + 1e-9))])


def per_database_cuts(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY, databases=AUDIBLE_DBS) -> dict:
    """{database: its own sensitivity cut} over held-out predictions (columns database, y, p)."""
    return {db: sensitivity_cut(g["y"], g["p"], target) for db, g in pred.groupby("database") if db in databases}


def screening_cut(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY, databases=AUDIBLE_DBS,
                  rule: str = "pooled") -> float:
    """"pooled" (shipped): the cut reaching `target` over the held-out abnormal recordings of `databases`,
    each database weighing alike. "every": the lowest of the databases' own cuts."""
    if rule == "every":
        cuts = [c for c in per_database_cuts(pred, target, databases).values() if not np.isnan(c)]
        return float(min(cuts)) if cuts else float("nan")
    if rule != "pooled":
        raise ValueError(f"unknown rule {rule!r}")
    pos = pred[(pred["y"] == 1) & pred["database"].isin(databases) & pred["p"].notna()]
    if pos.empty:
        return float("nan")
    order = np.argsort(pos["p"].to_numpy(), kind="stable")
    p = pos["p"].to_numpy()[order]
    weight = (1.0 / pos.groupby("database")["p"].transform("size")).to_numpy()[order]
    below = np.cumsum(weight) / weight.sum()          # share (databases alike) scoring at or below each p
    return float(p[np.searchsorted(below, 1 - target + 1e-12, side="left")]) if len(p) else float("nan")


def nested(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY, databases=AUDIBLE_DBS,
           rule: str = "pooled") -> pd.DataFrame:
    """Every database of `pred` at the cut chosen from the other audible databases (not itself): the
    honest figure for a device the cut never saw. Returns the predictions with a `threshold` column."""
    parts = []
    for db, g in pred.groupby("database"):
        cut = screening_cut(pred[pred["database"] != db], target, databases, rule)
        parts.append(g.assign(threshold=cut))
    return pd.concat(parts)


def lodo_predictions(runs_dir) -> pd.DataFrame:
    """A finished leave-one-database-out run's held-out predictions (reports/runs/RECIPE/lodo_*.csv)."""
    from pathlib import Path
    files = sorted(Path(runs_dir).glob("lodo_*.csv"))
    if not files:
        raise FileNotFoundError(f"no leave-one-database-out predictions (lodo_*.csv) in {runs_dir}")
    pred = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return pred.assign(database=pred["held_out"])


def shipped_cut(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY) -> dict:
    """The referral cut a bundle ships, with what it was chosen for and what it costs, in words for the
    page and the sheet (`note`) and in figures for the model card."""
    cut = screening_cut(pred, target)
    audible = pred[pred["database"].isin(AUDIBLE_DBS) & pred["p"].notna()]
    per_db = {db: {"se": float(np.mean(g.loc[g["y"] == 1, "p"] >= cut)), "sp": float(np.mean(g.loc[g["y"] == 0, "p"] < cut))}
              for db, g in audible.groupby("database")}
    se, sp = np.mean([m["se"] for m in per_db.values()]), np.mean([m["sp"] for m in per_db.values()])
    note = (f"set so that {target:.0%} of murmurs and valve disease recorded on devices the model had not heard "
            f"score at or above it (each of {len(per_db)} databases held out in turn); there it caught "
            f"{se:.0%} of them and called {sp:.0%} of normal hearts normal, so expect extra referrals")
    return {"cut": cut, "rule": "pooled", "target_sensitivity": target, "per_database": per_db,
            "mean_sensitivity": float(se), "mean_specificity": float(sp), "note": note}
