"""The evaluation's tables (Markdown) and plots (matplotlib): what reports/ shows, made from the scores
that evaluate.py measured."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import ALL_DBS, NOT_AUDIBLE_DBS


def cross_device_markdown(results: dict) -> str:
    lines = ["## Ablation: leave-one-database-out over the nine databases (each row a full run)", "",
             "| recipe | mean MAcc | worst MAcc | mean AUROC | CirCor never seen: AUROC / MAcc | set_a (phone) MAcc | " +
             " | ".join(ALL_DBS) + " |", "|---|---|---|---|---|---|" + "---|" * len(ALL_DBS)]
    for name, r in results.items():
        if "lodo" not in r:
            continue
        per = r["lodo"]["per_database"]
        circor, seta = per.get("circor2022", {}), per.get("set_a", {})
        mean_auroc = np.nanmean([m["auroc"] for m in per.values()])    # threshold-free: less noisy than MAcc
        lines.append(f"| {name} | **{r['lodo']['mean_macc']:.3f}** | {r['lodo']['worst_macc']:.3f} | {mean_auroc:.3f} | "
                     f"{circor.get('auroc', float('nan')):.3f} / {circor.get('macc', float('nan')):.3f} | "
                     f"{seta.get('macc', float('nan')):.3f} | " +
                     " | ".join(f"{per[db]['macc']:.3f}" if db in per else "" for db in ALL_DBS) + " |")
    lines += ["", screening_markdown(results)]
    head = "| recipe | protocol | set | Se | Sp | MAcc | AUROC | ECE | n |\n|---|---|---|---|---|---|---|---|---|"
    by_note: dict[str, list[str]] = {}
    for name, r in results.items():
        if r.get("note"):
            by_note.setdefault(r["note"], []).append(name)
    notes = [f"- {', '.join(names)}: {note}." for note, names in by_note.items()]
    lines += ["", "CirCor has one recording per patient, so its row is also the patient-level score."] + notes + ["",
              "## Per database", "", head]
    for name, r in results.items():
        if "lodo" in r:
            lines += [f"| {name} | leave-one-db-out | {db} held out | {_fmt(m)} |" for db, m in r["lodo"]["per_database"].items()]
        if "cv" in r:
            lines.append(f"| {name} | 5-fold CV | pooled | {_fmt(r['cv']['pooled'])} |")
            lines += [f"| {name} | 5-fold CV | {db} | {_fmt(m)} |" for db, m in r["cv"]["per_database"].items()]
    return "\n".join(lines) + "\n"


def screening_markdown(results: dict) -> str:
    """The screening table: the seven audible-disease databases held out, at the nested screening cut."""
    rows = [r for r in results.items() if "screening" in r[1]]
    if not rows:
        return ""
    target = rows[0][1]["screening"]["target_sensitivity"]
    lines = [f"## Screening: audible disease held out, at a cut set for sensitivity {target:.2f} on the other databases", "",
             "Each database scored by a model that never heard it, at the cut chosen from the other audible databases' "
             "held-out scores (the cut reaching Se " f"{target:.2f} over their abnormal recordings, each database weighing alike: "
             "heartbeat/screening.py); training-b and training-e (\"abnormal\" = "
             "mostly coronary disease, not audible by design) at the cut from all seven. Spread: the highest database's "
             "own cut over the lowest's.", "",
             "| recipe | audible: mean Se | worst Se | mean Sp | mean MAcc | worst MAcc | mean AUROC | cut (all seven) | spread | " +
             " | ".join(f"{db} Se/Sp" for db in ALL_DBS) + " |", "|---|---|---|---|---|---|---|---|---|" + "---|" * len(ALL_DBS)]
    for name, r in rows:
        s, a = r["screening"], r["screening"]["audible"]
        per = s["per_database"]
        cells = [f"{per[db]['se']:.2f}/{per[db]['sp']:.2f}" + (" (n.a.)" if db in NOT_AUDIBLE_DBS else "") if db in per else ""
                 for db in ALL_DBS]
        lines.append(f"| {name} | {a['mean_se']:.3f} | **{a['worst_se']:.3f}** | {a['mean_sp']:.3f} | **{a['mean_macc']:.3f}** | "
                     f"{a['worst_macc']:.3f} | {a['mean_auroc']:.3f} | {s['cut']:.3f} | {s['cut_spread']:.1f}x | " + " | ".join(cells) + " |")
    lines += ["", "CirCor's murmurs held out, caught at the nested cut (caught / present), by the annotators' grade and timing:", "",
              "| recipe | systolic grade | systolic timing | diastolic timing |", "|---|---|---|---|"]
    for name, r in rows:
        m = r["screening"].get("circor_murmurs")
        if m:
            cell = [", ".join(f"{k} {c}/{n}" for k, (c, n) in m[col].items() if k != "none") for col in
                    ("Systolic murmur grading", "Systolic murmur timing", "Diastolic murmur timing")]
            lines.append(f"| {name} | " + " | ".join(cell) + " |")
    return "\n".join(lines) + "\n"


def _fmt(m: dict) -> str:
    return f"{m['se']:.3f} | {m['sp']:.3f} | **{m['macc']:.3f}** | {m['auroc']:.3f} | {m['ece']:.3f} | {m['n']}"


def markdown(results: dict) -> str:
    head = "| recipe | protocol | set | Se | Sp | MAcc | AUROC | ECE | n |\n|---|---|---|---|---|---|---|---|---|\n"
    rows = []
    for name, r in results.items():
        rows.append(f"| {name} | (a) 5-fold CV | pooled | {_fmt(r['cross_validation']['pooled'])} |")
        rows += [f"| {name} | (a) 5-fold CV | {db} | {_fmt(m)} |" for db, m in r["cross_validation"]["per_database"].items()]
        rows += [f"| {name} | (b) leave-one-db-out | {db} held out | {_fmt(m)} |" for db, m in r["lodo"]["per_database"].items()]
        rows.append(f"| {name} | (b) leave-one-db-out | **mean MAcc** | | | **{r['lodo']['mean_macc']:.3f}** | | | |")
        rows += [f"| {name} | (c) external, trained on PhysioNet | {db} | {_fmt(m)} |" for db, m in r["external"]["per_database"].items()]
        if "leaky" in r:
            lk = r["leaky"]
            rows.append(f"| {name} | (d) leaky 80/20 window split | window accuracy {lk['window_accuracy']:.3f} | "
                        f"{_fmt(lk['recording'])} |")
    return head + "\n".join(rows) + "\n"


def roc_plot(out: Path, name: str, cv, lodo, ext) -> None:
    """ROC curves: CV pooled (one recipe, five folds), each held-out database of LODO on its own (pooling
    six different models' scores would mix their scales), and the external sets."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import RocCurveDisplay

    fig, ax = plt.subplots(figsize=(6, 5.5))
    curves = [("(a) CV pooled", cv, "-")] + [(f"(b) {db} held out", g, ":") for db, g in lodo.groupby("held_out")] + \
        [(f"(c) PASCAL {db}", g, "--") for db, g in ext.groupby("database")]
    for label, df, style in curves:
        df = df.dropna(subset=["p"])
        if df["y"].nunique() == 2:
            RocCurveDisplay.from_predictions(df["y"], df["p"], name=label, ax=ax, curve_kwargs={"linestyle": style})
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"ROC, recording level ({name})")
    fig.tight_layout()
    fig.savefig(out / f"roc_{name}.png", dpi=110)
    plt.close(fig)


def plots(out: Path, name: str, cv, lodo, ext, histories) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    roc_plot(out, name, cv, lodo, ext)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (label, df) in zip(axes, (("(a) CV", cv), ("(b) LODO", lodo), ("(c) PASCAL", ext))):
        df = df.dropna(subset=["p"])
        ConfusionMatrixDisplay.from_predictions(df["y"], (df["p"] >= df["threshold"]).astype(int), ax=ax,
                                                display_labels=["normal", "abnormal"], colorbar=False)
        ax.set_title(label)
    fig.suptitle(f"Confusion matrices ({name})")
    fig.tight_layout()
    fig.savefig(out / f"confusion_{name}.png", dpi=110)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for h in histories:
        h = [e for e in h if "epoch" in e]       # supervised epochs (not contrastive pretraining's)
        a1.plot([e["epoch"] for e in h], [e["loss"] for e in h], alpha=0.6)
        a2.plot([e["epoch"] for e in h], [e.get("val_auroc", np.nan) for e in h], alpha=0.6)
    a1.set(title="training loss (each line one model)", xlabel="epoch")
    a2.set(title="inner-validation AUROC", xlabel="epoch")
    fig.tight_layout()
    fig.savefig(out / f"curves_{name}.png", dpi=110)
    plt.close(fig)
