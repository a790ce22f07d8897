"""The clinician's web app: record or upload a heart sound, get normal / abnormal / no heartbeat.

    python app.py [--host 127.0.0.1] [--port 7860] [--model DIR] [--share]

One module per job: `process` (what must be set before Gradio is imported), `custody` (uploads on disk only
until their request starts), `page` (the page and its answers), `figures` (its two pictures), `tunnel`
(login and the ngrok link). Privacy: each upload is read into memory and deleted before it is judged;
nothing about a patient is logged; Gradio's analytics are off. `--share` opens an HTTPS ngrok tunnel and
always puts a login in front of the app.
"""
from __future__ import annotations

from .process import GLIBC, UPLOAD_DIR  # noqa: I001  (first: it configures Gradio before its import)

import argparse
import logging
import os
import signal
import sys
import threading

from threadpoolctl import threadpool_limits

from ..model import load_model
from .custody import Custody
from .page import LAUNCH, build, warm_up
from .tunnel import login, open_tunnel

MAX_UPLOAD = "25mb"
# Gradio keeps each session's page state (its pictures too, ~0.3 MB) until this many newer sessions push
# it out; 10,000 by default, which a busy clinic's memory would not survive.
SESSIONS = int(os.environ.get("HEARTBEAT_SESSIONS", 100))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="heartbeat web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model", help="model bundle folder (default: the bundled model)")
    parser.add_argument("--share", action="store_true", help="public HTTPS link through ngrok, behind a login")
    parser.add_argument("--auth-file", help="file holding 'user:password'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # One BLAS thread: the app judges two requests at once on two cores, and its matrix products are tiny
    # (the mel filterbank: 32 x 129); with a thread pool per request they fought for the cores (measured with
    # another job running: the mel product 24 ms instead of 0.07 ms).
    threadpool_limits(1)
    model = load_model(args.model)
    auth = login(args.auth_file, args.share)
    custody = Custody(UPLOAD_DIR, GLIBC.malloc_trim if GLIBC is not None else None).start()
    demo = build(model, custody)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, max_file_size=MAX_UPLOAD,
                show_error=False, prevent_thread_lock=True, quiet=True, state_session_capacity=SESSIONS, **LAUNCH)
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
