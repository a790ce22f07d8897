"""Fit and evaluate the diastolic listener (heartbeat/diastolic.py): reports/diastolic_listener.md.

    python scripts/fit_diastolic.py [--model models/heartbeat] [--out reports] [--workers 2] [--copies 1]
                                    [--inputs shipped|profile|all] [--seeds 0,1,2,3,4] [--min-grade 2]
                                    [--false-alarms 0.01] [--patience 20]

1. Every recording of every database through the bundle's own front end, its cycle profile and spectral
   contrast kept, with the rate of its whole cycles (diastolic.listener_input reads all three). Each normal
   recording also gets two murmured copies (murmurs.add_murmur: one mitral stenosis, a third of those in atrial
   fibrillation, and one aortic regurgitation; grade I-IV at random), and half of the normals (their clean copy
   and both murmured ones, each an independent draw) also go through another device's chain (augment.channel),
   so the listener learns the murmur rather than a device. Cache: $HEARTBEAT_CACHE/diastolic.
2. Each database left out in turn: the listener fitted on the other databases' rows (normals against their
   murmured copies), its cut from their real normals (diastolic.FALSE_ALARMS of the worst of them), then on the
   held-out database: sensitivity on its synthetic murmurs by kind and grade, false alarms on its real normals,
   and, beside the network's held-out answers at the nested screening cut (reports/runs/logmel-cycle-soft2),
   the specificity and sensitivity of the two together against the network alone; CirCor's real diastolic
   murmurs.
3. Fitted on every database into the bundle (diastolic.json); with `--inputs profile` or `all` (what was shipped
   before, and what was tried) only the report is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from heartbeat import augment, screening                                      # noqa: E402
from heartbeat import describe as D                                           # noqa: E402
from heartbeat import diastolic as Dz                                         # noqa: E402
from heartbeat import murmurs as M                                            # noqa: E402
from heartbeat.cache import cached_table, in_workers                          # noqa: E402
from heartbeat.datasets import ALL_DBS, circor_patients, load_table           # noqa: E402
from heartbeat.diastolic import FALSE_ALARMS, MASKED_BELOW_DB, DiastolicListener  # noqa: E402
from heartbeat.model import DEFAULT_MODEL_DIR, load_model                     # noqa: E402

# The listener's network, fixed beforehand (a logistic regression on the same profile heard too little: mitral
# stenosis grade II+ 0.13 held out at the same false alarms; reports/diastolic_listener.md says so).
HIDDEN, ALPHA = (64,), 1e-3
# Early stopping waits PATIENCE epochs without a better validation score (scikit-learn's default, 10, until
# 2026-12-07): stopped sooner, the networks' held-out mitral stenosis grade II+ was 0.89 / 0.85 on seeds 0-4 / 5-9,
# at 20 0.90 / 0.91 with somewhat more false alarms on unseen devices (README, "Where the listener's operating point
# and capacity sit").
PATIENCE = 20
# Ten of them, from ten seeds, their logits averaged: one network's held-out mitral stenosis grade II+ swung with
# its seed from 0.59 to 0.67 (eight seeds, mean 0.63, taught grade I too), as its cut sits in the tail of the real
# normals' scores; five together at PATIENCE 20 heard 0.87-0.91 by seed set, ten 0.90 and 0.89 (seeds 0-9, 10-19;
# README); with the cycles' rate as input, ten 0.92 and 0.89 (reports/diastolic_listener.md).
SEEDS = range(10)
# Murmurs of grade I are not taught as murmurs: set 26 dB below S1/S2, they lie under diastole's own sound in most
# recordings (reports/diastolic_listener.md, by contrast_db), so labelled "murmur" they taught the listener to call
# such quiet normals murmurs. Five seeds averaged, held out: mitral stenosis grade II+ 0.73 without them, 0.64-0.65 with.
MIN_GRADE = 2
NETWORK_RUNS = ROOT / "reports" / "runs" / "logmel-cycle-soft2"
ROWS_VERSION = b"6"           # bump when _rows changes what it makes
_model = None


def _rows(job) -> list[dict]:
    """The profile rows of one recording: its own, and for a normal one the chained and murmured copies."""
    global _model
    path, model_dir, normal, seed, copies = job
    from heartbeat.audio import AudioError
    from heartbeat.frontend import prepare
    from heartbeat.predict import read
    if _model is None:
        _model = load_model(model_dir)
    cfg, seg = _model.features, _model.segmenter
    try:
        clean = prepare(read(path, _model), cfg, seg)
    except AudioError:
        return []

    def row(prepared, kind="none", grade=0, fibrillation=False, chain=False):
        profile = D.cycle_profile(prepared.cleaned, prepared.sample_rate, prepared.beats.states)
        contrast = Dz.spectral_contrast(prepared.cleaned, prepared.sample_rate, prepared.beats.states)
        return dict(path=path, kind=kind, grade=grade, fibrillation=fibrillation, chain=chain,
                    quiet_db=clean.beats.contrast_db,    # the clean recording's S1/S2 above its diastole
                    heart_rate=clean.beats.heart_rate_bpm,      # the clean recording's: the report's rate bins
                    rate=Dz.cycle_rate_bpm(prepared.beats.states),  # this copy's own: what the listener reads
                    rhythm=D.describe(prepared, _model.describer, False).rhythm,
                    profile=None if profile is None else profile.tolist(),
                    contrast=None if contrast is None else contrast.ravel().tolist())

    rows = [row(clean)]
    if not normal:
        return rows
    rng = np.random.default_rng(seed)
    chain = bool(rng.random() < 0.5)
    device = (lambda x, sr: augment.channel(x, sr, rng, snr_db=(5, 30))) if chain else None
    if chain:
        rows.append(row(prepare(clean.audio, cfg, seg, augment=device, rate=clean.sample_rate), chain=True))
    for kind in M.KINDS:
        for _ in range(copies):         # each copy an independent draw of grade, rhythm and noise
            grade = int(rng.choice(M.GRADES))
            fibrillation = kind == "mitral_stenosis" and bool(rng.random() < 1 / 3)
            y = M.add_murmur(clean.audio, clean.sample_rate, clean.beats.states, kind, grade, rng, fibrillation)
            if y is not None:
                heard = prepare(y, cfg, seg, augment=device, rate=clean.sample_rate)
                rows.append(row(heard, kind, grade, fibrillation, chain))
    return rows


def profiles(table: pd.DataFrame, model_dir: Path, workers: int, copies: int = 1) -> pd.DataFrame:
    def make() -> pd.DataFrame:
        jobs = [(p, str(model_dir), label == "normal", i, copies)
                for i, (p, label) in enumerate(zip(table["path"], table["label"]))]
        frame = pd.DataFrame([r for rows in in_workers(_rows, jobs, workers, "profiles") for r in rows])
        return frame.merge(table[["path", "database", "label", "group"]], on="path")

    sources = [p.read_bytes() for p in [Path(model_dir) / f for f in ("segmenter.json", "describe.json")]
               + [Path(m.__file__) for m in (D, Dz, M, augment)]]
    return cached_table("diastolic", "rows", sources + [ROWS_VERSION + (b"" if copies == 1 else f"copies={copies}".encode())],
                        make)


def _pipeline(seed: int):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), MLPClassifier(HIDDEN, alpha=ALPHA, max_iter=300, early_stopping=True,
                                                         n_iter_no_change=PATIENCE,
                                                         random_state=seed))


def _stored(a: np.ndarray) -> list:
    """Weights as the bundle's JSON holds them: 7 significant digits (a fifth of full precision's size); the cut
    is set on the listener as stored."""
    return np.vectorize(lambda v: float(f"{v:.7g}"))(a).tolist()


def fit(rows: pd.DataFrame, inputs: str = "shipped") -> DiastolicListener:
    """The listener fitted on `rows` (normals and their copies of grade MIN_GRADE and up), its cut from their real
    normals."""
    normals = rows[(rows["label"] == "normal") & ((rows["kind"] == "none") | (rows["grade"] >= MIN_GRADE))]
    xs = _inputs(normals, inputs)
    train = normals[[x is not None for x in xs]]
    X, y = np.stack([x for x in xs if x is not None]), (train["kind"] != "none").to_numpy()
    fitted = [_pipeline(seed).fit(X, y) for seed in SEEDS]
    scaler = fitted[0][0]               # the same standardisation in every member (same rows)
    listener = DiastolicListener(scaler.mean_.tolist(), scaler.scale_.tolist(),
                                 [[[_stored(w), _stored(b)] for w, b in zip(mlp.coefs_, mlp.intercepts_)]
                                  for _, mlp in fitted], 0.0,
                                 {"fitted_on": sorted(train["database"].unique()), "rows": int(len(train)),
                                  "inputs": inputs, "hidden": list(HIDDEN), "alpha": ALPHA, "seeds": list(SEEDS),
                                  "patience": PATIENCE,
                                  "min_grade": MIN_GRADE, "false_alarms": FALSE_ALARMS})
    real = train[(train["kind"] == "none") & ~train["chain"]]
    scores = _scores(listener, real, inputs)
    listener.cut = max(_cut(scores[(real["database"] == db).to_numpy()]) for db in real["database"].unique())
    return listener


def _cut(scores: np.ndarray) -> float:
    """The lowest cut that at most FALSE_ALARMS of `scores` reach."""
    s = np.sort(scores)
    allowed = int(np.floor(FALSE_ALARMS * len(s)))
    return float(np.nextafter(s[len(s) - allowed - 1], np.inf))


# What the listener reads: the shipped input (diastolic.listener_input), and two tried for the record.
INPUTS = {"shipped": ("profile, mid-diastole against mid-systole and the cycles' rate", "diastolic_listener.md"),
          "profile": ("the cycle profile alone (shipped until 2026-12-06)", "diastolic_profile.md"),
          "all": ("profile and every third of diastole against mid-systole and S1/S2 (tried)", "diastolic_contrast.md")}


def _inputs(rows: pd.DataFrame, inputs: str) -> list:
    """Each row's listener input (INPUTS); None where the recording had too few whole cycles."""
    if inputs == "profile":
        return [None if p is None else np.asarray(p) for p in rows["profile"]]
    if inputs == "all":
        return [None if p is None or c is None else np.r_[p, c] for p, c in zip(rows["profile"], rows["contrast"])]
    return [Dz.listener_input(p, c, None if pd.isna(r) else r)
            for p, c, r in zip(rows["profile"], rows["contrast"], rows["rate"])]


def _scores(listener: DiastolicListener, rows: pd.DataFrame, inputs: str = "shipped") -> np.ndarray:
    return np.array([np.nan if x is None else listener.score(x) for x in _inputs(rows, inputs)], float)


def evaluate(rows: pd.DataFrame, inputs: str = "shipped") -> tuple[pd.DataFrame, list[str]]:
    """Each database left out: the held-out rows with the listener's score and cut."""
    held = []
    for db in ALL_DBS:
        listener = fit(rows[rows["database"] != db], inputs)
        part = rows[rows["database"] == db].copy()
        part["score"], part["cut"] = _scores(listener, part, inputs), listener.cut
        held.append(part)
    held = pd.concat(held)
    held["heard"] = held["score"] >= held["cut"]
    return held, report(held, inputs)


def _fmt(x) -> str:
    return "-" if pd.isna(x) else f"{x:.2f}"


def report(held: pd.DataFrame, inputs: str = "shipped") -> list[str]:
    synth = held[held["kind"] != "none"]
    shipped = inputs == "shipped"
    lines = [f"# The diastolic listener, each database left out: it reads {INPUTS[inputs][0]}", "",
             ("Reproduce: `python scripts/fit_diastolic.py` (which also writes the bundle's `diastolic.json`). "
              if shipped else f"Reproduce: `python scripts/fit_diastolic.py --inputs {inputs}` (writes no bundle). ") +
             "How it works: `heartbeat/diastolic.py`; the sounds: `heartbeat/murmurs.py`. The listener is fitted on "
             "eight databases (their normal recordings against murmured copies of them) and its cut set so that at "
             f"most {FALSE_ALARMS:.0%} of any one of those databases' real normal recordings reach it; everything "
             "below is the ninth database, never seen. Rows without a profile (fewer than "
             f"{D.MIN_CYCLES} whole cycles found) are not assessed and count as not heard.", "",
             f"## (a) Synthetic diastolic murmurs held out ({len(synth)} copies of "
             f"{synth['path'].nunique()} normal recordings)", "",
             "| kind | grade I | grade II | grade III | grade IV | grade II+ | in atrial fibrillation (II+) | "
             "through another device (II+) |", "|---|---|---|---|---|---|---|---|"]
    for kind in M.KINDS:
        k = synth[synth["kind"] == kind]
        loud = k[k["grade"] >= 2]
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(_fmt(k.loc[k['grade'] == g, 'heard'].mean())
                                                                  for g in M.GRADES)
                     + f" | **{_fmt(loud['heard'].mean())}** | {_fmt(loud.loc[loud['fibrillation'], 'heard'].mean())} | "
                     f"{_fmt(loud.loc[loud['chain'], 'heard'].mean())} |")
    af = synth[(synth["kind"] == "mitral_stenosis") & synth["fibrillation"] & (synth["grade"] >= 2)]
    irregular = af["rhythm"] == "irregular"
    normals = held[(held["kind"] == "none") & ~held["chain"] & (held["label"] == "normal")]
    lines += ["", f"Mitral stenosis grade II+ in atrial fibrillation ({len(af)} copies): the listener hears "
              f"{_fmt(af['heard'].mean())}; the rhythm check (describe.py) calls {_fmt(irregular.mean())} of them "
              "irregular, and the answer then says the rhythm alone is a reason to refer; one or the other: "
              f"**{_fmt((af['heard'] | irregular).mean())}**. (Real normal recordings called irregular: "
              f"{_fmt((normals['rhythm'] == 'irregular').mean())}; the same copies in sinus rhythm: "
              f"{_fmt((synth.loc[(synth['kind'] == 'mitral_stenosis') & ~synth['fibrillation'], 'rhythm'] == 'irregular').mean())}.)"]
    lines += _by_quiet(synth, held)
    lines += _by_rate(synth)
    lines += ["", "Grade II and louder, both kinds, by held-out database (target >= 0.90): " + ", ".join(
        f"{db} {_fmt(g.loc[g['grade'] >= 2, 'heard'].mean())}" for db, g in synth.groupby("database")), "",
              "Tried first and not kept: a logistic regression on the same profile, same rows and cut rule, heard "
              "mitral stenosis grade II+ 0.13 and aortic regurgitation II+ 0.69 held out (the rumble fills the whole "
              "diastole, so it shows only in how the bands' levels combine, which a linear score cannot follow). Also "
              "tried and not kept: three murmured copies of each kind per normal recording instead of one "
              "(`--copies 3`, 2026-12-03): mitral stenosis grade II+ 0.52 and aortic regurgitation 0.85 held out, "
              "both lower at the same false-alarm rule. Shipped until 2026-12-06: the profile alone (`--inputs profile`, "
              "`reports/diastolic_profile.md`): mitral stenosis grade II+ 0.62, aortic regurgitation 0.90, false alarms "
              "0.00-0.04 (the profile is relative to diastole's quietest stretch, which a rumble filling diastole lifts "
              "too). Tried and not kept (2026-12-06): every third of diastole against mid-systole and against S1/S2 "
              "(`--inputs all`, `reports/diastolic_contrast.md`): mitral stenosis grade II+ 0.74, but half of "
              "training-f's real normals reached its cut when training-f was never heard (late diastole holds S1's "
              "onset where the segmenter places S1 late, and the heart sounds as reference carry the device). "
              "Each of those figures is one network's, from one seed, and all of them until here were measured on the "
              "grade scale assumed until 2026-12-07 (6 dB quieter; murmurs.py). Shipped until the evening of 2026-12-06: one network (seed 0), "
              "taught grade I murmurs too: mitral stenosis grade II+ 0.70, aortic regurgitation 0.90 on the rows made "
              "before the FFT change (dsp.rfft); on the rows as made now seeds 0-7 of that recipe heard 0.59-0.67 (mean 0.63; `--seeds 3 --min-grade "
              "1`). Then five networks' logits averaged, taught grade 2 and up only: 0.73 on that scale "
              "(seeds 0-4 and 5-9 alike). Since 2026-12-07 the grades are anchored on CirCor's real murmurs "
              "(reports/murmur_levels.md) and the same recipe is refitted on them: five networks, seeds 0-4 / 5-9, mitral "
              "stenosis grade II+ 0.89 / 0.85, aortic regurgitation 0.94 / 0.93 (taught grade I too, seeds 0-4: 0.84 and "
              "0.93). Since the evening of 2026-12-07 early stopping waits 20 epochs instead of 10 and ten networks are "
              "averaged (five networks at 20: 0.90 / 0.91 on seeds 0-4 / 5-9). Since the night of 2026-12-07 a fast heart's "
              "short diastole is profiled with a one-frame margin where two do not fit (diastolic.MIN_MARGIN_FRAMES): "
              "before, ten networks heard mitral stenosis grade II+ 0.90 (0.43 over 130 bpm) and "
              "7-11% of CirCor's, set_a's and set_b's copies went unassessed; and the rate of the cycles is read too "
              "(diastolic.cycle_rate_bpm; what is above): without it, on the same rows, mitral stenosis grade II+ 0.91 "
              "/ 0.89 (seeds 0-9 / 10-19), both kinds CirCor 0.89 / 0.86 and set_b 0.89 / 0.88, and training-f's "
              "held-out normals over the cut 0.06 / 0.18 (with it 0.92 / 0.89; CirCor 0.90 / 0.91, set_b 0.91 / 0.91; "
              "training-f 0.10 / 0.11).", ""]

    real = held[(held["kind"] == "none") & ~held["chain"]]
    net = _network(real)
    lines += ["## (b) Real recordings held out: what the listener adds to the network", "",
              "The network's answers are its own leave-one-database-out predictions at the nested screening cut "
              "(`reports/runs/logmel-cycle-soft2`, as `reports/cross_device.md`); \"both\" refers when either does.", "",
              "| held out | normals | listener's false alarms | Sp network | Sp both | abnormal | Se network | Se both |",
              "|---|---|---|---|---|---|---|---|"]
    for db, g in net.groupby("database"):
        n, a = g[g["label"] == "normal"], g[g["label"] == "abnormal"]
        lines.append(f"| {db} | {len(n)} | {_fmt(n['heard'].mean())} | {_fmt(1 - n['net'].mean())} | "
                     f"{_fmt(1 - (n['net'] | n['heard']).mean())} | {len(a)} | {_fmt(a['net'].mean())} | "
                     f"{_fmt((a['net'] | a['heard']).mean())} |")
    patients = circor_patients()
    dia = {f"circor2022/{pid}" for pid in patients.index[patients["Diastolic murmur timing"].notna()]}
    d = real[real["group"].isin(dia)]
    lines += ["", f"CirCor's real diastolic murmurs ({len(d)}, all early-diastolic), held out with CirCor: the listener "
              f"hears {int(d['heard'].sum())} of {len(d)} (logit - cut: "
              + ", ".join("not assessed" if pd.isna(s) else f"{s - c:+.1f}" for s, c in zip(d["score"], d["cut"])) + ").",
              ""]
    return lines


QUIET_BINS_DB = (MASKED_BELOW_DB, 14, 20)    # the first: where a normal answer says a rumble could hide
RATE_BINS_BPM = (0, 70, 90, 110, 130, np.inf)  # the last: where, before, the listener abstained on most fast hearts


def _by_quiet(synth: pd.DataFrame, held: pd.DataFrame) -> list[str]:
    """Heard by grade and by how far the clean recording's S1/S2 stand above its diastole (beats.contrast_db):
    grade g sits murmurs.GRADE_DB[g] below S1/S2, so where diastole's own sound is louder than that, the murmur
    lies under it."""
    edges = (-np.inf, *QUIET_BINS_DB, np.inf)
    names = [f"<= {QUIET_BINS_DB[0]:g} dB"] + [f"{a:g}-{b:g} dB" for a, b in zip(QUIET_BINS_DB, QUIET_BINS_DB[1:])] \
        + [f"> {QUIET_BINS_DB[-1]:g} dB"]
    s = synth.assign(bin=pd.cut(synth["quiet_db"], edges, labels=names))
    normals = held[(held["kind"] == "none") & ~held["chain"] & (held["label"] == "normal")]
    share = pd.cut(normals["quiet_db"], edges, labels=names).value_counts(normalize=True)
    lines = ["", "By how far the clean recording's S1/S2 stand above its own diastole (the segmenter's "
             "`contrast_db`; grade I-IV sit " + ", ".join(f"{-M.GRADE_DB[g]:.0f}" for g in M.GRADES)
             + " dB below S1/S2, so a murmur softer than the recording's diastolic sound lies under it):", "",
             "| kind | grade | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for kind in M.KINDS:
        for g in M.GRADES:
            k = s[(s["kind"] == kind) & (s["grade"] == g)]
            lines.append(f"| {kind.replace('_', ' ')} | {g} | " + " | ".join(
                f"{_fmt(k.loc[k['bin'] == b, 'heard'].mean())} ({int((k['bin'] == b).sum())})" for b in names) + " |")
    lines.append("| *real normals in each band* | | " + " | ".join(f"{share.get(b, 0):.2f}" for b in names) + " |")
    lines += ["", f"So a normal answer whose S1/S2 stand no more than {MASKED_BELOW_DB:g} dB above diastole says that a soft "
              "diastolic murmur could be missed there (`diastolic.MASKED_BELOW_DB`)."]
    return lines


def _by_rate(synth: pd.DataFrame) -> list[str]:
    """Grade II+ heard, and the share left unassessed (too few whole cycles profiled), by the clean recording's
    heart rate: a fast heart's diastole is a few of the segmenter's 20 ms frames."""
    s = synth[synth["grade"] >= 2]
    bins = pd.cut(s["heart_rate"], RATE_BINS_BPM)
    names = [f"{a:g}-{b:g}" if b < np.inf else f"over {a:g}" for a, b in zip(RATE_BINS_BPM, RATE_BINS_BPM[1:])]
    lines = ["", "Grade II and louder by the clean recording's heart rate (bpm; copies in brackets), and the share the "
             "listener could not assess (fewer than 3 whole cycles profiled; counted as missed above):", "",
             "| kind | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in M.KINDS:
        k = s[s["kind"] == kind]
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(
            f"{_fmt(g['heard'].mean())} ({len(g)})" for _, g in k.groupby(bins[k.index], observed=False)) + " |")
    lines.append("| *unassessed, both kinds* | " + " | ".join(
        f"{_fmt(g['score'].isna().mean())}" for _, g in s.groupby(bins, observed=False)) + " |")
    return lines


def _network(real: pd.DataFrame) -> pd.DataFrame:
    """`real` with `net`: the network's held-out answer at the nested screening cut (False where it has none)."""
    pred = screening.nested(screening.lodo_predictions(NETWORK_RUNS))
    flag = dict(zip(pred["path"], pred["p"] >= pred["threshold"]))
    return real.assign(net=real["path"].map(flag).fillna(False).astype(bool),
                       heard=real["heard"].fillna(False).astype(bool))


def main(argv=None) -> int:
    global SEEDS, MIN_GRADE, FALSE_ALARMS, PATIENCE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--out", default=str(ROOT / "reports"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--copies", type=int, default=1, help="murmured copies of each kind per normal recording")
    ap.add_argument("--inputs", choices=list(INPUTS), default="shipped",
                    help="what the listener reads: " + "; ".join(f"{k}: {v[0]}" for k, v in INPUTS.items()))
    ap.add_argument("--seeds", help="comma-separated seeds of the averaged networks (default: 0-9); with this, "
                                    "--min-grade, --false-alarms or --patience the held-out report is printed and nothing is "
                                    "written")
    ap.add_argument("--min-grade", type=int, default=MIN_GRADE, help="the softest grade taught as a murmur")
    ap.add_argument("--false-alarms", type=float, default=FALSE_ALARMS,
                    help="the share of any fitting database's real normals the cut may let through")
    ap.add_argument("--patience", type=int, default=PATIENCE, help="early stopping's epochs without improvement")
    args = ap.parse_args(argv)
    trial = (args.seeds is not None or args.min_grade != MIN_GRADE or args.false_alarms != FALSE_ALARMS
             or args.patience != PATIENCE)
    SEEDS = [int(s) for s in args.seeds.split(",")] if args.seeds else SEEDS
    MIN_GRADE, FALSE_ALARMS, PATIENCE = args.min_grade, args.false_alarms, args.patience
    table = load_table()
    table = table[table["label"].isin(["normal", "abnormal"])]
    rows = profiles(table, Path(args.model), args.workers, args.copies)
    held, lines = evaluate(rows, args.inputs)
    print("\n".join(lines))
    if trial:
        return 0
    (Path(args.out) / INPUTS[args.inputs][1]).write_text("\n".join(lines))
    if args.inputs != "shipped":      # tried, not shipped: a report beside the shipped one, no bundle
        return 0
    listener = fit(rows)
    listener.info["held_out"] = {db: {"false_alarms": float(g.loc[(g["kind"] == "none") & ~g["chain"]
                                                                    & (g["label"] == "normal"), "heard"].mean()),
                                      "synthetic_grade2plus": float(g.loc[g["grade"] >= 2, "heard"].mean())}
                                 for db, g in held.groupby("database")}
    (Path(args.model) / "diastolic.json").write_text(listener.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
