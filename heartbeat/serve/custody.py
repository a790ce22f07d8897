"""Upload custody: a patient's recording is on the server's disk only until its request starts.

Each upload is read into memory and deleted from disk the moment its request starts, whatever else is
queued: only recordings being judged are ever on disk. Gradio stores identical uploads at one
content-hashed path, so a second request for the same bytes can find the file already gone; it is served
from `_taken`, an in-memory copy dropped once the app has been idle for GRACE_S (no request of ours in
flight, none started or finished: a client's request reaches the queue a moment after its upload, and a
queued one starts the moment another finishes), and never kept past TAKEN_MAX_S. The sweeper
also removes any file left in the upload folder for STALE_S (an upload whose request never came, e.g. a
closed browser tab).

Public API only: what is in flight is counted here, by `Custody.take`/`done`, not read from Gradio's queue.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("heartbeat.app")
GRACE_S = 3.0
TAKEN_MAX_S = 120.0
STALE_S = 300.0


class Custody:
    def __init__(self, folder: Path, trim=None):
        self.folder = Path(folder).resolve()
        self.trim = trim                    # glibc's malloc_trim, where there is one
        self._taken: dict[Path, tuple[bytes, float]] = {}   # upload path -> (its bytes, when taken)
        self._lock = threading.Lock()
        self.in_flight = 0                  # requests between take() and done()
        self.last_activity = time.monotonic()   # the last take() or done()
        self.answers = 0                    # requests taken so far (the sweeper frees memory after each)
        self._seen = 0

    def take(self, path: str) -> bytes | None:
        """The upload's bytes, its file (and Gradio's folder around it) deleted at once; None if it is
        gone. Every take() is followed by done(), whatever happens in between."""
        p = Path(path).resolve()
        with self._lock:
            self.in_flight += 1
            self.answers += 1
            self.last_activity = time.monotonic()
            if self.folder not in p.parents:
                return None                 # only our own upload folder is read (Gradio passes nothing else)
            try:
                data = p.read_bytes()
            except OSError:
                held = self._taken.get(p)
                return held[0] if held else None
            self._delete(p)
            self._taken[p] = (data, time.monotonic())
        return data

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    def _delete(self, p: Path) -> None:
        p.unlink(missing_ok=True)
        if p.parent != self.folder:
            try:
                p.parent.rmdir()              # Gradio's content-hash folder, once empty
            except OSError:
                pass

    def idle(self) -> bool:
        """Nothing in flight, and nothing started or finished for GRACE_S. Gradio's queue is not public API,
        so requests waiting in it are not seen; but one starts the moment another finishes, so an app with
        queued work is never quiet that long."""
        return self.in_flight == 0 and time.monotonic() - self.last_activity > GRACE_S

    def sweep_once(self) -> None:
        # Memory: each answer leaves decoded audio, figures (reference cycles) and Gradio's upload buffers
        # behind. What was freed goes back to the system after every pass with answers (malloc_trim: <1 ms);
        # the cycles are collected when idle (a full collection costs 100-200 ms of the GIL).
        now = time.monotonic()
        idle = self.idle()
        if self.answers != self._seen:
            if idle:
                self._seen = self.answers
                gc.collect()
            if self.trim is not None:
                self.trim(0)
        with self._lock:
            for p in [p for p, (_, t) in self._taken.items() if idle or now - t > TAKEN_MAX_S]:
                del self._taken[p]
        for folder, _, files in os.walk(self.folder):       # os.walk skips what vanishes while it walks
            for name in files:
                f = Path(folder, name)
                try:
                    if time.time() - f.stat().st_mtime > STALE_S:
                        self._delete(f)
                except OSError:
                    pass

    def sweep_forever(self, period_s: float = 0.5) -> None:
        """The sweeper must outlive anything one pass meets: it once died on a folder that a request deleted
        while it was being listed, and from then on nothing was swept (nor memory freed) until a restart."""
        while True:
            time.sleep(period_s)
            try:
                self.sweep_once()
            except Exception as e:   # logged without paths (they name nothing, but the log is no place for uploads)
                log.error("upload sweeper: %s (continuing)", type(e).__name__)

    def start(self) -> "Custody":
        threading.Thread(target=self.sweep_forever, daemon=True, name="upload-sweeper").start()
        return self
