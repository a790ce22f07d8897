"""What a change to the bundle does to real recordings: two batch runs over the labelled databases, side by side.

    python -m heartbeat predict ../shared/data --out A.jsonl                      # the bundle as shipped
    python -m heartbeat predict ../shared/data --out B.jsonl --model BUNDLE       # e.g. with artifacts.json in it
    python scripts/compare_answers.py A.jsonl B.jsonl

Per database (normal and abnormal recordings): refused, asked to record again for artifacts, answered "noisy",
flagged either way, a stretch set aside, and sensitivity and specificity of the answer as given; then how many
answers changed between the two runs.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from heartbeat.datasets import load_table


def answers(path: str, truth: pd.DataFrame) -> pd.DataFrame:
    rows = pd.read_json(path, lines=True).set_index("path")
    rows = rows.join(truth, how="inner")
    return rows[rows["truth"].isin(["normal", "abnormal"])]


def per_database(d: pd.DataFrame) -> pd.DataFrame:
    refused, heard = d["label"] == "no_heartbeat", d["artifact_heard"].notna()
    noisy = d["quality"] == "noisy"
    flags = pd.DataFrame({"refused": refused, "record again (artifacts)": refused & heard, "noisy": noisy,
                          "flagged (noisy or refused)": noisy | refused, "stretch set aside": heard,
                          "Se": (d["label"] == "abnormal").where(d["truth"] == "abnormal"),
                          "Sp": (d["label"] == "normal").where(d["truth"] == "normal")}).astype(float)
    return flags.groupby(d["database"]).mean().assign(n=d.groupby("database").size())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--data", help="data root (default: $HEARTBEAT_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    truth = load_table(args.data).set_index("path")[["database", "label"]].rename(columns={"label": "truth"})
    a, b = answers(args.before, truth), answers(args.after, truth)
    table = pd.concat({"before": per_database(a), "after": per_database(b)}).swaplevel().sort_index()
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.round(3))
    # A file that could not be judged has no label: it counts as its own answer, the same in both runs.
    both = (a[["label"]].add_suffix("_before").join(b[["label"]].add_suffix("_after"), how="inner")
            .fillna("could not be judged"))
    changed = both["label_before"] != both["label_after"]
    print(f"\n{len(both)} recordings in both; answer changed for {changed.sum()} ({changed.mean():.1%}): "
          + ", ".join(f"{x} -> {y} {n}" for (x, y), n in both[changed].value_counts().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
