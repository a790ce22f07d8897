"""How loud real murmurs of each grade are, against S1/S2: the anchor of the synthetic murmurs' grades.

    python scripts/murmur_levels.py        # ~1 min; writes reports/murmur_levels.md

CirCor's annotators graded each patient's systolic murmur (Levine I-VI) and named where it was most audible;
where the patient's recording is from that spot, murmurs.murmur_level_db measures the murmur as
murmurs.GRADE_DB places a synthetic one (its power through mid-systole, less mid-diastole's background, over
S1 and S2, in the model's band), on the annotators' own segmentation. Beside it: the same recordings' diastole
(the background a diastolic murmur must rise above), CirCor's four diastolic murmurs, and the synthetic
murmurs of each grade measured the same way in CirCor's murmur-free recordings (placed by the bundled
segmenter, measured on the annotated diastoles).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from heartbeat import murmurs as M
from heartbeat.audio import SAMPLE_RATE, load_audio
from heartbeat.datasets import circor_patients, circor_segments, load_table, select
from heartbeat.frontend import prepare
from heartbeat.model import load_model

ROOT = Path(__file__).resolve().parents[1]


def recordings() -> pd.DataFrame:
    """CirCor's recordings with their patient's murmur annotations and the recording's spot."""
    table = select(load_table(), ["circor2022"])
    table = table.assign(patient=table["group"].str.split("/").str[1],
                         spot=table["path"].str.extract(r"_([A-Za-z]+)\.\w+$")[0])
    names = {"Murmur": "murmur", "Most audible location": "loudest", "Systolic murmur grading": "grade",
             "Diastolic murmur grading": "diastolic_grade"}
    return table.join(circor_patients().rename(columns=names)[list(names.values())], on="patient")


def db_over_sounds(x: np.ndarray, segments, state: str, middle: float) -> float:
    """Mean power of `x` (heart band) over the middle of `state` against that of S1 and S2, dB."""
    return float(10 * np.log10(M.annotated_power(x, SAMPLE_RATE, segments, state, middle)
                               / M.sounds_power(x, SAMPLE_RATE, segments)))


def real_levels(rec: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in rec.itertuples():
        seg = circor_segments(r.path)
        audio = load_audio(r.path, SAMPLE_RATE)
        banded = M.heart_band(np.asarray(audio, np.float64), SAMPLE_RATE)
        rows.append({"patient": r.patient, "murmur": r.murmur, "grade": r.grade, "diastolic_grade": r.diastolic_grade,
                     "at_loudest": r.spot == r.loudest, "murmur_db": M.murmur_level_db(audio, SAMPLE_RATE, seg),
                     "diastole_db": db_over_sounds(banded, seg, "diastole", 0.5)})
    return pd.DataFrame(rows)


def synthetic_levels(rec: pd.DataFrame, n: int = 40) -> pd.DataFrame:
    """Each kind and grade laid into `n` murmur-free CirCor recordings, measured over the annotated diastoles."""
    model = load_model()
    rows = []
    for r in rec[rec["murmur"] == "Absent"].sample(n, random_state=0).itertuples():
        seg = circor_segments(r.path)
        prepared = prepare(load_audio(r.path, SAMPLE_RATE), model.features, model.segmenter)
        base = np.asarray(prepared.audio, np.float64)
        sounds = M.sounds_power(M.heart_band(base, SAMPLE_RATE), SAMPLE_RATE, seg)
        for kind in M.KINDS:
            for grade in M.GRADES:
                y = M.add_murmur(prepared.audio, SAMPLE_RATE, prepared.beats.states, kind, grade,
                                 np.random.default_rng(int(r.patient)))
                if y is None:
                    continue
                added = M.heart_band(np.asarray(y, np.float64) - base, SAMPLE_RATE)
                rows.append({"kind": kind, "grade": grade, "murmur_db": 10 * np.log10(
                    M.annotated_power(added, SAMPLE_RATE, seg, "diastole") / sounds)})
    return pd.DataFrame(rows)


def main() -> int:
    rec = recordings()
    real = real_levels(rec)
    synth = synthetic_levels(rec)
    q = lambda v, k: float(np.percentile(v, k))      # noqa: E731
    lines = ["# How loud murmurs are against S1/S2 (the synthetic grades' anchor)", "",
             "Reproduce: `python scripts/murmur_levels.py`. Levels in dB against the mean power of S1 and S2, in the "
             "model's 25-400 Hz band, on CirCor's own segmentation (heartbeat/murmurs.py says how).", "",
             "## CirCor's systolic murmurs, by the annotators' grade, recorded where most audible", "",
             "| grade | recordings | murmur (median) | 25th-75th percentile | diastole's background (median) |",
             "|---|---|---|---|---|"]
    heard = real[(real["murmur"] == "Present") & real["at_loudest"] & real["grade"].notna()]
    for grade, g in heard.groupby("grade"):
        lines.append(f"| {grade} | {len(g)} | **{g.murmur_db.median():.1f}** | {q(g.murmur_db, 25):.1f} to "
                     f"{q(g.murmur_db, 75):.1f} | {g.diastole_db.median():.1f} |")
    absent = real[real["murmur"] == "Absent"]
    lines += ["", f"Murmur absent ({len(absent)} recordings): diastole's background at a median "
              f"{absent.diastole_db.median():.1f} dB (25th-75th {q(absent.diastole_db, 25):.1f} to "
              f"{q(absent.diastole_db, 75):.1f}); systole less diastole, the measure above on no murmur, "
              f"{absent.murmur_db.median():.1f}.", "",
              "CirCor's diastolic murmurs (diastole's whole sound, murmur and background, against S1/S2): " +
              "; ".join(f"{r.diastolic_grade} {r.diastole_db:.1f} dB" for r in real[real["diastolic_grade"].notna()].itertuples()),
              "", "## The synthetic murmurs, measured the same way (murmur alone, over the annotated diastoles)", "",
              "| kind | " + " | ".join(f"grade {g} (GRADE_DB {M.GRADE_DB[g]:.0f})" for g in M.GRADES) + " |",
              "|---|" + "---|" * len(M.GRADES)]
    for kind, g in synth.groupby("kind"):
        lines.append(f"| {kind} | " + " | ".join(f"{g[g.grade == k].murmur_db.median():.1f}" for k in M.GRADES) + " |")
    lines += ["", f"({synth.groupby('kind').size().iloc[0] // len(M.GRADES)} murmur-free CirCor recordings each. "
              "Aortic regurgitation's decrescendo fades before diastole ends, so over the whole diastole it sits "
              "below its grade's level, which is set over the stretch it sounds in.)"]
    text = "\n".join(lines) + "\n"
    (ROOT / "reports" / "murmur_levels.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
