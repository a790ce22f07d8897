"""One recording in, one answer out: audio -> front end -> quality gate -> windows -> model -> Result
(with the diastolic listener, which may raise the answer to abnormal: diastolic.py; and for an abnormal
answer, what kind of murmur: describe.py).

`judge` is the one function that judges one file, with one error rule, for the command line, the batch,
the Dask workers and the app alike: a file that cannot be judged gives a message for a clinician and an
error code, never an exception, and nothing about the patient is logged.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import numpy as np

from .artifacts import screen
from .audio import AudioError, load_audio
from .describe import describe, profile_of
from .diastolic import MASKED_NOTE, UNCHECKED_NOTE, input_of, masked
from .features import model_input
from .frontend import Prepared, judged_part, prepare
from .model import HeartModel, load_model
from .quality import NOISY_CAUTION, measure

LABELS = ("normal", "abnormal", "no_heartbeat")
# An abnormal answer below NEAR_CUT times the referral cut, where much of the recording leans towards an artifact
# (artifacts.LEANING_SHARE), is "noisy", not "good": speech or movement over a normal heart moved its score past the
# cut by this much in most such false referrals (policies harness: p_abnormal 0.10-0.30, median 0.14, against the
# cut's 0.10), while real abnormal answers lie higher (median 0.28).
NEAR_CUT = 2.0
log = logging.getLogger("heartbeat")


@dataclass
class Result:
    label: str                        # normal | abnormal | no_heartbeat
    confidence: float                 # calibrated probability that `label` is right (gate score for no_heartbeat;
    #                                   for an answer the diastolic listener raised, that listener's own probability)
    p_abnormal: float | None          # calibrated, None when no usable heart sound
    threshold: float                  # p_abnormal at or above this is called abnormal (the referral cut)
    heart_rate_bpm: float | None
    quality: str                      # good | noisy (judged, with a caution) | unusable (no heartbeat)
    quality_score: float              # 0..1: how sure the gate is that a heart sound is present
    quality_reason: str | None        # why unusable, in plain words
    caution: str | None               # said wherever the answer is shown: a noisy recording, a diastole too loud
    #                                   to hear a rumble under (a normal answer), stretches set aside
    duration_s: float
    windows: list[dict] = field(default_factory=list)   # start_s, end_s, p_abnormal per analysis window
    s1_times: list[float] = field(default_factory=list)
    s2_times: list[float] = field(default_factory=list)
    cut_note: str | None = None       # what the referral cut was chosen for, and what it costs
    murmur_timing: str | None = None  # describe.TIMINGS; None unless abnormal with a murmur located in the cycle
    murmur_grade: str | None = None   # soft (grade I/VI) | loud (II/VI or louder), with a timing
    rhythm: str | None = None         # regular | irregular; None: too few beat intervals to tell (describe.py)
    # The second listener (diastolic.py) heard a diastolic murmur: the answer is abnormal whatever p_abnormal
    # says. None: not assessed (no listener in the bundle, or too few whole cycles).
    diastolic_heard: bool | None = None
    set_aside: list[dict] = field(default_factory=list)   # start_s, end_s of stretches left out (artifacts.py)
    artifact_heard: str | None = None  # what was heard in them: speech, knocks or bumps, ...

    def to_dict(self) -> dict:
        return asdict(self)


def decide(prepared: Prepared, model: HeartModel) -> Result:
    """The gate's verdict, then (for a usable heart sound) the network's, on a prepared recording."""
    cfg = model.features
    quality = model.quality.judge(measure(prepared))
    common = dict(threshold=model.bundle.threshold, quality=quality.level, quality_score=round(quality.score, 3),
                  quality_reason=quality.reason, caution=NOISY_CAUTION if quality.level == "noisy" else None,
                  duration_s=round(prepared.duration_s, 2), cut_note=model.bundle.info.get("cut_note"))
    if not quality.usable:
        return Result("no_heartbeat", round(1 - quality.score, 3), None, heart_rate_bpm=None, **common)
    screened = screen(prepared, cfg, model.artifacts)
    # The windows judged are scaled on their own frames: a stretch set aside moves nothing in them.
    batch, starts = model_input(judged_part(prepared, cfg, model.segmenter, screened.keep), cfg, screened.keep)
    keep = screened.keep if screened.keep is not None else np.ones(len(starts), bool)
    aside = dict(set_aside=stretches(starts[~keep], cfg.window_s), artifact_heard=screened.heard)
    cut = model.bundle.threshold
    # An artifact never takes a referral away (artifacts.py, "the answer"): with windows set aside, the whole
    # recording is judged too, as if nothing had been found; where it says abnormal, the answer says so.
    whole = model.p_abnormal(model.window_logits(model_input(prepared, cfg)[0])) if screened.heard else None
    if not screened.enough:
        # Too little clean sound left to judge: record again, saying what was heard and how it sounds as recorded.
        reason = f"{screened.heard} covered the heart sounds in most of the recording"
        if whole >= cut:
            reason += "; as recorded it sounds abnormal: refer if you cannot record again"
        return Result("no_heartbeat", 1.0, None, heart_rate_bpm=None, **aside,
                      **(common | dict(quality="unusable", quality_reason=reason, caution=None)))
    logits = model.window_logits(batch)
    p = model.p_abnormal(logits[keep])
    # Abnormal only with the set-aside stretch in it: the score came from the artifact, or from a murmur the
    # detector took for one. Referred all the same, and never as "good" (below).
    from_artifact = whole is not None and p < cut <= whole
    p = whole if from_artifact else p
    label = "abnormal" if p >= cut else "normal"
    # Referred all the same; said to be close, and what may have moved it.
    near_cut = not from_artifact and screened.leaning is not None and cut <= p < NEAR_CUT * cut
    confidence = p if label == "abnormal" else 1 - p
    per_window = model.bundle.calibration(logits)
    beats = prepared.beats
    # The diastolic listener can only raise an answer: the network barely hears a diastolic rumble.
    profile = profile_of(prepared) if model.diastolic is not None or label == "abnormal" else None
    heard_in = None if model.diastolic is None else input_of(prepared, profile)
    rumble = model.diastolic.heard(heard_in) if model.diastolic is not None else None
    if rumble and label == "normal":
        label, confidence = "abnormal", model.diastolic.probability(heard_in)
    kind = describe(prepared, model.describer, label == "abnormal", profile, bool(rumble))
    notes = [common["caution"]] if common["caution"] else []
    if model.diastolic is not None and label == "normal":
        if rumble is None:              # the listener could not profile diastole: it did not listen
            notes.append(UNCHECKED_NOTE)
        elif masked(beats.contrast_db):
            notes.append(MASKED_NOTE)
    if from_artifact:
        notes.append(f"{screened.heard} heard in part of the recording: abnormal only with that part in; "
                     "record again if you can")
        common["quality"] = "noisy"
    elif screened.heard:
        notes.append(f"{screened.heard} heard in part of the recording: that part was left out")
    if near_cut:
        notes.append(f"{screened.leaning} may be heard through much of the recording, and the answer lies close to "
                     "the referral cut: record again if you can")
        common["quality"] = "noisy"
    common["caution"] = "; ".join(notes) or None
    return Result(label, round(confidence, 3), round(p, 3),
                  murmur_timing=kind.murmur_timing, murmur_grade=kind.murmur_grade, rhythm=kind.rhythm,
                  diastolic_heard=rumble,
                  heart_rate_bpm=beats.heart_rate_bpm, **common, **aside,
                  windows=[{"start_s": round(float(s), 2), "end_s": round(float(s) + cfg.window_s, 2),
                            "p_abnormal": round(float(q), 3), "set_aside": not bool(k)}
                           for s, q, k in zip(starts, per_window, keep)],
                  s1_times=beats.s1_times, s2_times=beats.s2_times)


def stretches(starts, window_s: float) -> list[dict]:
    """Overlapping windows starting at `starts` merged into the stretches of time they cover."""
    out: list[dict] = []
    for s in sorted(float(t) for t in starts):
        if out and s <= out[-1]["end_s"] + 0.1:      # touching (window starts fall on 40 ms frames)
            out[-1]["end_s"] = round(s + window_s, 2)
        else:
            out.append({"start_s": round(s, 2), "end_s": round(s + window_s, 2)})
    return out


def classify(audio, model: HeartModel) -> Result:
    """Judge a recording at the model's rate (what `read` returns)."""
    return decide(prepare(audio, model.features, model.segmenter), model)


def read(source, model: HeartModel, **limits):
    """Decode a file or bytes for `classify`: at the model's rate, at least one analysis window long."""
    return load_audio(source, model.features.sample_rate, min_seconds=model.features.window_s, **limits)


INTERNAL_ERROR = "Something went wrong while judging this recording. Please try again or record anew."


@dataclass
class Judged:
    """One file's outcome: a Result and what the front end made of the recording (for the page's
    pictures), or a clinician's message and an error code."""
    path: str | None
    result: Result | None = None
    prepared: Prepared | None = None
    error: str | None = None
    error_code: str | None = None

    def row(self) -> dict:
        """The row the command line, the batch and the API give: the Result's fields, or the error."""
        if self.result is None:
            return {"path": self.path, "error": self.error, "error_code": self.error_code}
        return {"path": self.path} | self.result.to_dict()


def judge(source, model: HeartModel, path: str | None = None, **limits) -> Judged:
    """Judge one file (a path or its bytes); `path` names it in the row (default: `source` itself).
    The one error rule: a recording that cannot be judged is an answer, not an exception."""
    path = path if path is not None else (str(source) if not isinstance(source, (bytes, bytearray)) else None)
    try:
        prepared = prepare(read(source, model, **limits), model.features, model.segmenter)
        return Judged(path, decide(prepared, model), prepared)
    except AudioError as e:
        return Judged(path, error=e.message, error_code=e.code)
    except Exception as e:   # logged by type only: no patient data in the log
        log.error("unexpected %s while judging a recording", type(e).__name__)
        return Judged(path, error=INTERNAL_ERROR, error_code="internal")


def predict_files(paths: Iterable[str], model: HeartModel | None = None, model_path=None) -> Iterator[dict]:
    """One row per file, in order (see Judged.row); one bad file never stops the others."""
    model = model or load_model(model_path)
    for path in paths:
        yield judge(path, model).row()
