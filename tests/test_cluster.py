"""Screening on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from heartbeat.batch import run

pytestmark = pytest.mark.slow
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from heartbeat.cluster import LocalCluster
    c = LocalCluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def recordings(table):
    """A few hundred real recordings from every database, as relative paths (a worker's directory is its own)."""
    sample = table.groupby("database", group_keys=False)[list(table.columns)].apply(lambda g: g.head(30))
    return [os.path.relpath(p) for p in sample["path"]]


@pytest.fixture(scope="module")
def local_rows(recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "local.csv"
    run(recordings, out, workers=2)
    return pd.read_csv(out).set_index("path").sort_index()


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.index) == list(b.index)
    labels = [x["label"].astype(object).where(x["label"].notna(), "error").tolist() for x in (a, b)]
    assert labels[0] == labels[1]
    pd.testing.assert_series_equal(a["p_abnormal"], b["p_abnormal"], check_dtype=False, check_names=False, atol=1e-9)
    pd.testing.assert_series_equal(a["quality_score"], b["quality_score"], check_dtype=False, check_names=False)


def test_cluster_rows_are_the_local_rows(cluster, recordings, local_rows, tmp_path):
    out = tmp_path / "cluster.parquet"
    counts = run(recordings, out, cluster=cluster.address)
    assert counts["judged"] == len(recordings) >= 240
    _same_rows(pd.read_parquet(out).set_index("path").sort_index(), local_rows)


def test_files_sent_as_bytes_give_the_same_rows(cluster, recordings, local_rows, tmp_path):
    out = tmp_path / "bytes.jsonl"
    run(recordings[:60], out, cluster=cluster.address, send_bytes=True)
    _same_rows(pd.read_json(out, lines=True).set_index("path").sort_index(), local_rows.loc[sorted(recordings[:60])])


def test_an_interrupted_run_resumes(cluster, recordings, local_rows, tmp_path):
    out = tmp_path / "resumed.parquet"
    run(recordings[:100], out, cluster=cluster.address)                  # as if stopped after 100 files
    counts = run(recordings, out, cluster=cluster.address)
    assert counts["skipped"] == 100 and counts["judged"] == len(recordings) - 100
    _same_rows(pd.read_parquet(out).set_index("path").sort_index(), local_rows)


def test_an_unreadable_file_is_an_error_row(cluster, tmp_path):
    bad = tmp_path / "damaged.wav"
    bad.write_bytes(b"RIFF" + os.urandom(3000))
    out = tmp_path / "errors.csv"
    run([str(bad)], out, cluster=cluster.address)
    row = pd.read_csv(out).iloc[0]
    assert row["path"] == str(bad) and isinstance(row["error"], str) and row["error_code"] in ("corrupt", "not_audio")


def test_a_worker_killed_mid_run_loses_no_rows(cluster, recordings, local_rows, tmp_path):
    """SIGKILL one of the two workers once rows are coming in: Dask reruns its tasks on the other."""
    out = tmp_path / "killed.jsonl"
    killed = threading.Event()

    def kill_when_running():
        while not out.exists() or len(out.read_text().splitlines()) < 20:
            time.sleep(0.05)
        os.kill(cluster.workers[0].pid, signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_when_running, daemon=True).start()
    counts = run(recordings, out, cluster=cluster.address)
    assert killed.is_set() and cluster.workers[0].wait(10) == -signal.SIGKILL
    rows = pd.read_json(out, lines=True)
    assert counts["judged"] == len(recordings) and rows["path"].is_unique
    _same_rows(rows.set_index("path").sort_index(), local_rows)
    cluster.workers[0] = cluster.add_worker()                           # for any test after this one
    cluster.wait_for(2)


def test_without_a_cluster_dask_is_not_imported(recordings, tmp_path):
    code = ("import sys; from heartbeat.batch import run; "
            f"run({recordings[:4]!r}, __import__('pathlib').Path({str(tmp_path / 'x.csv')!r}), workers=1); "
            "print('dask' in sys.modules or 'distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd())
    assert out.stdout.strip().endswith("False"), out.stderr[-2000:]
