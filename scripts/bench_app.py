"""The app's speed and memory, through its real HTTP API on 127.0.0.1.

    python scripts/bench_app.py [--requests 30] [--clients 20] [--python .venv-app/bin/python]

Runs the app with the serving environment's Python (`make run`'s .venv-app when it exists) and prints:
launch to first answer, the serving process's peak memory (VmHWM) after 20 simultaneous clients, the
upload-to-answer round trip for a 30 s recording (median), and whether all 20 clients were answered.
Baselines measured in the same run, in the same Python: a bare `import gradio` (time and memory), and a
trivial Gradio app (the same upload widget and queue, answering with the file's length) under the same
20 clients: the floor that no Gradio app goes below. Targets: launch <= 4 s and <= 1.25x the trivial app's,
peak <= 300 MB and <= 1.5x the trivial app's, round trip <= 300 ms.
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
# The floor for a whole app: the same upload widget and queue, answering with the file's length only.
TRIVIAL_APP = """
import sys, gradio as gr, soundfile as sf
with gr.Blocks() as demo:
    audio, out = gr.Audio(type="filepath"), gr.Textbox()
    gr.Button().click(lambda p: f"{sf.info(p).duration:.1f} s", audio, out, api_name="predict")
demo.queue(default_concurrency_limit=2).launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


# Where the serving process's memory goes: resident memory after each step of what the app loads, in the
# order it loads it (later steps do not pay again for what earlier ones shared).
MEMORY_STEPS = """
import sys, time
def rss():
    return next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmRSS'))
last = rss(); rows = [("python itself", last)]
def step(name, fn):
    global last
    fn(); now = rss(); rows.append((name, now - last)); last = now
step("numpy", lambda: __import__("numpy"))
step("gradio", lambda: __import__("gradio"))
step("heartbeat (all of the package)", lambda: __import__("heartbeat.serve.page"))
from heartbeat import dsp
step("scipy's compiled IIR loop and FFT alone (heartbeat.dsp)", lambda: (dsp._compiled_loop(), dsp._pocketfft()))
import heartbeat
holder = {}
step("the model bundle (LiteRT interpreter, gate, segmenter)", lambda: holder.update(m=heartbeat.load_model()))
from heartbeat.serve.page import warm_up
step("first answer with both pictures (buffers sized, font loaded)", lambda: warm_up(holder["m"]))
for name, mb in rows:
    print(f"{mb:.0f}\t{name}")
"""


def memory_profile(python: str) -> list[tuple[str, float]]:
    out = subprocess.run([python, "-c", MEMORY_STEPS], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return [(line.split("\t", 1)[1], float(line.split("\t", 1)[0])) for line in out.splitlines() if "\t" in line]


def answered(out) -> bool:
    """An answer came: the app's first output (the headline), or the trivial app's one string."""
    return bool(out[0] if isinstance(out, (list, tuple)) else out)


def serve(cmd, rec: Path, clients: int, requests: int = 0) -> dict:
    """Start the server `cmd(port)`, time launch to its first answer, then `requests` sequential answers through
    /classify and /predict (when > 0), then `clients` simultaneous ones; the server's peak memory."""
    from gradio_client import Client, handle_file
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd(port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = None
        while client is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise SystemExit(f"{cmd(port)}: did not start")
                time.sleep(0.05)
        first = client.predict(handle_file(str(rec)), api_name="/predict")
        out = {"launch_s": time.perf_counter() - t0, "classify_ms": [], "predict_ms": []}
        assert answered(first), first
        for _ in range(requests):
            for api in ("classify", "predict"):
                t = time.perf_counter()
                client.predict(handle_file(str(rec)), api_name=f"/{api}")
                out[f"{api}_ms"].append((time.perf_counter() - t) * 1000)

        def one_client(_):
            c = Client(f"http://127.0.0.1:{port}/", verbose=False)
            t = time.perf_counter()
            answer = c.predict(handle_file(str(rec)), api_name="/predict")
            return (time.perf_counter() - t) * 1000, answered(answer)

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one_client, range(clients)))
        out |= {"latency_ms": np.array([r[0] for r in results]), "answered": sum(r[1] for r in results),
                "peak_mb": peak_rss_mb(proc.pid)}
        return out
    finally:
        proc.terminate()
        proc.wait(20)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=20)
    app_python = ROOT / ".venv-app" / "bin" / "python"
    parser.add_argument("--python", default=str(app_python if app_python.exists() else sys.executable),
                        help="the Python that serves the app (default: .venv-app's, as `make run` uses)")
    args = parser.parse_args(argv)
    from heartbeat.datasets import load_table, select
    import soxr

    path = select(load_table(), ["training-a"]).query("duration_s >= 30")["path"].iloc[0]
    x, sr = sf.read(path)
    tmp = Path(tempfile.mkdtemp())
    rec = tmp / "recording-30s.wav"    # what a browser microphone hands over: 16-bit mono 44.1 kHz WAV
    sf.write(rec, soxr.resample(x[: 30 * sr], sr, 44100) * 0.8, 44100, subtype="PCM_16")

    # Baselines, in the same Python and this same run: Gradio alone, and a trivial Gradio app under the
    # same load (the floor no Gradio app goes below).
    t = time.perf_counter()
    gradio_mb = float(subprocess.run([args.python, "-c", BARE_GRADIO], capture_output=True, text=True,
                                     check=True).stdout.split()[-1])
    gradio_s = time.perf_counter() - t
    trivial = serve(lambda port: [args.python, "-c", TRIVIAL_APP, str(port)], rec, args.clients)
    app = serve(lambda port: [args.python, str(ROOT / "app.py"), "--port", str(port)], rec, args.clients,
                args.requests)

    print(f"serving Python: {args.python}")
    print(f"launch to first answer: {app['launch_s']:.1f} s (target <= 4 s); in the same run a bare `import gradio` "
          f"took {gradio_s:.1f} s and a trivial Gradio app answered first after {trivial['launch_s']:.1f} s "
          f"(app / bare gradio = {app['launch_s'] / gradio_s:.1f}x, app / trivial app = "
          f"{app['launch_s'] / trivial['launch_s']:.2f}x; target <= 1.25x)")
    print(f"serving process peak memory (VmHWM) after {args.clients} simultaneous clients: {app['peak_mb']:.0f} MB "
          f"(target <= 300 MB); a bare `import gradio` peaks at {gradio_mb:.0f} MB, the trivial app under the same "
          f"{args.clients} clients at {trivial['peak_mb']:.0f} MB (app / trivial app = "
          f"{app['peak_mb'] / trivial['peak_mb']:.2f}x; target <= 1.5x)")
    times, page_times = app["classify_ms"], app["predict_ms"]
    profile = memory_profile(args.python)
    print("where the app's memory goes before any client (resident MB added by each step, in load order): "
          + "; ".join(f"{name} {mb:+.0f}" for name, mb in profile)
          + f"; total {sum(mb for _, mb in profile):.0f} MB")
    print(f"round trip, 30 s recording (44.1 kHz wav, 2.6 MB), median of {args.requests}: "
          f"{statistics.median(times):.0f} ms through /classify (JSON answer; p95 {np.percentile(times, 95):.0f} ms; "
          f"target <= 300 ms), {statistics.median(page_times):.0f} ms through /predict (the page's answer with its two "
          "pictures)")
    lat = app["latency_ms"]
    print(f"{args.clients} simultaneous clients: {app['answered']}/{args.clients} answered, "
          f"p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms "
          f"(trivial app: p50 {np.percentile(trivial['latency_ms'], 50):.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
