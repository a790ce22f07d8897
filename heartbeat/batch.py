"""Batch screening: thousands of files on every core (or a Dask cluster: cluster.py), resumable, one bad
file never stops the run. Output as CSV, JSON lines (full results) or Parquet."""
from __future__ import annotations

import csv
import json
import os
import multiprocessing
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mp4", ".mov",
                  ".3gp", ".amr"}
CSV_COLUMNS = ["path", "label", "confidence", "p_abnormal", "threshold", "heart_rate_bpm", "quality", "quality_score",
               "quality_reason", "caution", "duration_s", "murmur_timing", "murmur_grade", "rhythm", "diastolic_heard", "artifact_heard",
               "error", "error_code"]


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


def _partial(out: Path) -> Path:
    """Where Parquet rows wait, one JSON line each, until the run ends (a Parquet file cannot be appended)."""
    return out.with_name(out.name + ".partial.jsonl")


def already_done(out: Path) -> set[str]:
    """Paths already in an earlier output file: a run can be stopped and resumed."""
    if out.suffix == ".parquet":
        import pandas as pd
        done = set(pd.read_parquet(out, columns=["path"])["path"]) if out.exists() else set()
        return done | already_done(_partial(out))
    if not out.exists():
        return set()
    if out.suffix == ".csv":
        with out.open(newline="") as f:
            return {row["path"] for row in csv.DictReader(f)}
    return {json.loads(line)["path"] for line in out.read_text().splitlines() if line.strip()}


def write_rows(results: Iterable[dict], out: Path, total: int) -> dict:
    """Append each result to `out` as it arrives (flushed, so a stopped run keeps every row it made)."""
    counts = {"judged": 0, "errors": 0}
    target = _partial(out) if out.suffix == ".parquet" else out
    new_csv = out.suffix == ".csv" and not out.exists()
    columns = CSV_COLUMNS
    if out.suffix == ".csv" and not new_csv:       # resuming: keep the columns the file was begun with
        with out.open(newline="") as f:
            columns = next(csv.reader(f), None) or CSV_COLUMNS
    with target.open("a", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore") if out.suffix == ".csv" else None
        if new_csv:
            writer.writeheader()
        for result in tqdm(results, total=total, desc="screening", unit="file"):
            if writer:
                writer.writerow(result)
            else:
                f.write(json.dumps(result) + "\n")
            f.flush()
            counts["judged"] += 1
            counts["errors"] += "error" in result
    if out.suffix == ".parquet":
        _to_parquet(out)
    return counts


def _to_parquet(out: Path) -> None:
    """Earlier Parquet rows plus the waiting ones, in one file (pyarrow), then the waiting file removed."""
    import pandas as pd
    rows = [json.loads(line) for line in _partial(out).read_text().splitlines() if line.strip()]
    new = pd.DataFrame(rows)
    for column in ("windows", "s1_times", "s2_times", "set_aside"):       # lists as JSON text: one flat table
        if column in new:
            new[column] = new[column].map(lambda v: json.dumps(v) if isinstance(v, list) else None)
    table = pd.concat([pd.read_parquet(out), new], ignore_index=True) if out.exists() else new
    table.to_parquet(out, index=False)
    _partial(out).unlink()


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
    from .predict import judge
    return judge(path, _model).row()


def run(inputs: Iterable[str], out: Path, model_path=None, workers: int | None = None, cluster: str | None = None,
        send_bytes: bool = False) -> dict:
    """Judge every file into `out` (.csv, .jsonl for full results, or .parquet), skipping those already
    there: on this machine's cores, or on the Dask cluster at `cluster` (see cluster.py)."""
    paths = find_audio(inputs)
    done = already_done(out)
    todo = [p for p in paths if p not in done]
    counts = {"found": len(paths), "skipped": len(paths) - len(todo)}
    if cluster:
        from .cluster import judge_on_cluster         # Dask is imported only when a cluster is asked for
        with judge_on_cluster(todo, cluster, model_path, send_bytes) as results:
            return counts | write_rows(results, out, len(todo))
    workers = workers or min(os.cpu_count() or 1, 8)
    # Fresh worker processes, not forks: a fork of a process that has run TensorFlow (a notebook, a test
    # session that trained) aborts when the child collects TensorFlow's objects, and the pool then waits forever.
    with multiprocessing.get_context("forkserver").Pool(workers, initializer=_init, initargs=(model_path,)) as pool:
        return counts | write_rows(pool.imap(_one, todo, chunksize=4), out, len(todo))
