"""The referral cut for screening, chosen from held-out (leave-one-database-out) scores."""
from __future__ import annotations

import numpy as np
import pandas as pd

from heartbeat import screening as S

DBS = ("a", "b", "c")


def _pred(seed: int = 0) -> pd.DataFrame:
    """Three 'devices' whose scores sit at different heights, as unseen devices' do."""
    rng = np.random.default_rng(seed)
    parts = []
    for db, shift, n in (("a", 0.0, 40), ("b", 0.3, 200), ("c", -0.2, 60)):
        y = rng.random(n) < 0.4
        p = np.clip(0.3 + shift + 0.3 * y + rng.normal(0, 0.1, n), 0, 1)
        parts.append(pd.DataFrame({"database": db, "y": y.astype(int), "p": p}))
    return pd.concat(parts, ignore_index=True)


def test_sensitivity_cut_is_the_highest_that_reaches_the_target():
    y = np.array([1] * 20 + [0] * 5)
    p = np.r_[np.linspace(0.05, 1.0, 20), np.zeros(5)]
    cut = S.sensitivity_cut(y, p, 0.85)
    assert np.mean(p[y == 1] >= cut) >= 0.85
    assert np.mean(p[y == 1] >= np.nextafter(cut, 2)) < 0.85


def test_pooled_cut_reaches_the_target_with_databases_weighing_alike():
    pred = _pred()
    cut = S.screening_cut(pred, 0.85, DBS)
    per_db = [np.mean(g.loc[g.y == 1, "p"] >= cut) for _, g in pred.groupby("database")]
    assert np.mean(per_db) >= 0.85
    # the large database does not set the cut alone: pooling recordings instead would give another cut
    pos = np.sort(pred.loc[pred.y == 1, "p"].to_numpy())
    assert cut != pos[int(np.floor(0.15 * len(pos)))]
    # "every": each database reaches the target, so the cut is at or below the pooled one
    strict = S.screening_cut(pred, 0.85, DBS, rule="every")
    assert strict <= cut
    assert all(np.mean(g.loc[g.y == 1, "p"] >= strict) >= 0.85 for _, g in pred.groupby("database"))


def test_nested_cut_never_looks_at_the_database_it_judges():
    pred = _pred()
    cuts = S.nested(pred, 0.85, DBS).groupby("database")["threshold"].first()
    moved = pred.copy()
    moved.loc[moved.database == "b", "p"] *= 0.1           # held out, its scores cannot move its own cut
    again = S.nested(moved, 0.85, DBS).groupby("database")["threshold"].first()
    assert again["b"] == cuts["b"] and again["a"] != cuts["a"]
