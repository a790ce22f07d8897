"""Shared test helpers. Tests that need ../shared/data, ffmpeg or a browser skip on a user's machine
without them, and fail under CI=true, where their absence is a broken setup, not a reason to skip."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ON_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, what: str) -> None:
    if not condition:
        if ON_CI:
            pytest.fail(f"CI=true but {what} is missing")
        pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def data_root() -> Path:
    from heartbeat.datasets import data_root as find
    root = find()
    need(root is not None and (root / "physionet2016").is_dir() and (root / "pascal2011").is_dir(),
         "the heart-sound databases (../shared/data or $HEARTBEAT_DATA)")
    return root


@pytest.fixture(scope="session")
def table(data_root):
    from heartbeat.datasets import load_table
    return load_table(data_root)


@pytest.fixture(scope="session")
def model():
    """The bundled model (models/heartbeat), as the app and the CLI load it; $HEARTBEAT_MODEL: another
    bundle folder, to hold a candidate to the same tests before it replaces the bundled one."""
    from heartbeat.model import load_model
    try:
        return load_model(os.environ.get("HEARTBEAT_MODEL"))
    except FileNotFoundError as e:
        need(False, f"the bundled model ({e})")


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    from heartbeat.audio import ffmpeg_binary
    try:
        exe = ffmpeg_binary()
    except Exception:  # imageio-ffmpeg missing its binary
        exe = None
    need(exe is not None and Path(exe).exists(), "an ffmpeg binary")
    return exe


def tone(seconds=5.0, sr=8000, hz=100.0, channels=1, amp=0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * hz * t)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def heartlike(seconds=10.0, sr=4000, bpm=72.0, seed=0) -> np.ndarray:
    """A synthetic heart sound: S1 and S2 as decaying 60/90 Hz bursts at a steady rate, light noise.
    Systole (S1 to S2) takes about a third of the period, as in real hearts."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * sr))
    period = 60.0 / bpm
    burst_t = np.arange(int(0.08 * sr)) / sr
    for beat in np.arange(0.2, seconds - 0.5, period):
        for offset, hz, amp in ((0.0, 60.0, 1.0), (0.35 * period, 90.0, 0.7)):
            start = int((beat + offset) * sr)
            burst = amp * np.sin(2 * np.pi * hz * burst_t) * np.exp(-burst_t * 40)
            x[start:start + len(burst)] += burst[: len(x) - start]
    return 0.5 * x + 0.01 * rng.standard_normal(len(x))


def write(path: Path, audio: np.ndarray, sr: int, **kw) -> Path:
    sf.write(str(path), audio, sr, **kw)
    return path


def encode(ffmpeg: str, src: Path, dst: Path, *args: str) -> Path:
    """Make a test file with `ffmpeg` (the binary the product decodes with). A system ffmpeg may lack an
    encoder (Debian's has no AMR-NB encoder, though it decodes AMR-NB): then the binary inside the
    imageio-ffmpeg wheel, a dependency of the product, makes the file; the product still decodes it."""
    from heartbeat.audio import _encoders, ffmpeg_binary
    exe = ffmpeg
    codec = args[args.index("-c:a") + 1] if "-c:a" in args else None
    if codec and codec not in _encoders(exe):
        exe = ffmpeg_binary(codec)
        if codec not in _encoders(exe):
            pytest.skip(f"no ffmpeg here can encode {codec}")
    subprocess.run([exe, "-nostdin", "-y", "-v", "error", "-i", str(src), *args, str(dst)], check=True)
    return dst


# scripts/ holds the fitting scripts some tests call (fit_segmenter).
import sys as _sys  # noqa: E402
_sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
