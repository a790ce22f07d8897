"""Does the network alone call speech or movement over a heart "abnormal"? Each held-out database's recordings,
clean and with an artifact laid over a stretch (evaluate.overlay_predictions), scored by the fold's model that
never heard that database, at the screening cut chosen from the other databases (screening.nested).

    python -m heartbeat evaluate --cross-device --protocols lodo --overlays --out reports/overlays \
        --recipes logmel-cycle-soft2 overlay --held-out circor2022 set_a set_b training-a training-c training-d training-f
    python scripts/network_overlays.py reports/overlays/runs/logmel-cycle-soft2 reports/overlays/runs/overlay \
        --scores p p_median --out reports/artifacts_network

Per recipe: of the normal recordings the network called normal clean, the share it still calls normal with the
artifact (1 - its false referrals); of the abnormal ones it called abnormal clean, the share it still calls
abnormal (what an artifact hides); both per kind, per heart-to-artifact ratio and per database. The gate and the
artifact screen are not in these figures (scripts/fit_artifacts.py measures the whole answer).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from heartbeat import screening


def flips(runs: Path, score: str = "p") -> pd.DataFrame:
    """One row per overlaid recording: its database, kind, ratio, label, and the call clean and overlaid, by
    `score` ("p": the mean window logit's, as shipped; "p_median": the median window's) at that score's cut."""
    lodo = screening.lodo_predictions(runs)
    cuts = screening.nested(lodo.assign(p=lodo[score])).groupby("database")["threshold"].first()
    rows = []
    for f in sorted(runs.glob("overlay_*.csv")):
        o = pd.read_csv(f)
        o = o.assign(p=o[score]).dropna(subset=["p"])
        db = o["held_out"].iloc[0]
        clean = o[o["kind"] == "clean"].set_index("path")["p"]
        o = o[o["kind"] != "clean"].assign(database=db, clean_abnormal=lambda d: d["path"].map(clean) >= cuts[db],
                                           abnormal=lambda d: d["p"] >= cuts[db])
        rows.append(o[o["path"].isin(clean.index)])
    if not rows:
        raise SystemExit(f"no overlay_*.csv in {runs}: run evaluate with --overlays")
    return pd.concat(rows, ignore_index=True)


def kept(f: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Normals kept normal and abnormals kept abnormal (each database weighing alike), by `by` or overall."""
    normal = f[(f["y"] == 0) & ~f["clean_abnormal"]]
    abnormal = f[(f["y"] == 1) & f["clean_abnormal"]]
    keys = ["database"] + ([by] if by and by != "database" else [])

    def share(d, called_abnormal):
        s = d.assign(kept=d["abnormal"] == called_abnormal).groupby(keys)["kept"].mean()
        return s.groupby(by).mean() if by else pd.Series({"all": s.mean()})
    return pd.DataFrame({"normal kept normal": share(normal, False), "abnormal kept abnormal": share(abnormal, True),
                         "n normal": normal.groupby(by).size() if by else len(normal),
                         "n abnormal": abnormal.groupby(by).size() if by else len(abnormal)})


def clean_scores(runs: Path, score: str) -> pd.DataFrame:
    """The held-out recordings as they are: AUROC, and Se / Sp at the nested screening cut, per database."""
    lodo = screening.lodo_predictions(runs)
    nested = screening.nested(lodo.assign(p=lodo[score]).dropna(subset=["p"]))
    rows = {db: {"AUROC": roc_auc_score(g["y"], g["p"]), "Se": (g.loc[g["y"] == 1, "p"] >= g["threshold"].iloc[0]).mean(),
                 "Sp": (g.loc[g["y"] == 0, "p"] < g["threshold"].iloc[0]).mean(), "cut": g["threshold"].iloc[0], "n": len(g)}
            for db, g in nested.groupby("database")}
    table = pd.DataFrame(rows).T
    table.loc["mean"] = table.mean()
    table.index.name = "held out"
    return table


def markdown(t: pd.DataFrame, decimals: int = 2) -> str:
    """Columns before `decimals` with three decimals, the rest (counts) whole."""
    cells = [[t.index.name or ""] + list(t.columns)] + [[str(i)] + [f"{v:.3f}" if c < decimals else f"{v:.0f}"
                                                                 for c, v in enumerate(row)] for i, row in zip(t.index, t.to_numpy())]
    return "\n".join(["| " + " | ".join(c) + " |" for c in cells[:1]] + ["|" + "---|" * len(cells[0])]
                     + ["| " + " | ".join(c) + " |" for c in cells[1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    parser.add_argument("--scores", nargs="+", default=["p"], help="p (the mean window logit's, shipped) and/or "
                        "p_median (the median window's)")
    args = parser.parse_args(argv)
    lines, data = ["# The network alone with speech and movement over held-out hearts", "", __doc__.split("\n\n")[2]
                   .replace("\n", " "), ""], {}
    for runs, score in ((r, sc) for r in args.runs for sc in args.scores):
        f = flips(runs, score)
        tables = {by or "all": kept(f, by) for by in (None, "kind", "ratio_db", "database")}
        name = runs.name + ("" if score == "p" else f" ({score})")
        data[name] = {k: t.round(3).to_dict() for k, t in tables.items()}
        lines += [f"## {name} ({', '.join(sorted(f['database'].unique()))})", ""]
        clean = clean_scores(runs, score)
        data[name]["clean"] = clean.round(3).to_dict()
        lines += ["Clean (no artifact), each database at the cut from the others:", "", markdown(clean, 4), ""]
        for by, t in tables.items():
            lines += [f"By {by}:" if by != "all" else "Overall:", "", markdown(t), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.with_suffix(".md").write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
