"""The app's speed and memory, through its real HTTP API on 127.0.0.1.

    python scripts/bench_app.py [--requests 30] [--clients 20] [--python .venv-app/bin/python]

Runs the app with the serving environment's Python (`make run`'s .venv-app when it exists) and prints:
launch to first answer, the serving process's peak memory (VmHWM) after 20 simultaneous clients, the
upload-to-answer round trip for a 30 s recording (median), and whether all 20 clients were answered.
Baselines measured in the same run: a bare `import gradio` in the same Python (time and memory), the
floor that no Gradio app can go below. Targets (issue 11): launch <= 4 s, peak <= 300 MB, <= 300 ms.
Figures, not a pass/fail test.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


BARE_GRADIO = ("import gradio\nfor line in open('/proc/self/status'):\n"
               "    if line.startswith('VmHWM:'): print(int(line.split()[1]) / 1024)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=20)
    app_python = ROOT / ".venv-app" / "bin" / "python"
    parser.add_argument("--python", default=str(app_python if app_python.exists() else sys.executable),
                        help="the Python that serves the app (default: .venv-app's, as `make run` uses)")
    args = parser.parse_args(argv)
    from gradio_client import Client, handle_file
    from heartbeat.datasets import load_table, select
    import soxr

    path = select(load_table(), ["training-a"]).query("duration_s >= 30")["path"].iloc[0]
    x, sr = sf.read(path)
    tmp = Path(tempfile.mkdtemp())
    rec = tmp / "recording-30s.wav"    # what a browser microphone hands over: 16-bit mono 44.1 kHz WAV
    sf.write(rec, soxr.resample(x[: 30 * sr], sr, 44100) * 0.8, 44100, subtype="PCM_16")

    # Baseline: Gradio alone, in the same Python, in this same run.
    t = time.perf_counter()
    gradio_mb = float(subprocess.run([args.python, "-c", BARE_GRADIO], capture_output=True, text=True,
                                     check=True).stdout.split()[-1])
    gradio_s = time.perf_counter() - t

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([args.python, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = None
        while client is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    print("the app did not start")
                    return 1
                time.sleep(0.05)
        first = client.predict(handle_file(str(rec)), api_name="/predict")
        launch_s = time.perf_counter() - t0
        assert first[0], first[1]

        times, page_times = [], []
        for _ in range(args.requests):
            t = time.perf_counter()
            client.predict(handle_file(str(rec)), api_name="/classify")
            times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            client.predict(handle_file(str(rec)), api_name="/predict")
            page_times.append((time.perf_counter() - t) * 1000)

        def one_client(_):
            c = Client(f"http://127.0.0.1:{port}/", verbose=False)
            t = time.perf_counter()
            out = c.predict(handle_file(str(rec)), api_name="/predict")
            return (time.perf_counter() - t) * 1000, bool(out[0])

        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one_client, range(args.clients)))
        lat = np.array([r[0] for r in results])
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)

    print(f"serving Python: {args.python}")
    print(f"launch to first answer: {launch_s:.1f} s (target <= 4 s); a bare `import gradio` took {gradio_s:.1f} s "
          f"in the same run (app / bare gradio = {launch_s / gradio_s:.1f}x)")
    print(f"serving process peak memory (VmHWM) after {args.clients} simultaneous clients: {peak:.0f} MB (target "
          f"<= 300 MB); a bare `import gradio` peaks at {gradio_mb:.0f} MB (app / bare gradio = {peak / gradio_mb:.1f}x)")
    print(f"round trip, 30 s recording (44.1 kHz wav, 2.6 MB), median of {args.requests}: "
          f"{statistics.median(times):.0f} ms through /classify (JSON answer; p95 {np.percentile(times, 95):.0f} ms; "
          f"target <= 300 ms), {statistics.median(page_times):.0f} ms through /predict (the page's answer with its two "
          "pictures)")
    print(f"{args.clients} simultaneous clients: {sum(r[1] for r in results)}/{args.clients} answered, "
          f"p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
