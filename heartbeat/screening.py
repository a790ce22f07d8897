"""The referral cut for screening on devices the model has not heard, chosen from leave-one-database-out
predictions (each database scored by a model that never heard it), never from the training devices.

A screen is judged by what it misses, so the cut is set for sensitivity: on every held-out database of
audible disease, at least TARGET_SENSITIVITY of its abnormal recordings must score at or above it. Each
held-out database gives the highest cut that reaches the target there; the cut is the lowest of those
(pooling by the minimum: the database whose scores sit lowest decides, so a new device like it is served).

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


def screening_cut(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY, databases=AUDIBLE_DBS) -> float:
    """The shipped rule: the lowest of the held-out databases' own sensitivity cuts."""
    cuts = [c for c in per_database_cuts(pred, target, databases).values() if not np.isnan(c)]
    return float(min(cuts)) if cuts else float("nan")


def nested(pred: pd.DataFrame, target: float = TARGET_SENSITIVITY, databases=AUDIBLE_DBS) -> pd.DataFrame:
    """Every database of `pred` at the cut chosen from the other audible databases (not itself): the
    honest figure for a device the cut never saw. Returns the predictions with a `threshold` column."""
    parts = []
    for db, g in pred.groupby("database"):
        cut = screening_cut(pred[pred["database"] != db], target, databases)
        parts.append(g.assign(threshold=cut))
    return pd.concat(parts)
