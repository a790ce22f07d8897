"""What the app's process must set before Gradio is imported: no analytics, uploads into a private folder
of ours (removed on exit), and glibc held to two malloc arenas. Imported first by heartbeat.serve."""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Gradio writes uploads under GRADIO_TEMP_DIR (its documented setting): a private folder of ours, emptied
# as each request starts (custody.py) and removed on exit.
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
