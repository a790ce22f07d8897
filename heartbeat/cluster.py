"""Screening on a Dask cluster: the rows of `batch.run`, made by workers that each load the bundle once.

    dask scheduler                                   # on one machine
    dask worker tcp://SCHEDULER:8786                 # on each worker machine (package + model bundle installed)
    python -m heartbeat predict DIR --out results.parquet --cluster tcp://SCHEDULER:8786

Files are read by path when the workers share the storage, or sent as bytes (`--send-bytes`) when they do
not. Dask reruns the tasks of a worker that dies; a file that cannot be judged is an error row, as locally.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from distributed import Client, WorkerPlugin, as_completed, get_worker

PLUGIN = "heartbeat-model"


class LoadModel(WorkerPlugin):
    """Loads the model bundle once per worker process, when the worker starts or joins."""

    name = PLUGIN

    def __init__(self, model_path=None):
        self.model_path = model_path

    def setup(self, worker):
        # One BLAS/OpenMP thread per worker thread, as in the local pool: pools in every worker only fight.
        from threadpoolctl import threadpool_limits
        threadpool_limits(worker.state.nthreads)
        from .model import load_model
        self.model = load_model(self.model_path)


def _judge(path: str, data: bytes | None = None, location: str | None = None) -> dict:
    """On a worker: one file's row, as the local pool makes it (`path` as the user gave it; read from
    `data`, or from `location`, its absolute form, since a worker's working directory is its own)."""
    from .predict import judge
    return judge(data if data is not None else location, get_worker().plugins[PLUGIN].model, path=path).row()


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None          # the worker reports it (by path) as a file that cannot be read


def _judge_chunk(items: list[tuple[str, bytes | None, str]]) -> list[dict]:
    return [_judge(*item) for item in items]


CHUNK = 16      # files per task: with one file per task, scheduling costs more than judging (~10 ms a file)


@contextmanager
def judge_on_cluster(paths: list[str], address: str, model_path=None, send_bytes: bool = False) -> Iterator:
    """Rows as they finish, in any order. Files go CHUNK to a task, a few tasks per worker thread ahead of
    the workers, so memory stays bounded with send_bytes (files read here and sent)."""
    with Client(address) as client:
        client.register_plugin(LoadModel(str(model_path) if model_path else None))
        chunks = iter([paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)])
        owner = {}                            # task key -> its files, for rows about lost tasks

        def submit(chunk):
            items = [(p, _read_bytes(p) if send_bytes else None, os.path.abspath(p)) for p in chunk]
            # pure=False: each chunk is its own task even if two chunks hold the same bytes
            future = client.submit(_judge_chunk, items, pure=False, retries=2)
            owner[future.key] = chunk
            return future

        def rows():
            pending = as_completed()
            for chunk in chunks:
                pending.add(submit(chunk))
                if pending.count() >= 3 * max(1, sum(client.nthreads().values())):
                    break
            for future in pending:
                try:
                    yield from future.result()
                except Exception as e:     # e.g. KilledWorker: the chunk took down worker after worker
                    yield from ({"path": p, "error": f"the cluster could not judge it ({type(e).__name__})",
                                 "error_code": "cluster"} for p in owner[future.key])
                owner.pop(future.key, None)
                future.release()
                nxt = next(chunks, None)
                if nxt is not None:
                    pending.add(submit(nxt))

        yield rows()


class LocalCluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, started as on a real cluster (for the
    tests and the benchmark; a real deployment starts them on its machines, or through dask-kubernetes or
    dask-jobqueue). Workers run without a nanny, so a killed worker stays dead."""

    def __init__(self, folder, workers: int = 2, port: int | None = None):
        import socket
        import sys
        from pathlib import Path
        self.folder, self.dask = Path(folder), str(Path(sys.executable).parent / "dask")
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        self.workers = [self.add_worker() for _ in range(workers)]
        self.wait_for(workers)

    def _start(self, *args):
        import subprocess
        import time
        log = (self.folder / f"dask-{args[0]}-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen([self.dask, *args], cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)

    def add_worker(self):
        return self._start("worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard")

    def wait_for(self, n: int) -> None:
        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        import subprocess
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
