"""The dataset report: what is in the data before anyone trusts a model on it.

    python -m heartbeat report [DATA_DIR] --out report/ [--model DIR]

Writes report/report.md with PNG charts: recordings per label and database, durations, sample rates,
quality-gate pass rates (every recording through the bundled gate), and, with --model, that model's
per-database scores (only honest if the model never trained on these recordings).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .batch import run
from .datasets import load_table

LABEL_COLOURS = {"normal": "#2e7d32", "abnormal": "#c62828", "no_heartbeat": "#757575", "unknown": "#bdbdbd"}


def build(data_dir, out: Path, model_path=None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = load_table(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = ["# Dataset report", "", f"Data: `{data_dir or 'default data root'}`: {len(table)} recordings, "
          f"{table['duration_s'].sum() / 3600:.1f} hours.", ""]

    counts = table.pivot_table(index="database", columns="label", values="path", aggfunc="count", fill_value=0)
    counts = counts[[c for c in LABEL_COLOURS if c in counts.columns]]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    counts.plot.barh(stacked=True, ax=ax, color=[LABEL_COLOURS[c] for c in counts.columns], width=0.75)
    for i, total in enumerate(counts.sum(axis=1)):
        ax.text(total + 10, i, str(total), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="recordings", ylabel="", title="Recordings per database and label")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8, frameon=False)
    ax.set_xlim(0, counts.sum(axis=1).max() * 1.1)
    fig.tight_layout()
    fig.savefig(out / "labels.png", dpi=110)
    plt.close(fig)
    share = (counts.T / counts.sum(axis=1)).T
    md += ["## Labels", "![labels](labels.png)", "",
           "Abnormal share per database (a model can learn the site instead of the heart when these differ):", "",
           "| database | " + " | ".join(counts.columns) + " | abnormal share |",
           "|---|" + "---|" * (len(counts.columns) + 1)]
    md += [f"| {db} | " + " | ".join(str(v) for v in row) + f" | {share.loc[db].get('abnormal', 0):.0%} |"
           for db, row in counts.iterrows()]

    fig, ax = plt.subplots(figsize=(8, 3.8))
    dbs = sorted(table["database"].unique())
    ax.boxplot([table.loc[table.database == db, "duration_s"] for db in dbs], orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(dbs) + 1), dbs)
    ax.invert_yaxis()                      # same order as the labels chart
    ax.axvline(3, color="#c62828", ls="--", lw=1)
    ax.text(3.2, 0.45, "3 s: shortest recording judged", color="#c62828", fontsize=8, va="top")
    ax.set_xscale("log")
    ax.set(xlabel="duration (s, log scale)", title="Recording durations")
    fig.tight_layout()
    fig.savefig(out / "durations.png", dpi=110)
    plt.close(fig)
    rates = table.groupby("database")["sample_rate"].agg(lambda s: ", ".join(f"{r} Hz" for r in sorted(set(s))))
    md += ["", "## Durations and sample rates", "![durations](durations.png)", "",
           "| database | recordings | median s | shorter than 3 s | sample rate |", "|---|---|---|---|---|"]
    md += [f"| {db} | {len(g)} | {g['duration_s'].median():.1f} | {(g['duration_s'] < 3).sum()} | {rates[db]} |"
           for db, g in table.groupby("database")]

    results_file = out / "screening.jsonl"
    run(table["path"].tolist(), results_file, model_path=model_path)
    results = pd.DataFrame([json.loads(line) for line in results_file.read_text().splitlines()])
    merged = table.merge(results, on="path", how="left", suffixes=("", "_result"))
    heart = merged[merged["label"].isin(["normal", "abnormal"])]
    gate = heart.groupby("database").apply(lambda g: pd.Series({
        "judged": int(g["error"].isna().sum()) if "error" in g else len(g),
        "passed": int((g["label_result"].isin(["normal", "abnormal"])).sum())}), include_groups=False)
    gate["rate"] = gate["passed"] / gate["judged"].clip(lower=1)
    md += ["", "## Quality gate", "Heart recordings that pass the gate (the rest are answered \"no heartbeat\"; "
           "files under 3 s cannot be judged):", "", "| database | judged | passed | pass rate |", "|---|---|---|---|"]
    md += [f"| {db} | {int(r.judged)} | {int(r.passed)} | {r.rate:.1%} |" for db, r in gate.iterrows()]
    md.append("\nThe bundled gate was fitted on all of these recordings (in-sample): scripts/quality_gate.py "
              "reports each database's pass rate by a gate fitted without it.")
    artifacts = merged[merged["label"] == "no_heartbeat"]
    if len(artifacts):
        caught = (artifacts["label_result"] == "no_heartbeat").mean()
        md.append(f"\nRecordings labelled as having no heart sound (artifact): {len(artifacts)}, "
                  f"answered no heartbeat: {caught:.1%}.")

    if model_path is not None:
        from .evaluate import metrics
        md += ["", "## Scores of the given model", "Only an evaluation if this model never trained on these "
               "recordings (the bundled model trained on all labelled recordings of PhysioNet 2016 and PASCAL).", "",
               "| database | n | Se | Sp | MAcc | AUROC |", "|---|---|---|---|---|---|"]
        scored = heart.dropna(subset=["p_abnormal"])
        for db, g in scored.groupby("database"):
            m = metrics((g["label"] == "abnormal").astype(int), g["p_abnormal"], g["threshold"])
            md.append(f"| {db} | {m['n']} | {m['se']:.3f} | {m['sp']:.3f} | {m['macc']:.3f} | {m['auroc']:.3f} |")
    (out / "report.md").write_text("\n".join(md) + "\n")
    return out / "report.md"
