"""What to do with the artifact windows: the answer policies measured side by side (why the detector waits).

    python scripts/artifact_policies.py [--per-db 250] [--work DIR]   # ~10 min; writes reports/artifact_policies.md

The detector (heartbeat/artifacts.py) is fitted as scripts/fit_artifacts.py fits it, on the fitting half of its
sample only. Then, with every window's logit kept, each policy below decides:
- on the measuring half (recordings the detector never saw), clean and with each overlay kind at each ratio
  (the overlay table of reports/artifacts.md): handled and false referrals, as fit_artifacts counts them;
- on up to `--per-db` real recordings of each database outside the detector's fitting half, whole, as served:
  how many are flagged (quality "noisy" or asked to record again), split where the annotators marked noise
  (set_b's "noisy" files, CirCor's "Unknown" murmur status), and recording-level Se / Sp.
Without a detector the answer flags what the quality gate flags; the issue asks for no more on clean recordings
("flagged beyond": real recordings a policy flags that the answer without a detector does not). The detector's
cuts are the shipped ones (fit_artifacts.SHIPPED_CUT, SUSPECT_CUT, NETWORK_MARGIN) unless `--threshold` sets the
trees' own otherwise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import fit_artifacts as fa
from heartbeat import negatives
from heartbeat.artifacts import MIN_CLEAN_WINDOWS, ArtifactDetector, screen
from heartbeat.audio import load_audio
from heartbeat.datasets import ALL_DBS, load_table
from heartbeat.features import model_input
from heartbeat.frontend import judged_part, prepare
from heartbeat.model import ARTIFACTS, load_model
from heartbeat.predict import NEAR_CUT
from heartbeat.quality import measure

ROOT = Path(__file__).resolve().parents[1]
def _logits(job) -> dict:
    """Gate verdict, the detector's windows and every window's logit (judged part, and all windows as today)."""
    path, db, kind, ratio, seed = job
    model, cfg = fa._worker["model"], fa._worker["model"].features     # fit_artifacts' workers (fa._pool)
    out = {"path": path, "database": db, "kind": kind or "clean", "ratio_db": ratio, "real": seed < 0}
    try:
        if seed < 0:        # a real recording, whole, as served
            audio, rate = load_audio(path, cfg.sample_rate), cfg.sample_rate
        else:               # as fit_artifacts measures: 30 s at the mixing rate, clean or overlaid
            audio, rate = load_audio(path, fa.MIX_RATE)[: int(fa.MAX_S * fa.MIX_RATE)], fa.MIX_RATE
            if kind is not None:
                audio, art = negatives.overlay(audio, rate, kind, ratio, seed)
                where = np.flatnonzero(art)      # where the artifact lies: which windows a perfect detector would find
                out["art_span_s"] = (where[0] / rate, where[-1] / rate) if len(where) else None
    except ValueError as e:            # too short to judge: not counted
        return out | {"error": str(e)}
    p = prepare(audio, cfg, model.segmenter, rate=rate)
    q = model.quality.judge(measure(p))
    out |= {"usable": q.usable, "quality": q.level}
    if q.usable:
        s = screen(p, cfg, fa._worker["detector"])
        judged, _ = model_input(judged_part(p, cfg, model.segmenter, s.keep), cfg, s.keep)
        every, starts = model_input(p, cfg)
        out |= {"keep": s.keep, "heard": s.heard, "leaning": s.leaning, "starts": starts,
                "logits": model.window_logits(judged),
                "logits_every": model.window_logits(every)}
    return out


def _near(keep: np.ndarray, k: int) -> np.ndarray:
    """Windows within k of a window set aside."""
    out = np.zeros_like(keep)
    for i in np.flatnonzero(~keep):
        out[max(0, i - k): i + k + 1] = True
    return out


# Each policy: (label, quality, a stretch set aside) from one row. `p(logits)` is the calibrated recording probability.
def policies(p, cut):
    def today(r):
        return ("abnormal" if p(r.logits_every) >= cut else "normal"), r.quality, False

    def set_aside(r, abnormal_noisy, refuse, far_k=None):
        keep = r.keep
        if not isinstance(r.heard, str):          # nothing flagged
            return today(r)
        if keep.sum() < MIN_CLEAN_WINDOWS:
            return ("no_heartbeat", "unusable", True) if refuse else today(r)
        label = "abnormal" if p(r.logits[keep]) >= cut else "normal"
        if label == "abnormal" and abnormal_noisy:
            far = keep & ~_near(keep, far_k) if far_k is not None else None
            if far is None or far.sum() < MIN_CLEAN_WINDOWS or p(r.logits[far]) < cut:
                return label, "noisy", True
        return label, r.quality, True

    def referral_safe(r):       # predict.decide's: an artifact never takes a referral away
        if not isinstance(r.heard, str):
            return today(r)
        whole = p(r.logits_every) >= cut
        if r.keep.sum() < MIN_CLEAN_WINDOWS:       # record again (saying when it sounds abnormal as recorded)
            return "no_heartbeat", "unusable", True
        if p(r.logits[r.keep]) >= cut:
            return "abnormal", r.quality, True
        return ("abnormal", "noisy", True) if whole else ("normal", r.quality, True)

    def near_cut_noisy(r):      # predict.decide's since 2026-12-08: and an abnormal answer near the cut is noisy
        label, quality, aside = referral_safe(r)     # where much of the recording leans towards an artifact
        if label == "abnormal" and quality == "good" and isinstance(r.leaning, str):
            judged = r.logits[r.keep] if isinstance(r.heard, str) else r.logits_every
            quality = "noisy" if p(judged) < NEAR_CUT * cut else quality
        return label, quality, aside

    return {"no detector (before 2026-12-07)": today,
            "shipped: set aside; abnormal as recorded stays abnormal, noisy when only with the stretch in, or when "
            "below twice the cut with much of the recording leaning towards an artifact; record again under 3 clean "
            "windows": near_cut_noisy,
            "until 2026-12-08: the shipped policy without its rule for an answer near the cut": referral_safe,
            "until 2026-12-07: set aside; abnormal with a stretch set aside is noisy; record again under 3 clean windows":
                lambda r: set_aside(r, True, True),
            "as until 2026-12-07, but abnormal stays good when the windows away from the stretch (one each side) agree":
                lambda r: set_aside(r, True, True, far_k=1),
            "set aside only (quality from the gate); record again under 3 clean windows":
                lambda r: set_aside(r, False, True),
            "set aside only, and only while 3 clean windows remain (never refuses, never flags)":
                lambda r: set_aside(r, False, False)}


def decide_all(rows: pd.DataFrame, policy) -> pd.DataFrame:
    out = [("no_heartbeat", "unusable", False) if not r.usable else policy(r) for r in rows.itertuples()]
    return rows.assign(label=[o[0] for o in out], answer_quality=[o[1] for o in out], aside=[o[2] for o in out])


def overlay_counts(d: pd.DataFrame) -> dict:
    clean = d[d["kind"] == "clean"].set_index("path")["label"]
    o = d[d["kind"] != "clean"].assign(clean=lambda x: x["path"].map(clean))
    handled = (o["label"] == "no_heartbeat") | (o["answer_quality"] == "noisy") | (o["aside"] & (o["label"] == o["clean"]))
    false_ref = (o["label"] == "abnormal") & (o["answer_quality"] == "good") & (o["clean"] == "normal")
    return {"handled": handled.mean(), "false referrals": int(false_ref.sum()), "n": len(o)}


def real_counts(d: pd.DataFrame) -> dict:
    flagged = (d["label"] == "no_heartbeat") | (d["answer_quality"] == "noisy")
    out = {db: flagged[d["database"] == db].mean() for db in ALL_DBS}
    for db in ("set_b", "circor2022"):
        part = d["database"] == db
        out[f"{db} annotated clean"] = flagged[part & ~d["marked_noisy"]].mean()
        out[f"{db} marked noisy"] = flagged[part & d["marked_noisy"]].mean()
    judged = d[d["truth"].isin(["normal", "abnormal"]) & (d["label"] != "no_heartbeat")]
    out["Se"] = (judged[judged["truth"] == "abnormal"]["label"] == "abnormal").mean()
    out["Sp"] = (judged[judged["truth"] == "normal"]["label"] == "normal").mean()
    out["all flagged"] = flagged.mean()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-db", type=int, default=250, help="real recordings per database (outside the fitting half)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--work", type=Path, help="keep every window's logit here (answers.pkl) and start from it "
                        "when it exists: new policies are then measured in seconds")
    parser.add_argument("--network-alone", type=float, help="also set aside windows where the window network alone "
                        "scores this many log-odds above its 2%% clean cut (a variant of the detector)")
    parser.add_argument("--alone-from", type=float, default=fa.ALONE_FROM,
                        help="... asked where the trees score this or more")
    parser.add_argument("--throughout", type=float, help="set a recording aside whole where the network scores this "
                        "many log-odds above its 2%% clean cut in half its windows (a variant of the detector)")
    parser.add_argument("--threshold", type=float, default=fa.SHIPPED_CUT,
                        help="the trees' score cut (0: the fitted one, 2%% of clean windows)")
    args = parser.parse_args(argv)
    t0 = time.time()
    bundle = fa.bundle_without_detector(Path(tempfile.mkdtemp()))
    table = load_table()
    # In --work: the detector fitted on the fitting half (fitted once), and the answers of each variant of it.
    fitted = args.work / ARTIFACTS if args.work else None
    reused = fitted is not None and fitted.exists()     # the report says so: its minutes then leave the fitting out
    if reused:
        detector = ArtifactDetector.load(fitted)
    else:
        detector = fit_detector(bundle, table, args)
        if fitted is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            detector.save(fitted)
    variant = ""
    if args.network_alone is not None:      # log-odds above the cut that sets aside 2% of clean fitting windows
        detector.network_alone = detector.network_cut - fa.NETWORK_MARGIN + args.network_alone
        detector.alone_from = args.alone_from
        variant = f" (network alone +{args.network_alone:g} from trees {args.alone_from:g})"
    if args.throughout is not None:
        detector.network_throughout = detector.network_cut - fa.NETWORK_MARGIN + args.throughout
        variant += f" (throughout +{args.throughout:g})"
    saved = args.work / f"answers{variant}.pkl" if args.work else None
    if saved is not None and saved.exists():
        answers, minutes = pd.read_pickle(saved), float(saved.with_suffix(".minutes").read_text())
    else:
        answers = answer_all(bundle, table, args, detector)
        minutes = (time.time() - t0) / 60
        if saved is not None:
            answers.to_pickle(saved)
            saved.with_suffix(".minutes").write_text(f"{minutes:.1f}")

    model = load_model(bundle)
    cal, cut = model.bundle.calibration, model.bundle.threshold
    results, before = {}, None
    p_of = lambda logits: float(cal(np.mean(logits)))     # noqa: E731  (model.HeartModel.p_abnormal)
    for name, policy in policies(p_of, cut).items():
        overlays = decide_all(answers[~answers["real"]], policy)
        real = decide_all(answers[answers["real"]], policy)
        flagged = ((real["label"] == "no_heartbeat") | (real["answer_quality"] == "noisy")).to_numpy()
        before = flagged if before is None else before        # the first policy: no detector
        results[name] = overlay_counts(overlays) | real_counts(real) | {"flagged beyond": int((flagged & ~before).sum())}
    shipped = next(policy for name, policy in policies(p_of, cut).items() if name.startswith("shipped"))
    found = where_from(answers[~answers["real"]], shipped, p_of, cut, model.features.window_s)
    text = markdown(results, len(answers[answers["real"]]), minutes, detector, reused) + found
    args.reports.mkdir(parents=True, exist_ok=True)
    (args.reports / "artifact_policies.md").write_text(text)
    print(text)
    return 0


def covered(row, window_s: float) -> np.ndarray | None:
    """The windows an overlay's artifact reaches (what a perfect detector would set aside)."""
    if not isinstance(row.starts, np.ndarray) or not isinstance(row.art_span_s, tuple):
        return None
    start, end = row.art_span_s
    return (row.starts < end) & (row.starts + window_s > start)


def where_from(overlays: pd.DataFrame, shipped, p, cut: float, window_s: float) -> str:
    """Where the shipped policy's false referrals come from, and how many a perfect detector would leave."""
    d = decide_all(overlays, shipped)
    d["covered"] = [covered(r, window_s) for r in d.itertuples()]
    clean = d[d["kind"] == "clean"].set_index("path")["label"]
    o = d[d["kind"] != "clean"].assign(clean=lambda x: x["path"].map(clean))
    false_ref = (o["label"] == "abnormal") & (o["answer_quality"] == "good") & (o["clean"] == "normal")
    everywhere = o["covered"].map(lambda c: c is not None and bool(c.all()))

    def perfect(r):        # the shipped policy with every window the artifact reaches set aside, and only those
        if not r.usable or r.covered is None or not r.covered.any():
            return shipped(r)
        return shipped(r._replace(keep=~r.covered, heard="the artifact", logits=r.logits_every))
    ideal = decide_all(o, perfect)
    ideal_false = (ideal["label"] == "abnormal") & (ideal["answer_quality"] == "good") & (ideal["clean"] == "normal")
    ideal_handled = float(((ideal["label"] == "no_heartbeat") | (ideal["answer_quality"] == "noisy")
                           | (ideal["aside"] & (ideal["label"] == ideal["clean"]))).mean())
    by_kind = o[false_ref].groupby("kind").size().to_dict()
    return "\n".join([
        "", "## Where the shipped policy's false referrals come from", "",
        f"{int(false_ref.sum())} false referrals (of {len(o)} overlays; by kind: "
        + ", ".join(f"{k} {v}" for k, v in by_kind.items()) + "). "
        f"The artifact lay over every window in {int((false_ref & everywhere).sum())} of them (over every window in "
        f"{int(everywhere.sum())} overlays in all: one in four is laid over the whole recording, and a long stretch of a short one reaches every window); a stretch was set aside "
        f"in {int((false_ref & o['aside']).sum())}. The detector's measurements and maps are relative to the same "
        "recording's typical window, so an artifact present throughout moves its own reference.",
        "",
        f"With a perfect detector (every window the artifact reaches set aside, nothing else; the shipped policy "
        f"after it, on each kept window's logit as computed with nothing set aside): handled {ideal_handled:.3f}, **{int(ideal_false.sum())} false "
        "referrals**: what finding the artifacts could win; the rest is the heart network's answer on the clean "
        "windows moved by the fewer windows left.", ""])


def picked_halves(table: pd.DataFrame) -> pd.DataFrame:
    """fit_artifacts' sample and halves, so the detector is the one its overlay table measures."""
    sample = table.query("duration_s >= 7.5")
    picked = pd.concat([d.sample(min(len(d), 60), random_state=0) for _, d in sample.groupby("database")])
    picked["half"] = np.where(np.arange(len(picked)) % 2 == 0, "fit", "measure")
    return picked


def fit_detector(bundle: Path, table: pd.DataFrame, args) -> ArtifactDetector:
    """The detector as fit_artifacts fits it, on the fitting half only."""
    picked = picked_halves(table)
    rng = np.random.default_rng(0)
    window_jobs = []
    for i, r in enumerate(picked.itertuples()):
        jobs = [(r.path, r.database, None, None, 0)] + [
            (r.path, r.database, fa.KINDS[k], float(rng.choice(fa.RATIOS_DB)), 1000 + 7 * i + int(k))
            for k in rng.choice(len(fa.KINDS), 2, replace=False)]
        window_jobs += jobs if r.half == "fit" else []
    with fa._pool(args.jobs, bundle) as pool:
        rows = pd.DataFrame([w for ws in tqdm(pool.imap(fa._windows, window_jobs, chunksize=4), total=len(window_jobs),
                                              desc="windows", mininterval=30) for w in ws])
    return fa.fit(rows, args.threshold or None)


def answer_all(bundle: Path, table: pd.DataFrame, args, detector: ArtifactDetector) -> pd.DataFrame:
    """Every window's logit on the measuring half's overlays and on real recordings outside the fitting half."""
    picked = picked_halves(table)
    jobs = []
    for i, r in enumerate(picked[picked["half"] == "measure"].itertuples()):
        jobs.append((r.path, r.database, None, None, 0))
        jobs += [(r.path, r.database, kind, float(ratio), 5000 + 31 * i + fa.RATIOS_DB.index(ratio))
                 for kind in fa.KINDS for ratio in fa.RATIOS_DB
                 if r.label != "no_heartbeat"]        # as fit_artifacts: nothing laid over a file with no heart sound
    unseen = table[~table["path"].isin(picked.loc[picked["half"] == "fit", "path"])]
    real = pd.concat([d.sample(min(len(d), args.per_db), random_state=1) for _, d in unseen.groupby("database")])
    jobs += [(r.path, r.database, None, None, -1) for r in real.itertuples()]
    with fa._pool(args.jobs, bundle, detector) as pool:
        answers = pd.DataFrame(list(tqdm(pool.imap(_logits, jobs, chunksize=4), total=len(jobs), desc="answers",
                                         mininterval=30)))
    answers = answers[answers["error"].isna()] if "error" in answers else answers
    answers["truth"] = answers["path"].map(dict(zip(table["path"], table["label"])))
    answers["marked_noisy"] = answers["path"].map(dict(zip(
        table["path"], table["original_label"].str.contains("noisy") | (table["label"] == "unknown"))))
    return answers


def markdown(results: dict, n_real: int, minutes: float, detector, reused: bool = False) -> str:
    first = next(iter(results.values()))
    lines = ["# What to do with the artifact windows: answer policies side by side", "",
             f"Reproduce: `python scripts/artifact_policies.py` ({minutes:.0f} min here"
             + (", the detector taken from --work, fitted by an earlier run" if reused else "") + "). The detector is fitted on "
             "fit_artifacts' fitting half only; overlays: its measuring half, clean and with each kind at each ratio "
             f"({first['n']} overlaid recordings); real: {n_real} recordings outside the fitting half, whole, as served. "
             "Handled and false referrals as in reports/artifacts.md; flagged: quality \"noisy\" or asked to record "
             "again. \"Marked noisy\": set_b's noisy files and CirCor's recordings whose murmur status its annotators "
             f"left Unknown. The detector's cuts: trees {detector.threshold:.3f} alone, or {detector.suspect:.3f} with the "
             f"window network at {detector.network_cut:.2f} (log-odds)"
             + (f", or the network alone at {detector.network_alone:.2f} where the trees score {detector.alone_from:g} or more"
                if np.isfinite(detector.network_alone) else "")
             + (f", and every window where the network scores {detector.network_throughout:.2f} in half of them"
                if np.isfinite(detector.network_throughout) else "")
             + ".", "",
             "| policy | overlays handled | false referrals | real flagged | flagged beyond | CirCor: annotated clean / marked noisy | "
             "set_b: annotated clean / marked noisy | training-a | training-b | training-e | Se | Sp |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['handled']:.3f} | {r['false referrals']} | {r['all flagged']:.3f} | {r['flagged beyond']} | "
                     f"{r['circor2022 annotated clean']:.3f} / {r['circor2022 marked noisy']:.3f} | "
                     f"{r['set_b annotated clean']:.3f} / {r['set_b marked noisy']:.3f} | {r['training-a']:.3f} | "
                     f"{r['training-b']:.3f} | {r['training-e']:.3f} | {r['Se']:.3f} | {r['Sp']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
