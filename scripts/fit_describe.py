"""Fit and evaluate the murmur describer (heartbeat/describe.py): timing, grade and rhythm.

    python scripts/fit_describe.py [--model models/heartbeat] [--out reports]

1. Every recording of every database goes through the bundle's own front end (decode, prepare with its
   segmenter), and its cycle and rhythm profiles are kept (cache: $HEARTBEAT_CACHE/describe).
2. Timing and grade: CirCor's murmur-present patients (one recording each, the murmur's most audible
   site), multinomial logistic regression, scored by 5-fold cross-validation grouped by patient; the
   thresholds for "a murmur is there" come from CirCor's murmur-absent patients only.
3. Rhythm: the cut on the irregularity (describe.irregularity) is set so that at most 5% of the normal
   recordings of all nine databases are called irregular (normals only: PASCAL's extrasystoles and the
   re-timed copies are the test, never the fit), and checked with each database left out.
4. The fitted describer goes into the bundle (describe.json); the confusion tables into reports/describe.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heartbeat import describe as D                                  # noqa: E402
from heartbeat import murmurs as M                                   # noqa: E402
from heartbeat.cache import cached_table, in_workers                # noqa: E402
from heartbeat.datasets import circor_patients, load_table          # noqa: E402
from heartbeat.model import DEFAULT_MODEL_DIR, load_model           # noqa: E402

RANDOM_STATE = 0
NORMALS_IRREGULAR = 0.05                 # the ceiling on normal recordings called irregular
_model = None


def _profile_one(job):
    """A recording's cycle profile, its irregularity, its count of whole cycles, and for a normal one the
    irregularity of two re-timed copies (murmurs.irregular: atrial fibrillation; murmurs.breathing: sinus
    arrhythmia), each heard again through the same front end."""
    global _model
    path, model_dir, normal, seed = job
    from heartbeat.audio import AudioError
    from heartbeat.frontend import prepare
    from heartbeat.predict import read
    if _model is None:
        _model = load_model(model_dir)
    try:
        prepared = prepare(read(path, _model), _model.features, _model.segmenter)
    except AudioError:
        return None, np.nan, 0, np.nan, np.nan
    profile = D.cycle_profile(prepared.cleaned, prepared.sample_rate, prepared.beats.states)
    copies = []
    for how in (M.irregular, M.breathing):
        y = (M.retimed(prepared.audio, prepared.sample_rate, prepared.beats.states, how, np.random.default_rng(seed))
             if normal else None)
        heard = None if y is None else prepare(y, _model.features, _model.segmenter, rate=prepared.sample_rate)
        copies.append(np.nan if heard is None else _or_nan(D.irregularity(heard.beats.s1_times)))
    return (profile, _or_nan(D.irregularity(prepared.beats.s1_times)), len(D.whole_cycles(prepared.beats.states)),
            *copies)


def _or_nan(x):
    return np.nan if x is None else x


RHYTHM_COLUMNS = ["irregularity", "cycles", "irregularity_af", "irregularity_breathing"]


def profiles(table: pd.DataFrame, model_dir: Path, workers: int = 2) -> pd.DataFrame:
    """One row per recording: PROFILE_NAMES (NaN where there were too few cycles) and RHYTHM_COLUMNS."""
    def make() -> pd.DataFrame:
        jobs = [(p, str(model_dir), label == "normal", i) for i, (p, label) in enumerate(zip(table["path"], table["label"]))]
        nan_p = [np.nan] * len(D.PROFILE_NAMES)
        rows = [list(p if p is not None else nan_p) + list(rest)
                for p, *rest in in_workers(_profile_one, jobs, workers, "profiles")]
        frame = pd.DataFrame(rows, columns=D.PROFILE_NAMES + RHYTHM_COLUMNS, index=table.index)
        return pd.concat([table[["path", "database", "label", "group", "original_label"]], frame], axis=1)

    sources = [(Path(model_dir) / "segmenter.json").read_bytes(), Path(D.__file__).read_bytes(), Path(M.__file__).read_bytes()]
    return cached_table("describe", "profiles", sources, make)


def _lr(C: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=5000))


def cross_validated(X, y, groups, C: float, repeats: int = 5) -> list[np.ndarray]:
    """Out-of-fold predictions of 5-fold cross-validation grouped by patient, `repeats` shuffles."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    return [cross_val_predict(_lr(C), X, y, groups=groups, cv=StratifiedGroupKFold(5, shuffle=True, random_state=seed))
            for seed in range(repeats)]


def _confusion(truth, pred, rows, cols) -> str:
    t = pd.crosstab(pd.Categorical(truth, rows), pd.Categorical(pred, cols), dropna=False)
    head = "| truth \\ answer | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    return head + "".join(f"| {r} | " + " | ".join(str(int(t.loc[r, c])) for c in cols) + " |\n" for r in rows)


def _balanced(truth, preds) -> tuple[float, float]:
    from sklearn.metrics import balanced_accuracy_score
    scores = [balanced_accuracy_score(truth, p) for p in preds]
    return float(np.mean(scores)), float(np.std(scores))


def fit(frame: pd.DataFrame) -> tuple[D.Describer, str]:
    """The describer fitted on every CirCor patient, and the report's text from cross-validation."""
    circor = frame[frame["database"] == "circor2022"].copy()
    circor = circor.join(circor_patients(), on=circor["group"].str.split("/").str[1])
    usable = circor[D.PROFILE_NAMES[0]].notna()
    absent = circor[usable & (circor["Murmur"] == "Absent")]
    present = circor[usable & circor["Systolic murmur timing"].notna()]
    lines = [f"CirCor 2022: {len(present)} patients with a systolic murmur and a profile (of "
             f"{int(circor['Systolic murmur timing'].notna().sum())}), {len(absent)} murmur-absent. One recording each "
             "(the murmur's most audible site). 5-fold cross-validation grouped by patient, 5 shuffles.\n"]

    # Timing: CirCor's systolic categories present in the data (no late-systolic murmur among the patients).
    timing_x = np.array([D.timing_features(p) for p in present[D.PROFILE_NAMES].to_numpy()])
    timing_y = present["Systolic murmur timing"].str.lower().to_numpy()
    preds = cross_validated(timing_x, timing_y, present["group"], C=0.3)
    holo = timing_y == "holosystolic"
    mean, sd = _balanced(holo, [p == "holosystolic" for p in preds])
    classes = sorted(set(timing_y))
    lines += [f"## Murmur timing\n\nHolosystolic against early- or mid-systolic: balanced accuracy **{mean:.3f}** "
              f"(sd {sd:.3f} over shuffles; target >= 0.80). Three classes, first shuffle:\n",
              _confusion(timing_y, preds[0], classes, classes)]

    # Grade: I/VI soft against II/VI or louder.
    grades = present["Systolic murmur grading"].to_numpy()
    grade_y = np.where(grades == "I/VI", "soft", "loud")
    X = present[D.PROFILE_NAMES].to_numpy()
    preds = cross_validated(X, grade_y, present["group"], C=0.1)
    mean, sd = _balanced(grade_y, preds)
    lines += [f"## Murmur loudness\n\nSoft (I/VI) against loud (II/VI or louder): balanced accuracy **{mean:.3f}** "
              f"(sd {sd:.3f}; target >= 0.80). By grade, first shuffle:\n",
              _confusion(grades, preds[0], ["I/VI", "II/VI", "III/VI"], ["soft", "loud"])]

    # Is a murmur there at all: thresholds from the murmur-absent patients only.
    def typical(rows):
        return np.array([D.band_view(p)[0] for p in rows[D.PROFILE_NAMES].to_numpy()])
    t_abs, t_pre = typical(absent), typical(present)
    loudest_sys = lambda t: t[:, 1:, :D.SYS_BINS].max(axis=(1, 2))            # noqa: E731
    early_dia = lambda t: t[:, :, D.SYS_BINS:D.SYS_BINS + 2].max(axis=2)      # noqa: E731  (n, bands)
    systolic_min = float(np.median(loudest_sys(t_abs)))
    diastolic_min = np.percentile(early_dia(t_abs), 99, axis=0)
    dia_rows = circor[usable & circor["Diastolic murmur timing"].notna()]
    found_dia = (early_dia(typical(dia_rows)) >= diastolic_min).any(axis=1)
    false_dia = (early_dia(t_pre[present["Diastolic murmur timing"].isna().to_numpy()]) >= diastolic_min).any(axis=1)
    lines += ["## Is there a murmur to describe\n",
              f"Systolic: a murmur band's loudest systolic stretch at least {systolic_min:.1f} dB above the quietest "
              f"diastole (the median murmur-absent patient): {np.mean(loudest_sys(t_pre) >= systolic_min):.0%} of systolic "
              f"murmurs get a timing; {np.mean(loudest_sys(t_abs) >= systolic_min):.0%} of murmur-absent patients would "
              "(the timing is only given for a recording judged abnormal).\n",
              f"Diastolic: early diastole above the 99th percentile of murmur-absent patients in any band "
              f"({', '.join(f'{v:.1f}' for v in diastolic_min)} dB): the real diastolic murmurs found: "
              f"**{int(found_dia.sum())} of {len(dia_rows)}** (all early-diastolic, "
              f"{int(dia_rows['Systolic murmur timing'].notna().sum())} with a systolic murmur too: the only ones in the "
              "shared data, so this is a check, not a measure); systolic-only murmurs wrongly given a diastolic part: "
              f"{int(false_dia.sum())} of {len(false_dia)}; murmur-absent patients over the line: "
              f"{np.mean((early_dia(t_abs) >= diastolic_min).any(axis=1)):.1%}.\n"]

    cut, rhythm = _rhythm_report(frame)
    describer = D.Describer(D.Linear.from_sklearn(_lr(0.3).fit(timing_x, timing_y)),
                            D.Linear.from_sklearn(_lr(0.1).fit(X, grade_y)), systolic_min, diastolic_min.tolist(),
                            rhythm_cut=cut, info={"fitted_on": f"CirCor 2022, {len(present)} systolic murmurs, "
                                                   f"{len(absent)} murmur-absent patients"})
    return describer, "\n".join(lines + rhythm)


def rhythm_cut(normals: pd.Series) -> float:
    """The irregularity above which at most NORMALS_IRREGULAR of these normal recordings are irregular."""
    return float(np.percentile(normals.dropna(), 100 * (1 - NORMALS_IRREGULAR)))


def _share(x: pd.Series, cut: float) -> str:
    x = x.dropna()
    return f"{int((x > cut).sum())}/{len(x)} ({np.mean(x > cut):.2f})" if len(x) else "-"


def _rhythm_report(frame: pd.DataFrame) -> tuple[float, list[str]]:
    """The rhythm cut (from every normal recording) and its report: per database left out, the cut from the
    other eight databases' normals, and what it calls irregular there."""
    from sklearn.metrics import roc_auc_score
    normal = frame["label"] == "normal"
    extra = frame["original_label"].astype(str) == "extrastole"
    rows, pooled = [], {"normal": [], "af": []}
    for db in sorted(frame["database"].unique()):
        cut = rhythm_cut(frame.loc[normal & (frame["database"] != db), "irregularity"])
        here = frame[frame["database"] == db]
        n, af = here.loc[here["label"] == "normal", "irregularity"], here["irregularity_af"]
        pooled["normal"].append(n.dropna() > cut)
        pooled["af"].append(af.dropna() > cut)
        ex = here.loc[extra[here.index], "irregularity"]
        rows.append(f"| {db} | {cut:.3f} | {_share(n, cut)} | {_share(af, cut)} | "
                    f"{_share(here['irregularity_breathing'], cut)} | {_share(ex, cut) if len(ex) else '-'} | "
                    f"{int(here.loc[here['label'] == 'normal', 'irregularity'].isna().sum())} |\n")
    cut = rhythm_cut(frame.loc[normal, "irregularity"])
    both = frame[normal | extra].dropna(subset=["irregularity"])
    set_b = both[both["database"] == "set_b"]
    auc_extra = roc_auc_score(extra[set_b.index], set_b["irregularity"])
    n_all, af_all = frame.loc[normal, "irregularity"].dropna(), frame.loc[normal, "irregularity_af"].dropna()
    auc_af = roc_auc_score(np.r_[np.zeros(len(n_all)), np.ones(len(af_all))], np.r_[n_all, af_all])
    ex_all = frame.loc[extra, "irregularity"]
    lines = ["## Rhythm\n",
             f"Irregularity: the share of successive beat intervals (the segmenter's S1 to S1) that differ by more "
             f"than {D.RR_STEP:.0%} of the recording's median interval; at least {D.MIN_INTERVALS} intervals, "
             "else the rhythm is not said. Irregular above the cut where at most "
             f"{NORMALS_IRREGULAR:.0%} of normal recordings are (normals only: nothing abnormal tunes it). "
             "Shipped cut, from all "
             f"{len(n_all)} normal recordings of the nine databases: **{cut:.3f}**.\n",
             "What else is used, since the shared data hold no labelled atrial fibrillation: every normal recording "
             "re-timed two ways and heard again through the same front end: `af` (murmurs.irregular: each "
             "diastole 0.6-1.5 of its length at random, irregularly irregular) must be called irregular; `breathing` "
             f"(murmurs.breathing: the interval swinging smoothly by {M.BREATH_SWING[0]:.0%}-{M.BREATH_SWING[1]:.0%} "
             f"over {M.BREATH_BEATS[0]:g}-{M.BREATH_BEATS[1]:g} beats per breath, a child's sinus arrhythmia) must be "
             "called regular. CirCor's normals are children, so their row is the real sinus-arrhythmia check.\n",
             "Each database left out: the cut from the other eight databases' normal recordings, applied to it "
             "(n/N called irregular):\n",
             "| left out | cut | real normals irregular | `af` copies flagged | `breathing` copies irregular | "
             "PASCAL extrasystoles flagged | normals not said (under 5 intervals, or refused) |\n"
             "|---|---|---|---|---|---|---|\n" + "".join(rows),
             f"\nPooled over the left-out databases: real normals called irregular "
             f"{np.mean(np.concatenate(pooled['normal'])):.3f} (target <= 0.05), `af` copies flagged "
             f"{np.mean(np.concatenate(pooled['af'])):.3f}. Threshold-free: AUROC {auc_af:.3f} for `af` copies against "
             f"real normals.\n",
             f"**PASCAL set_b's extrasystoles: {int((ex_all.dropna() > cut).sum())} of {len(ex_all)} flagged** at the "
             f"shipped cut ({int(ex_all.isna().sum())} too short to say; target sensitivity >= 0.70: missed). Against "
             f"set_b's normals the irregularity's AUROC is {auc_extra:.2f} (0.5 is chance). A single early beat in a "
             "5-10 s clip changes one or two intervals, and set_b's normals (noisy hospital clips, about ten "
             "intervals each) jump as often from mis-placed beats. Measured while building this and no better: the "
             "largest shortening, lengthening and short-then-long pair, interval spread, peaks of the segmenter's "
             "S1 probability, a Viterbi pass with freer diastoles, and a gradient-boosted model over all of them "
             "(5-fold AUROC 0.49-0.57; exploratory scripts, not kept). So the page says a regular rhythm does not rule out extra beats.\n"]
    return cut, lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--data")
    ap.add_argument("--out", default="reports")
    args = ap.parse_args(argv)
    frame = profiles(load_table(args.data), Path(args.model))
    describer, text = fit(frame)
    (Path(args.model) / "describe.json").write_text(describer.to_json())
    out = Path(args.out) / "describe.md"
    out.write_text("# What kind of abnormal: murmur timing, loudness and rhythm\n\n"
                   "Reproduce: `python scripts/fit_describe.py` (also part of `make model`).\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
