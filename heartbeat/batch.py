"""Batch screening: thousands of files on every core, resumable, one bad file never stops the run."""
from __future__ import annotations

import csv
import json
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mp4", ".mov",
                  ".3gp", ".amr"}
CSV_COLUMNS = ["path", "label", "confidence", "p_abnormal", "threshold", "heart_rate_bpm", "quality", "quality_score",
               "quality_reason", "caution", "duration_s", "error", "error_code"]


def find_audio(inputs: Iterable[str]) -> list[str]:
    """Files as given, and audio files (by extension) found recursively in folders, sorted."""
    found = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            found.append(str(p))
    return found


def already_done(out: Path) -> set[str]:
    """Paths already in an earlier output file: a run can be stopped and resumed."""
    if not out.exists():
        return set()
    if out.suffix == ".csv":
        with out.open(newline="") as f:
            return {row["path"] for row in csv.DictReader(f)}
    return {json.loads(line)["path"] for line in out.read_text().splitlines() if line.strip()}


_model = None


def _init(model_path):
    global _model
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One thread per worker: with a process per core, BLAS/OpenMP pools in every worker only fight.
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    from .model import load_model
    _model = load_model(model_path)


def _one(path: str) -> dict:
    from .predict import predict_files
    try:
        return next(predict_files([path], model=_model))
    except Exception as e:  # a crash in one file must not stop thousands: record it and go on
        return {"path": path, "error": f"unexpected {type(e).__name__}", "error_code": "internal"}


def run(inputs: Iterable[str], out: Path, model_path=None, workers: int | None = None) -> dict:
    """Judge every file into `out` (.csv, or .jsonl for full results), skipping those already there."""
    paths = find_audio(inputs)
    done = already_done(out)
    todo = [p for p in paths if p not in done]
    workers = workers or min(os.cpu_count() or 1, 8)
    counts = {"found": len(paths), "skipped": len(paths) - len(todo), "judged": 0, "errors": 0}
    new_csv = out.suffix == ".csv" and not out.exists()
    with out.open("a", newline="") as f, Pool(workers, initializer=_init, initargs=(model_path,)) as pool:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore") if out.suffix == ".csv" else None
        if new_csv:
            writer.writeheader()
        for result in tqdm(pool.imap(_one, todo, chunksize=4), total=len(todo), desc="screening", unit="file"):
            if writer:
                writer.writerow(result)
            else:
                f.write(json.dumps(result) + "\n")
            f.flush()
            counts["judged"] += 1
            counts["errors"] += "error" in result
    return counts
