"""An answer in a clinician's words: the one place a Result becomes text, for the page, the referral sheet
and the command line alike. Each takes these lines and sets them in its own form (Markdown, PDF, a line)."""
from __future__ import annotations

HEADLINES = {"normal": "Normal", "abnormal": "Abnormal: refer", "no_heartbeat": "No heartbeat heard"}
TOO_NOISY = "Too noisy to judge: record again"     # a heart sound, but speech or handling over most of it
DISCLAIMER = ("Screening aid, not a diagnosis. It cannot see the patient. If the answer is abnormal, if it does "
              "not match what you see, or if you are in doubt: refer.")
RECORD_AGAIN = ("Place the stethoscope or phone firmly on the chest (left of the breastbone), keep still and quiet, "
                "and record 15-30 seconds.")


# CirCor's timing categories, as a clinician says them (what the page, the sheet and the command line print).
TIMING_TEXT = {"early-systolic": "early systolic (just after S1, fading before S2)",
               "mid-systolic": "mid-systolic (between S1 and S2, clear of both)",
               "late-systolic": "late systolic (running up to S2)",
               "holosystolic": "holosystolic (all through systole, S1 to S2)",
               "diastolic": "diastolic (after S2)",
               "systolic and diastolic": "in systole and in diastole"}
GRADE_TEXT = {"soft": "soft (like grade I/VI)", "loud": "loud (like grade II/VI or louder)"}
# The rhythm check finds an irregularly irregular rhythm (atrial fibrillation) and misses most single extra
# beats (reports/describe.md), so "regular" says what was looked for.
RHYTHM_TEXT = {"irregular": "Rhythm: irregular (the beat length jumps from beat to beat, as in atrial fibrillation): "
                            "a reason to refer on its own; feel the pulse and get an ECG",
               "regular": "Rhythm: regular (no irregularly irregular rhythm heard; single extra beats can be missed: "
                          "feel the pulse)",
               None: "Rhythm: too few beats to tell; feel the pulse"}


def murmur(result: dict) -> str | None:
    """"Murmur heard: holosystolic (...), loud (...)" for an abnormal answer whose murmur was located; that
    none was located, for another abnormal answer; None for the rest."""
    if not result.get("murmur_timing"):
        return ("Murmur: none located in the heart cycle (the abnormal score comes from the sound as a whole)"
                if result.get("label") == "abnormal" else None)
    text = f"Murmur heard: {TIMING_TEXT.get(result['murmur_timing'], result['murmur_timing'])}"
    return text + (f", {GRADE_TEXT[result['murmur_grade']]}" if result.get("murmur_grade") else "")


def headline(result: dict) -> str:
    return TOO_NOISY if result["label"] == "no_heartbeat" and result.get("artifact_heard") else HEADLINES[result["label"]]


def set_aside(result: dict) -> str | None:
    """"Left out (speech): 4-10 s, 21-24 s" when artifact windows left the decision."""
    if not result.get("set_aside"):
        return None
    spans = ", ".join(f"{s['start_s']:g}-{s['end_s']:g} s" for s in result["set_aside"])
    return f"Left out ({result.get('artifact_heard') or 'noise'}): {spans}"


def percent(p: float, cut: float) -> tuple[str, str]:
    """p and the cut as percentages, with a decimal where whole numbers would print them equal."""
    digits = 0 if round(p * 100) != round(cut * 100) else 1
    return f"{p:.{digits}%}", f"{cut:.{digits}%}"


# The diastolic listener (diastolic.py) raised a normal score to "refer": said in place of the chance's side.
DIASTOLIC_TEXT = ("but a diastolic murmur was heard by the second listener, which listens for the low rumble of "
                  "mitral stenosis and the blowing murmur of aortic regurgitation that the main score often misses: refer")


def chance(result: dict) -> str:
    """The chance of abnormal against the referral cut, and why the cut sits where it does."""
    p, cut = percent(result["p_abnormal"], result["threshold"])
    if result["label"] == "abnormal" and result.get("diastolic_heard") and result["p_abnormal"] < result["threshold"]:
        side = f"below the referral cut of {cut}, {DIASTOLIC_TEXT}"
    elif result["label"] == "abnormal":
        side = (f"at or above the referral cut of {cut}, which is set low on purpose: an extra referral costs less "
                "than a missed disease")
    else:
        side = f"below the referral cut of {cut}"
    return f"Chance the heart sound is abnormal: {p}, {side}"


def details(result: dict) -> list[str]:
    """The answer's supporting lines, plain text, in the order a clinician reads them."""
    if result["label"] == "no_heartbeat":
        if result.get("artifact_heard"):
            return [f"Not judged: {result['quality_reason']}.", RECORD_AGAIN]
        return [f"No usable heart sound: {result['quality_reason']}.", RECORD_AGAIN]
    heard = murmur(result)
    lines = [chance(result)] + ([heard] if heard else []) + [
             "Heart rate: " + (f"{result['heart_rate_bpm']:.0f} bpm" if result.get("heart_rate_bpm")
                               else "not steady enough to count"),
             RHYTHM_TEXT[result.get("rhythm")],
             f"Recording quality: {result['quality']}, {result['duration_s']:.0f} s analysed in "
             f"{len(result.get('windows') or [])} windows"]
    if left_out := set_aside(result):
        lines.append(left_out)
    if result.get("cut_note"):
        lines.append(f"About the cut: {result['cut_note']}")
    if result.get("caution"):
        lines.insert(0, f"Caution: {result['caution']}.")
    return lines


def one_line(row: dict) -> str:
    """The command line's line for one file (a Result's fields and `path`, or `path` and `error`)."""
    if "error" in row:
        return f"{row['path']}: could not judge: {row['error']}"
    if row["label"] == "no_heartbeat" and row.get("artifact_heard"):
        return f"{row['path']}: too noisy to judge, record again: {row['quality_reason']}"
    if row["label"] == "no_heartbeat":
        return f"{row['path']}: no heartbeat (confidence {row['confidence']:.0%}): {row['quality_reason']}"
    # The decision, then the chance of abnormal against the cut: "abnormal (confidence 42%)" misleads.
    p, cut = percent(row["p_abnormal"], row["threshold"])
    text = f"{row['path']}: {headline(row).lower()} (chance abnormal {p}, referral cut {cut})"
    if row.get("diastolic_heard"):
        text += ", diastolic murmur heard"
    if row.get("murmur_timing"):
        text += f", murmur {row['murmur_timing']}" + (f" {row['murmur_grade']}" if row.get("murmur_grade") else "")
    if row.get("heart_rate_bpm"):
        text += f", heart rate {row['heart_rate_bpm']:.0f} bpm"
    if row.get("rhythm"):
        text += f", rhythm {row['rhythm']}"
    if row.get("caution"):
        text += f" [{row['caution']}]"
    return text
