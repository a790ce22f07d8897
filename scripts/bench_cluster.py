"""Screening throughput: this machine's process pool against a Dask scheduler with 1 and 2 worker
processes on the same machine, on the same files in the same run (ratios, since these machines are noisy).

    python scripts/bench_cluster.py [--databases training-a ...]   # default: all of PhysioNet 2016
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heartbeat.batch import run  # noqa: E402
from heartbeat.cluster import LocalCluster  # noqa: E402
from heartbeat.datasets import PHYSIONET_DBS, load_table, select  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", nargs="+", default=PHYSIONET_DBS)
    args = parser.parse_args()
    paths = select(load_table(), args.databases)["path"].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run(paths, tmp / "local.csv", workers=2)
        local = time.perf_counter() - t0
        print(f"{len(paths)} files; local pool, 2 processes: {local:.1f} s ({len(paths) / local:.0f} files/s)")
        for workers in (1, 2):
            with LocalCluster(tmp, workers) as cluster:        # started before the clock: a cluster is up already
                t0 = time.perf_counter()
                run(paths, tmp / f"cluster{workers}.csv", cluster=cluster.address)
                took = time.perf_counter() - t0
            print(f"Dask scheduler + {workers} worker process(es): {took:.1f} s ({len(paths) / took:.0f} files/s), "
                  f"{took / local:.2f}x the local run's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
