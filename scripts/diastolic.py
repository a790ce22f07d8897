"""The synthetic diastolic murmurs, checked and scored: reports/diastolic.md.

    python scripts/diastolic.py [--per-database 12] [--recipes logmel-cycle-soft2 diastolic]

1. The sounds, by listening-equivalent measures, on normal recordings of every database: where the added
   sound's power lies in frequency, where it starts against S2, whether the segmenter still finds the
   beats (heart rate and S1 times against the clean copy), how irregular the fibrillation copies are, and
   what the murmur describer (describe.py) says of them.
2. The bundled model, which never heard a synthetic murmur: how many it refers, by kind and grade.
3. Recipes trained with them, held out by database (reports/runs/RECIPE/synthetic_*.csv, written by the
   leave-one-database-out run): sensitivity at each database's nested screening cut, by kind and grade;
   CirCor's real diastolic murmurs; the specificity on real normals against the shipped recipe.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from heartbeat import murmurs as M                                   # noqa: E402
from heartbeat import screening                                      # noqa: E402
from heartbeat.audio import SAMPLE_RATE                              # noqa: E402
from heartbeat.datasets import AUDIBLE_DBS, load_table, circor_patients   # noqa: E402
from heartbeat.frontend import prepare                               # noqa: E402
from heartbeat.model import load_model                               # noqa: E402
from heartbeat.predict import decide, read                           # noqa: E402


def _power_share(x: np.ndarray, band: tuple[float, float]) -> float:
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    p = np.abs(np.fft.rfft(x)) ** 2
    inside = (f >= band[0]) & (f <= band[1])
    return float(p[inside].sum() / max(p[(f >= 20) & (f <= 400)].sum(), 1e-20))


def _s1_match(a, b, tol=0.06) -> float:
    """Share of S1 times of `a` with one of `b` within `tol` s."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.mean([np.min(np.abs(b - t)) <= tol for t in a])) if len(a) and len(b) else 0.0


def check_sounds(table: pd.DataFrame, model, per_database: int, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    normals = table[(table["label"] == "normal") & (table["duration_s"] >= 6)]
    sample = normals.sample(frac=1.0, random_state=seed).groupby("database").head(per_database)
    rng = np.random.default_rng(seed)
    rows = []
    for r in sample.itertuples():
        clean = prepare(read(r.path, model), model.features, model.segmenter)
        base = decide(clean, model)
        if base.label == "no_heartbeat":
            continue
        rows.append({"database": r.database, "kind": "none", "grade": 0, "fibrillation": False,
                     "p": base.p_abnormal, "label": base.label, "timing": base.murmur_timing})
        for kind in M.KINDS:
            for grade in M.GRADES:
                fib = kind == "mitral_stenosis" and grade == 3
                y = M.add_murmur(clean.audio, SAMPLE_RATE, clean.beats.states, kind, grade, rng, fibrillation=fib)
                if y is None:
                    continue
                heard = prepare(y, model.features, model.segmenter, rate=SAMPLE_RATE)
                res = decide(heard, model)
                row = {"database": r.database, "kind": kind, "grade": grade, "fibrillation": fib,
                       "p": res.p_abnormal, "label": res.label, "timing": res.murmur_timing,
                       "hr_clean": clean.beats.heart_rate_bpm, "hr": heard.beats.heart_rate_bpm}
                if not fib:       # same timeline: the added sound is the difference
                    added = y - clean.audio
                    row["low_share"] = _power_share(added, (25, 100))
                    row["high_share"] = _power_share(added, (150, 400))
                    row["s1_found"] = _s1_match(clean.beats.s1_times, heard.beats.s1_times)
                    # onset against S2: the first sample of added sound after each S2 the clean copy's segmenter found
                    on = np.flatnonzero(np.abs(added) > 1e-9 * max(np.abs(added).max(), 1e-12)) / SAMPLE_RATE
                    lags = [on[on >= s2 - 0.05][0] - s2 for s2 in clean.beats.s2_times if np.any(on >= s2 - 0.05)]
                    row["onset_after_s2_ms"] = 1000 * float(np.median(lags)) if lags else np.nan
                else:
                    rr = np.diff(heard.beats.s1_times)
                    rr0 = np.diff(clean.beats.s1_times)
                    row["rr_cv"] = float(np.std(rr) / np.mean(rr)) if len(rr) > 2 else np.nan
                    row["rr_cv_clean"] = float(np.std(rr0) / np.mean(rr0)) if len(rr0) > 2 else np.nan
                rows.append(row)
    frame = pd.DataFrame(rows)
    cut = model.bundle.threshold
    m = frame[frame["kind"] != "none"]
    ms, ar = m[(m["kind"] == "mitral_stenosis") & ~m["fibrillation"]], m[m["kind"] == "aortic_regurgitation"]
    fib = m[m["fibrillation"]]
    hr_ok = (m["hr"] - m["hr_clean"]).abs() <= 5
    lines = [f"## 1. The sounds, checked ({frame['database'].nunique()} databases, "
             f"{(frame['kind'] == 'none').sum()} normal recordings, {len(m)} murmured copies)\n",
             "| measure | mitral stenosis | aortic regurgitation |", "|---|---|---|",
             f"| added power in 25-100 Hz (median share of 20-400 Hz) | {ms['low_share'].median():.2f} | {ar['low_share'].median():.2f} |",
             f"| added power in 150-400 Hz | {ms['high_share'].median():.2f} | {ar['high_share'].median():.2f} |",
             f"| first added sound after S2's centre (median ms; the snap for MS) | {ms['onset_after_s2_ms'].median():.0f} | {ar['onset_after_s2_ms'].median():.0f} |",
             f"| segmenter: heart rate within 5 bpm of the clean copy | {hr_ok[m['kind'] == 'mitral_stenosis'].mean():.2f} | {hr_ok[m['kind'] == 'aortic_regurgitation'].mean():.2f} |",
             f"| segmenter: S1 of the clean copy found within 60 ms | {ms['s1_found'].median():.2f} | {ar['s1_found'].median():.2f} |",
             f"| describer's timing includes diastole, when the bundled model says abnormal | "
             f"{ms[ms['label'] == 'abnormal']['timing'].fillna('').str.contains('diastolic').mean():.2f} | "
             f"{ar[ar['label'] == 'abnormal']['timing'].fillna('').str.contains('diastolic').mean():.2f} |",
             "",
             f"Atrial fibrillation copies (MS grade III): beat-interval CV {fib['rr_cv'].median():.2f} against "
             f"{fib['rr_cv_clean'].median():.2f} for the clean copies (median); heart rate within 5 bpm "
             f"{hr_ok[m['fibrillation']].mean():.2f} (the rate itself changes with the re-timing).", "",
             f"## 2. The bundled model (never trained on a synthetic murmur), at its referral cut {cut:.3f}\n",
             "| kind | " + " | ".join(f"grade {g}" for g in M.GRADES) + " | clean copies referred |",
             "|---|" + "---|" * (len(M.GRADES) + 1)]
    clean_ref = (frame[frame["kind"] == "none"]["p"] >= cut).mean()
    for kind in M.KINDS:
        k = m[m["kind"] == kind]
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(
            f"{(k[k['grade'] == g]['p'] >= cut).mean():.2f}" for g in M.GRADES) + f" | {clean_ref:.2f} |")
    return frame, lines + [""]


def held_out(recipes: list[str]) -> list[str]:
    """Section 3: recipes whose leave-one-database-out runs scored synthetic murmurs of the held-out database."""
    lines = ["## 3. Held out by database: recipes trained with synthetic murmurs\n",
             "Each database's synthetic murmurs scored by the network trained without that database, at the "
             "screening cut chosen from the other audible databases' real held-out predictions (nested, as "
             "`reports/cross_device.md`). Sensitivity: share of murmured copies at or above the cut; in "
             "brackets, among copies whose clean recording was below it (a murmur that changed the answer).\n"]
    real = {}
    for recipe in recipes:
        runs = ROOT / "reports" / "runs" / recipe
        try:
            pred = screening.lodo_predictions(runs)
        except FileNotFoundError:
            lines.append(f"- {recipe}: no run in {runs}")
            continue
        nested = screening.nested(pred).dropna(subset=["p"])   # as screening_row (too short: no score)
        cuts = nested.groupby("database")["threshold"].first()
        real[recipe] = nested
        files = sorted(runs.glob("synthetic_*.csv"))
        if not files:
            continue
        syn = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        syn["cut"] = syn["database"].map(cuts)
        clean = syn[syn["kind"] == "none"].set_index(["database", "path"])["p"]
        syn["clean_p"] = [clean.get((d, p), np.nan) for d, p in zip(syn["database"], syn["path"])]
        m = syn[syn["kind"] != "none"].dropna(subset=["p"])
        lines += [f"**{recipe}** ({m['database'].nunique()} databases held out, {m['path'].nunique()} normal recordings):\n",
                  "| kind | " + " | ".join(f"grade {g}" for g in M.GRADES) + " | grade II+ |", "|---|" + "---|" * (len(M.GRADES) + 1)]
        for kind in M.KINDS:
            k = m[m["kind"] == kind]

            def se(rows):
                new = rows[rows["clean_p"] < rows["cut"]]
                return f"{(rows['p'] >= rows['cut']).mean():.2f} ({(new['p'] >= new['cut']).mean():.2f})"
            lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(se(k[k["grade"] == g]) for g in M.GRADES)
                         + f" | {se(k[k['grade'] >= 2])} |")
        by_db = m[m["grade"] >= 2].assign(hit=lambda d: d["p"] >= d["cut"]).groupby("database")["hit"].mean()
        lines += ["", "Grade II and louder, by held-out database: " + ", ".join(f"{d} {v:.2f}" for d, v in by_db.items()), ""]
    if real:
        lines += ["### Real recordings, same nested cuts\n",
                  "| recipe | " + " | ".join(AUDIBLE_DBS) + " |", "|---|" + "---|" * len(AUDIBLE_DBS)]
        for recipe, nested in real.items():
            sp = nested[nested["y"] == 0].assign(ok=lambda d: d["p"] < d["threshold"]).groupby("database")["ok"].mean()
            se = nested[nested["y"] == 1].assign(ok=lambda d: d["p"] >= d["threshold"]).groupby("database")["ok"].mean()
            lines.append(f"| {recipe} Sp / Se | " + " | ".join(f"{sp.get(d, np.nan):.2f} / {se.get(d, np.nan):.2f}"
                                                            for d in AUDIBLE_DBS) + " |")
        patients = circor_patients()
        dia = {f"circor2022/{pid}" for pid in patients.index[patients["Diastolic murmur timing"].notna()]}
        table = load_table()
        dia_paths = set(table[table["group"].isin(dia)]["path"])
        lines += ["", f"CirCor's real diastolic murmurs ({len(dia_paths)}, all early-diastolic), held out with CirCor, "
                  "referred at the nested cut:"]
        for recipe, nested in real.items():
            d = nested[nested["path"].isin(dia_paths)]
            lines.append(f"- {recipe}: {int((d['p'] >= d['threshold']).sum())} of {len(d)} "
                         f"(p {', '.join(f'{v:.2f}' for v in d['p'])})")
    return lines + [""]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-database", type=int, default=12)
    ap.add_argument("--recipes", nargs="+", default=["logmel-cycle-soft2", "logmel-cycle-soft2-seed1", "diastolic", "diastolic-seed1",
                                                     "diastolic-light", "diastolic-light-seed1"])
    args = ap.parse_args(argv)
    model = load_model()
    frame, lines = check_sounds(load_table(), model, args.per_database)
    text = ["# Diastolic murmurs: synthetic, checked and scored", "",
            "Reproduce: `python scripts/diastolic.py`; the held-out rows come from "
            "`python -m heartbeat evaluate --cross-device --recipes diastolic --protocols lodo` "
            "(which also scores each held-out database's normals with every kind and grade of synthetic murmur). "
            "How the sounds are made, and from which descriptions: `heartbeat/murmurs.py`.", ""]
    text += lines + held_out(args.recipes)
    (ROOT / "reports" / "diastolic.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
