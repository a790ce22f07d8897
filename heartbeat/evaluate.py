"""Evaluation as the field does it: recording-level Se, Sp, MAcc, AUROC and calibration error, under
(a) 5-fold cross-validation grouped by recording with per-database results, (b) leave-one-database-out,
(c) external PASCAL sets never used for any choice, and (d) the original notebooks' leaky split.

`cross_device` runs the same protocols over all nine databases (PhysioNet 2016's six, PASCAL's two and
CirCor 2022): leave-one-database-out (its CirCor fold is "CirCor never seen in training", scored per
patient) and grouped 5-fold cross-validation, for each recipe of the ablation. Every fold's predictions
are saved as they are made, so a stopped run resumes where it stopped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, roc_auc_score

from . import screening
from .datasets import ALL_DBS, AUDIBLE_DBS, PHYSIONET_DBS, leave_one_database_out, select, stratified_kfold
from .recipes import RECIPES
from .tables import cross_device_markdown, markdown, plots
from .cache import featurize
from .train import TrainSettings, fit_windows, score_table, train_model


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed abnormal rate - mean predicted p| over equal-width probability bins, weighted by size."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(y[which == b].mean() - p[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def metrics(y, p, threshold) -> dict:
    """Recording-level scores. `threshold` is one number or one per row (the model that scored it).
    Recordings without a score (shorter than one window) are counted, not scored."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    threshold = np.broadcast_to(np.asarray(threshold, float), p.shape)
    scored = ~np.isnan(p)
    y, p, threshold = y[scored], p[scored], threshold[scored]
    tn, fp, fn, tp = confusion_matrix(y, p >= threshold, labels=[0, 1]).ravel()
    se = tp / (tp + fn) if tp + fn else float("nan")
    sp = tn / (tn + fp) if tn + fp else float("nan")
    both = len(np.unique(y)) == 2
    return {"n": int(len(y)), "n_unscored": int((~scored).sum()), "n_abnormal": int(y.sum()),
            "se": float(se), "sp": float(sp), "macc": float((se + sp) / 2) if both else float("nan"),
            "auroc": float(roc_auc_score(y, p)) if both else float("nan"),
            "ece": expected_calibration_error(y, p) if len(y) else float("nan"),
            "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}}


def summarize(pred: pd.DataFrame) -> dict:
    """Pooled and per-database metrics of a predictions table (columns y, p, threshold, database)."""
    def of(df):
        return metrics(df["y"], df["p"], df["threshold"])
    return {"pooled": of(pred), "per_database": {db: of(g) for db, g in pred.groupby("database")}}


def _scored(trained, test: pd.DataFrame, **copy) -> dict:
    """Columns p (the mean window logit's, calibrated: what the bundle answers) and p_median (the median window's)."""
    scores = score_table(trained, test, **copy, hows=("mean", "median"))
    return {"p": scores["mean"], "p_median": scores["median"]}


def _predictions(trained, test: pd.DataFrame, **extra) -> pd.DataFrame:
    return pd.DataFrame({"path": test["path"].to_numpy(), "database": test["database"].to_numpy(),
                         "y": (test["label"] == "abnormal").to_numpy(int), **_scored(trained, test),
                         "threshold": trained.bundle.threshold, **extra})


def synthetic_predictions(trained, test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """p_abnormal of every normal recording of `test` with a synthetic diastolic murmur of each kind and
    grade (murmurs.py, through another device's chain), and of the same recordings clean: held out with
    their database, so neither the device nor the recordings were heard in training."""
    from .murmurs import GRADES, KINDS
    normals = test[test["label"] == "normal"]
    paths = normals["path"].tolist()
    rows = [pd.DataFrame({"path": paths, "kind": "none", "grade": 0, "p": score_table(trained, normals)["mean"]})]
    for kind in KINDS:
        for grade in GRADES:
            p = score_table(trained, normals, 1, seed + 100, augmentation=f"diastolic:{kind}:{grade}")["mean"]
            rows.append(pd.DataFrame({"path": paths, "kind": kind, "grade": grade, "p": p}))
    return pd.concat(rows, ignore_index=True).assign(database=normals["database"].iloc[0] if len(normals) else "")


OVERLAY_PER_DB = 120                 # held-out recordings per database scored with artifacts (bounds the cost)


def overlay_predictions(trained, test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """p_abnormal of held-out recordings (at most OVERLAY_PER_DB, drawn at random) clean and with each artifact
    kind (negatives.OVERLAY_KINDS: speech, rubbing, handling, footsteps, knocks, coughs) laid over a stretch at
    each heart-to-artifact ratio: does the network alone change its answer for noise? Neither the device
    nor the recordings were heard in training; artifacts of these kinds may have been (recipe `overlay`)."""
    from .negatives import OVERLAY_KINDS, OVERLAY_RATIOS_DB
    test = test.sample(min(OVERLAY_PER_DB, len(test)), random_state=seed)
    base = pd.DataFrame({"path": test["path"].to_numpy(), "y": (test["label"] == "abnormal").to_numpy(int)})
    rows = [base.assign(kind="clean", ratio_db=np.nan, **_scored(trained, test))]
    for kind in OVERLAY_KINDS:
        for ratio in OVERLAY_RATIOS_DB:
            rows.append(base.assign(kind=kind, ratio_db=ratio, **_scored(
                trained, test, copy=1, seed=seed + 200, augmentation=f"overlay:{kind}:{ratio}")))
    return pd.concat(rows, ignore_index=True)


# ------------------------------------------------------------------ protocols ----

def _fold(table, tr, te, cfg, settings, log, saved: Path | None, overlays: bool = False, **extra):
    """One fold's predictions (and training history): read from `saved` when an earlier run made them.
    `overlays` (leave-one-database-out): also the held-out recordings with artifacts laid over them
    (overlay_predictions), made by retraining the fold where an earlier run made its predictions without them."""
    overlay_file = saved.with_name(f"overlay_{extra['held_out']}.csv") if saved and overlays and "held_out" in extra else None
    if saved is not None and saved.exists() and (overlay_file is None or overlay_file.exists()):
        return pd.read_csv(saved), json.loads(saved.with_suffix(".json").read_text())
    trained = train_model(table.loc[tr], cfg, settings, log=log)
    if overlay_file is not None:
        overlay_file.parent.mkdir(parents=True, exist_ok=True)
        overlay_predictions(trained, table.loc[te], settings.seed).assign(**extra).to_csv(overlay_file, index=False)
        if saved.exists():        # the fold's own predictions stay those of the run that made them
            return pd.read_csv(saved), json.loads(saved.with_suffix(".json").read_text())
    pred = _predictions(trained, table.loc[te], **extra)
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        if settings.diastolic and "held_out" in extra:
            synthetic_predictions(trained, table.loc[te], settings.seed).assign(**extra).to_csv(
                saved.with_name(f"synthetic_{extra['held_out']}.csv"), index=False)
        saved.with_suffix(".json").write_text(json.dumps(trained.history))
        pred.to_csv(saved, index=False)            # written last: its presence means the fold is complete
    return pred, trained.history


def cross_validation(table: pd.DataFrame, cfg, settings, k: int = 5, log=print, runs: Path | None = None):
    """k-fold CV grouped by `group`, stratified by database x label; `runs`: where folds are kept."""
    folds = [_fold(table, tr, te, cfg, settings, log, runs / f"cv{fold}.csv" if runs else None, fold=fold)
             for fold, (tr, te) in enumerate(stratified_kfold(table, k, settings.seed))]
    return pd.concat([f[0] for f in folds], ignore_index=True), [f[1] for f in folds]


def leave_one_out(table: pd.DataFrame, cfg, settings, log=print, runs: Path | None = None, held_out=None,
                  overlays: bool = False):
    """Train on every database but one, score that one; `runs`: where folds are kept; `held_out`: only
    these databases' folds (default: every database's); `overlays`: see _fold."""
    folds = [_fold(table, tr, te, cfg, settings, log, runs / f"lodo_{db}.csv" if runs else None, overlays, held_out=db)
             for db, tr, te in leave_one_database_out(table) if held_out is None or db in held_out]
    return pd.concat([f[0] for f in folds], ignore_index=True), [f[1] for f in folds]


def external(physionet: pd.DataFrame, pascal: pd.DataFrame, cfg, settings, log=print):
    """Train on all of PhysioNet 2016; score PASCAL set_a and set_b normal vs abnormal, untouched."""
    trained = train_model(physionet, cfg, settings, log=log)
    test = select(pascal, labels=["normal", "abnormal"])
    return _predictions(trained, test), trained


def leaky_split(physionet: pd.DataFrame, cfg, settings, seed: int = 0) -> dict:
    """The original notebooks' protocol: a random 80/20 split of windows, so windows of one recording
    sit on both sides. Reports window accuracy and the recording-level scores it implies."""
    labelled = physionet.reset_index(drop=True)
    X, rec = featurize(labelled["path"].tolist(), cfg, 0)
    y = (labelled["label"] == "abnormal").to_numpy(np.float32)[rec]
    test = np.random.default_rng(seed).random(len(X)) < 0.2
    model, history = fit_windows(X[~test], y[~test], np.ones((~test).sum()), cfg, settings)
    z = np.concatenate([model(X[test][i:i + 2048].astype(np.float32), training=False).numpy()[:, 0]
                        for i in range(0, test.sum(), 2048)])
    window_acc = float(np.mean((z > 0) == y[test]))
    rec_test = rec[test]
    zr = np.bincount(rec_test, weights=z, minlength=len(labelled)) / np.maximum(np.bincount(rec_test, minlength=len(labelled)), 1)
    has = np.bincount(rec_test, minlength=len(labelled)) > 0
    p = 1 / (1 + np.exp(-zr[has]))
    yr = (labelled["label"] == "abnormal").to_numpy(int)[has]
    return {"window_accuracy": window_acc, "recording": metrics(yr, p, 0.5),
            "recordings_on_both_sides": int(np.sum(np.isin(np.unique(rec[test]), np.unique(rec[~test])))),
            "history": history}


# ------------------------------------------------------------------ the whole report ----

def run_all(table: pd.DataFrame, out: Path, recipes=("ours", "baseline"), folds: int = 5, log=print,
            epochs: int | None = None) -> dict:
    """Every protocol for every recipe; writes reports/results.json, predictions CSVs, tables and plots."""
    out.mkdir(parents=True, exist_ok=True)
    physionet = select(table, PHYSIONET_DBS, ["normal", "abnormal"]).reset_index(drop=True)
    pascal = select(table, ["set_a", "set_b"]).reset_index(drop=True)
    results = {}
    for name in recipes:
        cfg, settings = RECIPES[name]
        if epochs is not None:
            settings = TrainSettings(**(settings.to_dict() | {"epochs": epochs}))
        t0 = time.time()
        cv, cv_hist = cross_validation(physionet, cfg, settings, folds, log)
        lodo, lodo_hist = leave_one_out(physionet, cfg, settings, log)
        ext, _ = external(physionet, pascal, cfg, settings, log)
        r = {"features": cfg.to_dict(), "settings": settings.to_dict(),
             "cross_validation": summarize(cv), "lodo": summarize(lodo.assign(database=lodo["held_out"])),
             "external": summarize(ext)}
        r["lodo"]["mean_macc"] = float(np.nanmean([m["macc"] for m in r["lodo"]["per_database"].values()]))
        if name == "baseline":
            r["leaky"] = leaky_split(physionet, cfg, settings)
        r["seconds"] = round(time.time() - t0, 1)
        for part, df in (("cv", cv), ("lodo", lodo), ("external", ext)):
            df.to_csv(out / f"predictions_{name}_{part}.csv", index=False)
        results[name] = r
        plots(out, name, cv, lodo, ext, cv_hist + lodo_hist)
        # Saved after each recipe, merged with what earlier runs measured for other recipes.
        saved = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
        saved[name] = json.loads(json.dumps(r, default=float))
        (out / "results.json").write_text(json.dumps(saved, indent=2))
        (out / "results.md").write_text(markdown(saved))
        log(f"{name}: done in {r['seconds']} s")
    return results


def cross_device(table: pd.DataFrame, out: Path, recipes=("ours",), protocols=("lodo", "cv"), folds: int = 5,
                 log=print, seed: int | None = None, held_out=None, overlays: bool = False) -> dict:
    """Leave-one-database-out over all nine databases and grouped CV, per recipe, resumable per fold;
    writes out/cross_device.json and .md (the ablation table, per-database tables, the CirCor row).
    `seed`: the recipes with another seed (validation split, augmentation draw, initialisation), saved as
    RECIPE-seedN: how far a row moves by chance."""
    labelled = select(table, ALL_DBS, ["normal", "abnormal"]).reset_index(drop=True)
    path = out / "cross_device.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in recipes:
        cfg, settings = RECIPES[name]
        if seed is not None:
            settings, name = TrainSettings(**(settings.to_dict() | {"seed": seed})), f"{name}-seed{seed}"
        runs = out / "runs" / name
        r = results.get(name, {}) | {"settings": settings.to_dict()}
        if "lodo" in protocols:
            lodo, _ = leave_one_out(labelled, cfg, settings, log, runs, held_out, overlays)
            if held_out:
                r["note"] = (f"only {len(set(lodo['held_out']))} databases held out ({', '.join(sorted(set(lodo['held_out'])))}); "
                             "its mean and worst MAcc are over those")
            r["lodo"] = summarize(lodo.assign(database=lodo["held_out"]))
            per_db = [m["macc"] for m in r["lodo"]["per_database"].values()]
            r["lodo"] |= {"mean_macc": float(np.nanmean(per_db)), "worst_macc": float(np.nanmin(per_db)),
                          "databases": len(per_db)}
            r["screening"] = screening_row(lodo.assign(database=lodo["held_out"]))
            if "circor2022" in set(lodo["held_out"]):
                from .datasets import circor_patients
                nested = screening.nested(lodo.assign(database=lodo["held_out"]))
                r["screening"]["circor_murmurs"] = murmurs_caught(nested, circor_patients())
        if "cv" in protocols:
            cv, _ = cross_validation(labelled, cfg, settings, folds, log, runs)
            r["cv"] = summarize(cv)
        results = _save_row(out, name, r)
        log(f"{name}: {', '.join(protocols)} done")
    return results


def screening_row(pred: pd.DataFrame, target: float = screening.TARGET_SENSITIVITY) -> dict:
    """Leave-one-database-out predictions judged for screening: each audible database at the cut chosen from
    the other six (nested), the not-audible ones at the cut from all seven, and how far the databases' own
    sensitivity cuts spread (a recipe whose scores mean the same everywhere has a narrow spread)."""
    cuts = screening.per_database_cuts(pred, target)
    nest = screening.nested(pred, target)
    per = {db: metrics(g["y"], g["p"], g["threshold"]) | {"cut": float(g["threshold"].iloc[0])}
           for db, g in nest.groupby("database")}
    audible = [per[db] for db in AUDIBLE_DBS if db in per]
    return {"target_sensitivity": target, "cut": screening.screening_cut(pred, target), "own_cuts": cuts,
            "cut_spread": float(max(cuts.values()) / min(cuts.values())) if cuts and min(cuts.values()) > 0 else float("nan"),
            "per_database": per,
            "audible": {"mean_macc": float(np.nanmean([m["macc"] for m in audible])),
                        "worst_macc": float(np.nanmin([m["macc"] for m in audible])),
                        "mean_auroc": float(np.nanmean([m["auroc"] for m in audible])),
                        "worst_se": float(np.nanmin([m["se"] for m in audible])),
                        "mean_se": float(np.nanmean([m["se"] for m in audible])),
                        "mean_sp": float(np.nanmean([m["sp"] for m in audible]))}}


def murmurs_caught(pred: pd.DataFrame, patients: pd.DataFrame) -> dict:
    """CirCor's murmurs held out, caught at each row's threshold, by the annotators' grade and timing: which
    murmurs a screen misses (the soft and early-systolic ones, in the issue that asked)."""
    circor = pred[(pred["database"] == "circor2022") & (pred["y"] == 1) & pred["p"].notna()]
    ids = circor["path"].map(lambda p: Path(p).stem.split("_")[0])
    caught = (circor["p"] >= circor["threshold"]).to_numpy()
    out = {}
    for column in ("Systolic murmur grading", "Systolic murmur timing", "Diastolic murmur timing"):
        values = patients.reindex(ids)[column].fillna("none").to_numpy()
        out[column] = {str(v): [int(caught[values == v].sum()), int((values == v).sum())] for v in sorted(set(values))}
    return out


def _save_row(out: Path, name: str, row: dict) -> dict:
    """Merge one recipe's row into out/cross_device.json and rewrite the Markdown. Re-read before writing:
    another recipe's run may have saved its rows meanwhile."""
    path = out / "cross_device.json"
    results = (json.loads(path.read_text()) if path.exists() else {}) | {name: json.loads(json.dumps(row, default=float))}
    path.write_text(json.dumps(results, indent=2))
    (out / "cross_device.md").write_text(cross_device_markdown(results))
    return results


def ensemble(out: Path, members: list[str], log=print) -> dict:
    """Leave-one-database-out of an ensemble of finished runs: in each fold, the members' calibrated
    p_abnormal averaged, and their thresholds averaged (what a bundle of those models would answer)."""
    runs = [out / "runs" / m for m in members]
    folds = [pd.concat([pd.read_csv(r / f"lodo_{db}.csv") for r in runs], keys=members) for db in ALL_DBS
             if all((r / f"lodo_{db}.csv").exists() for r in runs)]
    if len(folds) < len(ALL_DBS):
        raise SystemExit(f"ensemble {members}: every member needs all {len(ALL_DBS)} leave-one-out folds in {out / 'runs'}")
    pred = pd.concat([f.groupby("path", sort=False).agg(y=("y", "first"), p=("p", "mean"), threshold=("threshold", "mean"),
                                                         database=("held_out", "first")) for f in folds])
    r = {"members": members, "lodo": summarize(pred)}
    per_db = [m["macc"] for m in r["lodo"]["per_database"].values()]
    r["lodo"] |= {"mean_macc": float(np.nanmean(per_db)), "worst_macc": float(np.nanmin(per_db)), "databases": len(per_db)}
    name = "ensemble: " + " + ".join(members)
    log(f"{name}: mean MAcc {r['lodo']['mean_macc']:.3f}")
    return _save_row(out, name, r)
