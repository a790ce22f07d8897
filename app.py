"""The clinician's web app: record or upload a heart sound, get normal / abnormal / no heartbeat.

    python app.py [--host 127.0.0.1] [--port 7860] [--model DIR] [--share]

Privacy: uploads and recordings live in a private temporary folder only until their request starts: each
is read into memory and deleted before it is judged; nothing about a patient is logged; Gradio's analytics are off.
`--share` opens an HTTPS ngrok tunnel and always puts a login in front of the app.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import ctypes
import gc
import io
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Gradio writes uploads here; a private folder of ours, emptied after each answer and removed on exit.
UPLOAD_DIR = Path(tempfile.mkdtemp(prefix="heartbeat-uploads-"))
os.environ["GRADIO_TEMP_DIR"] = str(UPLOAD_DIR)
atexit.register(shutil.rmtree, UPLOAD_DIR, ignore_errors=True)


def _glibc():
    """The C library when it is glibc, else None (musl, macOS: their allocators do their own thing)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


GLIBC = _glibc()
# glibc gives each thread that allocates its own heap arena (up to 8 per core) and rarely returns them: under
# 20 clients Gradio's worker threads held ~100 MB that way. Two arenas serve two judges at once.
if GLIBC is not None:
    GLIBC.mallopt(-8, 2)                               # -8: M_ARENA_MAX
import gradio as gr  # noqa: E402
from gradio.components.plot import PlotData  # noqa: E402
import numpy as np  # noqa: E402

from heartbeat.audio import AudioError  # noqa: E402
from heartbeat.model import load_model  # noqa: E402
from heartbeat.predict import classify, read  # noqa: E402
from heartbeat.referral import referral_pdf  # noqa: E402

log = logging.getLogger("heartbeat.app")
MAX_UPLOAD = "25mb"
# Gradio keeps each session's page state (its pictures too, ~0.3 MB) until this many newer sessions push
# it out; 10,000 by default, which a busy clinic's memory would not survive.
SESSIONS = int(os.environ.get("HEARTBEAT_SESSIONS", 100))
SHEET_TTL_S = 15 * 60
MAX_SECONDS = 120            # longer recordings are refused with a message (see heartbeat.audio)
NOTE = ("**Screening aid, not a diagnosis.** It cannot see the patient. If the answer is abnormal, if it "
        "does not match what you see, or if you are in doubt: refer.")
LABEL_TEXT = {"normal": "Normal", "abnormal": "Abnormal: refer", "no_heartbeat": "No heartbeat heard"}


def judge(path: str | None, model):
    """(Result, wideband audio) for an uploaded file, or an error message for the page.
    The upload is read into memory and deleted from disk before it is decoded."""
    global _answers
    if not path:
        return "Record or upload a heart sound first."
    _answers += 1
    data = _take(path)
    if data is None:
        return "**The recording is no longer on the server.** Please upload or record it again."
    try:
        wide = read(data, model, max_seconds=MAX_SECONDS)
        return classify(wide, model), wide
    except AudioError as e:
        return f"**Could not judge this recording.** {e.message}"
    except Exception as e:  # never a traceback on the page; no patient data in the log either
        log.error("unexpected %s while judging a recording", type(e).__name__)
        return "**Something went wrong reading this recording.** Please try again or record anew."


def answer(path: str | None, model) -> tuple[dict | None, str, object, object, dict | None]:
    """The page: (the decision with its confidence, explanation, beats figure, heart-band spectrogram, and
    what the referral sheet is made from: the result and the beats picture, never the recording)."""
    judged = judge(path, model)
    if isinstance(judged, str):
        return None, judged, None, None, None
    result, wide = judged
    beats = _png(_beats_figure(wide, result))
    sheet = {"result": result.to_dict(), "picture": beats}
    return _label(result), _explain(result), _shown(beats), _shown(_png(_spectrogram_figure(wide, result))), sheet


def referral_link(sheet: dict | None, reference: str | None) -> str:
    """The referral sheet as a link holding the PDF itself (data: URL): made in memory, never on disk."""
    if not sheet:
        return "Check a heart sound first: the sheet is made from its answer."
    pdf = referral_pdf(sheet["result"], sheet["picture"], reference or "")
    return (f'<a download="referral-sheet.pdf" href="data:application/pdf;base64,{base64.b64encode(pdf).decode()}">'
            "<b>Save the referral sheet</b> (PDF, one page)</a>")


def answer_json(path: str | None, model) -> dict:
    """The API (`/classify`): the whole Result as JSON, no pictures; or {"error": message}."""
    judged = judge(path, model)
    if isinstance(judged, str):
        return {"error": judged.replace("**", "")}
    return judged[0].to_dict()


# Each upload is read into memory and deleted from disk the moment its request starts, whatever else is
# queued: only recordings being judged are ever on disk. Gradio stores identical uploads at one
# content-hashed path, so a second request for the same bytes can find the file already gone; it is served
# from `_taken`, an in-memory copy dropped once the queue is idle and GRACE_S have passed (a client's request
# reaches the queue a moment after its upload), and never kept past TAKEN_MAX_S.
# The sweeper also removes any file left in the upload folder for STALE_S (an upload whose request never
# came, e.g. a closed browser tab).
GRACE_S = 3.0
TAKEN_MAX_S = 120.0
STALE_S = 300.0
_taken: dict[Path, tuple[bytes, float]] = {}   # upload path -> (its bytes, when taken)
_taken_lock = threading.Lock()
_answers = 0                                    # requests judged so far (the sweeper frees memory after each)


def _take(path: str) -> bytes | None:
    """The upload's bytes, its file (and Gradio's folder around it) deleted at once; None if it is gone."""
    p = Path(path).resolve()
    if UPLOAD_DIR not in p.parents:
        return None                         # only our own upload folder is read (Gradio passes nothing else)
    with _taken_lock:
        try:
            data = p.read_bytes()
        except OSError:
            held = _taken.get(p)
            return held[0] if held else None
        _delete(p)
        _taken[p] = (data, time.monotonic())
    return data


def _delete(p: Path) -> None:
    p.unlink(missing_ok=True)
    if p.parent != UPLOAD_DIR:
        try:
            p.parent.rmdir()                  # Gradio's content-hash folder, once empty
        except OSError:
            pass


def _queue_idle(demo) -> bool:
    queue = getattr(demo, "_queue", None)       # Gradio's queue: no public API tells whether it is idle
    if queue is None:
        return True
    return len(queue) == 0 and all(q.current_concurrency == 0 for q in queue.event_queue_per_concurrency_id.values())


def _sweep_forever(demo, period_s: float = 0.5) -> None:
    """The sweeper must outlive anything one pass meets: it once died on a folder that a request deleted
    while it was being listed, and from then on nothing was swept (nor memory freed) until a restart."""
    trim, seen = (GLIBC.malloc_trim if GLIBC is not None else None), 0
    while True:
        time.sleep(period_s)
        try:
            seen = _sweep_once(demo, trim, seen)
        except Exception as e:   # logged without paths (they name nothing, but the log is no place for uploads)
            log.error("upload sweeper: %s (continuing)", type(e).__name__)


def _sweep_once(demo, trim, seen: int) -> int:
    # Memory: each answer leaves decoded audio, figures (reference cycles) and Gradio's upload buffers
    # behind. What was freed goes back to the system after every pass with answers (malloc_trim: <1 ms);
    # the cycles are collected when the queue is idle (a full collection costs 100-200 ms of the GIL).
    now = time.monotonic()
    idle = _queue_idle(demo)
    if _answers != seen:
        if idle:
            seen = _answers
            gc.collect()
        if trim is not None:
            trim(0)
    with _taken_lock:
        for p in [p for p, (_, t) in _taken.items() if (idle and now - t > GRACE_S) or now - t > TAKEN_MAX_S]:
            del _taken[p]
    for folder, _, files in os.walk(UPLOAD_DIR):       # os.walk skips what vanishes while it walks
        for name in files:
            f = Path(folder, name)
            try:
                if time.time() - f.stat().st_mtime > STALE_S:
                    _delete(f)
            except OSError:
                pass
    return seen


def _label(r) -> dict:
    """The headline is the decision, with the confidence in it, and nothing else: a Label showing both
    classes heads with the larger bar, which near the referral cut (p_abnormal 0.40, cut 0.38) said
    "Normal" above the words "Abnormal: refer"."""
    return {LABEL_TEXT[r.label]: r.confidence}


def _percent(p: float, cut: float) -> tuple[str, str]:
    """p and the cut as percentages, with a decimal where whole numbers would print them equal."""
    digits = 0 if round(p * 100) != round(cut * 100) else 1
    return f"{p:.{digits}%}", f"{cut:.{digits}%}"


def _explain(r) -> str:
    if r.label == "no_heartbeat":
        return (f"### No usable heart sound\n**Why:** {r.quality_reason}.\n\nPlace the stethoscope or phone firmly "
                "on the chest (left of the breastbone), keep still and quiet, and record 15-30 seconds.")
    p, cut = _percent(r.p_abnormal, r.threshold)
    why = (f"at or above the referral cut of {cut}, which is set low on purpose: an extra referral costs less "
           "than a missed disease" if r.label == "abnormal" else f"below the referral cut of {cut}")
    lines = [f"### {LABEL_TEXT[r.label]}",
             f"- Chance the heart sound is abnormal: **{p}**, {why}",
             f"- Heart rate: **{r.heart_rate_bpm:.0f} bpm**" if r.heart_rate_bpm else "- Heart rate: not steady enough to count",
             f"- Recording quality: **{r.quality}** · {r.duration_s:.0f} s analysed in {len(r.windows)} windows"]
    if r.caution:
        lines.insert(1, f"**Caution: {r.caution}.**")
    return "\n".join(lines)


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110)
    return out.getvalue()


def _shown(png: bytes) -> PlotData:
    """A picture for gr.Plot, already rendered: given a Figure, Gradio would render it once more (the
    beats picture is rendered for the referral sheet anyway) and import pyplot to close it (+33 MB)."""
    return PlotData(type="matplotlib", plot="data:image/png;base64," + base64.b64encode(png).decode())


def _beats_figure(wide: np.ndarray, r):
    """Waveform with S1/S2 marks, windows shaded by how abnormal they sound. Drawn with one image and
    two line collections: a figure per request must cost milliseconds, not a third of a second."""
    from matplotlib.figure import Figure
    from heartbeat.audio import WIDEBAND_RATE
    duration = len(wide) / WIDEBAND_RATE
    fig = Figure(figsize=(9, 2.6))
    ax = fig.subplots()
    peak = float(np.abs(wide).max()) or 1.0
    if r.windows:   # mean window score at each 0.1 s, as a background strip
        grid = np.arange(0, duration, 0.1)
        shade = np.array([np.mean([w["p_abnormal"] for w in r.windows if w["start_s"] <= t < w["end_s"]] or [np.nan])
                          for t in grid])
        ax.imshow(shade[None, :], aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=1, alpha=0.25,
                  extent=(0, duration, -peak, peak), interpolation="nearest")
    step = max(1, len(wide) // 4000)
    ax.plot(np.arange(0, len(wide), step) / WIDEBAND_RATE, wide[::step], lw=0.5, color="#333")
    ax.vlines(r.s1_times, -peak, peak, color="#1565c0", lw=0.8, alpha=0.8)
    ax.vlines(r.s2_times, -peak, peak, color="#00897b", lw=0.6, linestyles="--", alpha=0.8)
    ax.set(xlabel="seconds", yticks=[], xlim=(0, duration), ylim=(-peak, peak),
           title="Beats: blue S1, dashed green S2. Shading: how abnormal each window sounds (green low, red high)")
    ax.title.set_fontsize(9)
    fig.subplots_adjust(left=0.02, right=0.99, bottom=0.18, top=0.88)   # fixed: tight_layout costs 30 ms
    return fig


def _spectrogram_figure(wide: np.ndarray, r, seconds: float = 8.0):
    """What a clinician can read instead of cepstra: the heart-sound band (20-600 Hz) over the first few
    seconds, with a strip above it marking each systole (S1 to S2), so a murmur shows as energy filling the
    gaps between the beats, in systole or diastole."""
    from matplotlib.figure import Figure
    from scipy import signal
    from heartbeat.audio import WIDEBAND_RATE, resample
    sr = 2000
    x = resample(wide, WIDEBAND_RATE, sr)[: int(seconds * sr)]
    f, t, power = signal.spectrogram(x, sr, nperseg=128, noverlap=112)
    band = f <= 600
    db = 10 * np.log10(power[band] + 1e-12)
    fig = Figure(figsize=(9, 2.8))
    strip, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 6])
    hop = t[1] - t[0] if len(t) > 1 else 0.008                    # an image: pcolormesh costs 5x the time
    ax.imshow(db, aspect="auto", origin="lower", cmap="magma", vmin=db.max() - 60, vmax=db.max(),
              extent=(t[0] - hop / 2, t[-1] + hop / 2, f[0], f[band][-1]), interpolation="nearest")
    for s1 in r.s1_times:                       # systole: from each S1 to the S2 that follows it
        s2 = next((s for s in r.s2_times if s1 < s < s1 + 0.6), None)
        if s2 is not None and s1 < seconds:
            strip.axvspan(s1, s2, color="#1565c0", alpha=0.6, lw=0)
    strip.set(yticks=[], title="Heart-sound band. Blue bars: systole (S1 to S2); the gaps: diastole. "
              "A murmur is energy between the beats")
    strip.title.set_fontsize(9)
    ax.set(xlabel="seconds", ylabel="Hz", ylim=(20, 600), xlim=(0, len(x) / sr))
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.9, hspace=0.05)
    return fig


def build(model) -> gr.Blocks:
    with gr.Blocks(title="heartbeat: heart-sound screening", delete_cache=(60, 120)) as demo:
        gr.Markdown("## heartbeat: heart-sound screening\nRecord 15-30 seconds with the stethoscope or phone on "
                    "the chest, or upload a recording (WAV, MP3, M4A, WEBM, OGG, FLAC, 3GP...).")
        gr.Markdown(NOTE)
        # type="filepath" hands us the original file (type="numpy" would convert through pydub/ffprobe).
        # The length limit is enforced when reading (MAX_SECONDS), with a message, not by the widget.
        audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Heart sound")
        button = gr.Button("Check this heart sound", variant="primary")
        label = gr.Label(label="Answer", num_top_classes=1)
        explanation = gr.Markdown()
        beats_plot = gr.Plot(label="Beats and windows", show_label=False)    # its title says what it shows
        map_plot = gr.Plot(label="Heart-sound band over time", show_label=False)
        # This browser session's last answer, for the referral sheet: dropped SHEET_TTL_S after the answer
        # (Gradio would keep it an hour after the tab closes, and forever for API clients).
        sheet = gr.State(None, time_to_live=SHEET_TTL_S)
        with gr.Row():
            reference = gr.Textbox(label="Patient reference for the sheet (optional)", max_lines=1, scale=3,
                                   placeholder="printed on the referral sheet only; never stored")
            sheet_button = gr.Button("Download referral sheet", scale=1)
        sheet_link = gr.HTML()
        button.click(lambda p: answer(p, model), inputs=audio,
                     outputs=[label, explanation, beats_plot, map_plot, sheet],
                     concurrency_limit=2, concurrency_id="judge", api_name="predict")
        sheet_button.click(referral_link, inputs=[sheet, reference], outputs=sheet_link, api_name="referral")
        # For programs (and phones on slow links): the same answer as JSON, without the pictures.
        result_json = gr.JSON(visible=False)
        gr.Button(visible=False).click(lambda p: answer_json(p, model), inputs=audio, outputs=result_json,
                                       concurrency_limit=2, concurrency_id="judge", api_name="classify")
    demo.queue(max_size=32, default_concurrency_limit=2)
    threading.Thread(target=_sweep_forever, args=(demo,), daemon=True, name="upload-sweeper").start()
    return demo


def warm_up(model) -> None:
    """The first answer loads the segmenter's compiled Viterbi from numba's cache, sizes the network's
    tensors and imports matplotlib with its fonts: paid while the page loads, not on a patient."""
    from heartbeat.audio import WIDEBAND_RATE
    t = np.arange(5 * WIDEBAND_RATE) / WIDEBAND_RATE
    wide = (np.sin(2 * np.pi * 60 * t) * (np.sin(np.pi * 1.2 * t) ** 8)).astype(np.float32)
    result = classify(wide, model)
    for figure in (_beats_figure(wide, result), _spectrogram_figure(wide, result)):
        _png(figure)


def login(args) -> tuple[str, str] | None:
    """Credentials from $HEARTBEAT_AUTH ("user:password") or --auth-file; with --share and none given,
    a strong password is generated and printed once."""
    text = os.environ.get("HEARTBEAT_AUTH") or (Path(args.auth_file).read_text().strip() if args.auth_file else "")
    if text:
        user, _, password = text.partition(":")
        if not user or len(password) < 8:
            sys.exit("HEARTBEAT_AUTH / --auth-file must be 'user:password' with a password of 8 or more characters")
        return user, password
    if args.share:
        user, password = "clinician", secrets.token_urlsafe(12)
        print(f"Public link login: user '{user}', password '{password}' (shown once; set HEARTBEAT_AUTH to choose)")
        return user, password
    return None


def open_tunnel(port: int, auth: tuple[str, str]) -> str | None:
    """An HTTPS ngrok tunnel to the app (token from $NGROK_AUTHTOKEN), with the login enforced at ngrok's
    edge as a basic-auth traffic policy (and again by the app). Returns the public URL, or None after
    saying plainly why not; the app keeps serving locally either way."""
    import json
    if not os.environ.get("NGROK_AUTHTOKEN"):
        print("Not sharing: NGROK_AUTHTOKEN is not set (get one at ngrok.com). Serving locally only.")
        return None
    from pyngrok import ngrok
    from pyngrok.exception import PyngrokError
    policy = {"on_http_request": [{"actions": [{"type": "basic-auth",
                                                "config": {"credentials": [f"{auth[0]}:{auth[1]}"]}}]}]}
    try:
        tunnel = ngrok.connect(str(port), "http", traffic_policy=json.dumps(policy))
    except PyngrokError as e:
        print(f"Not sharing: the ngrok agent could not start ({type(e).__name__}: {str(e).splitlines()[0][:160]}). "
              "Serving locally only.")
        return None
    atexit.register(_close_tunnel, tunnel.public_url)
    url = tunnel.public_url.replace("http://", "https://")
    print(f"Public HTTPS link: {url}")
    return url


def _close_tunnel(url: str) -> None:
    from pyngrok import ngrok
    try:
        ngrok.disconnect(url)
        ngrok.kill()
    except Exception:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="heartbeat web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model", help="model bundle folder (default: models/heartbeat)")
    parser.add_argument("--share", action="store_true", help="public HTTPS link through ngrok, behind a login")
    parser.add_argument("--auth-file", help="file holding 'user:password'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model = load_model(args.model)
    auth = login(args)
    demo = build(model)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, max_file_size=MAX_UPLOAD,
                show_error=False, prevent_thread_lock=True, quiet=True, state_session_capacity=SESSIONS)
    threading.Thread(target=warm_up, args=(model,), daemon=True, name="warm-up").start()
    print(f"heartbeat is ready on http://{args.host}:{args.port}", flush=True)
    if args.share:
        open_tunnel(args.port, auth)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # so atexit closes the tunnel on `kill`
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
