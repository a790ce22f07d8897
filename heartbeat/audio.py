"""Audio in: any file a clinician has, as float32 mono at one sample rate.

libsndfile (through soundfile) opens wav, flac, ogg/vorbis, opus and mp3 in-process. Everything else
(m4a/aac voice memos, mp4/mov, webm from browsers, 3gp/amr from Android) goes through an ffmpeg binary:
the system's if there is one, else the one the `imageio-ffmpeg` wheel ships, so a pip-only install
without root opens them too. We call ffmpeg directly rather than through pydub, which needs `ffprobe`
(no pip package ships it) and is several times slower. Resampling is soxr's anti-aliased HQ filter, once:
from the file's rate straight to the model's.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 2000          # Hz: heart sounds live below 1 kHz; PhysioNet 2016 is recorded at 2 kHz
MIN_SECONDS = 3.0           # one analysis window; less cannot hold enough beats to judge
MAX_SECONDS = float(os.environ.get("HEARTBEAT_MAX_SECONDS", 300))   # longer recordings are refused, not cut
MAX_BYTES = int(os.environ.get("HEARTBEAT_MAX_BYTES", 100 * 2**20))
MIN_INPUT_RATE, MAX_INPUT_RATE = 1000, 384_000
FFMPEG_TIMEOUT_S = 60


class AudioError(ValueError):
    """A recording that cannot be judged. `code` says which case; the message is for a clinician."""

    code = "audio_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAudioError(AudioError):
    code = "not_audio"


class CorruptAudioError(AudioError):
    code = "corrupt"


class UnsupportedCodecError(AudioError):
    code = "unsupported_codec"


class EmptyAudioError(AudioError):
    code = "empty"


class TooShortError(AudioError):
    code = "too_short"


class TooLongError(AudioError):
    code = "too_long"


class FileTooLargeError(AudioError):
    code = "too_large"


class BadSampleRateError(AudioError):
    code = "bad_sample_rate"


class InvalidSamplesError(AudioError):
    code = "invalid_samples"


# First bytes of containers we know to be audio: used only to tell "corrupt audio" from "not audio".
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2",
                b"\xff\xf1", b"\xff\xf9", b"#!AMR", b"\x1a\x45\xdf\xa3", b"FORM", b".snd", b"caff")


def _looks_like_audio(head: bytes) -> bool:
    return head.startswith(_AUDIO_MAGIC) or head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def ffmpeg_binary(encoder: str | None = None) -> str:
    """The system ffmpeg if installed, else the binary inside the imageio-ffmpeg wheel. With `encoder`: one
    that has it (Debian's ffmpeg decodes AMR-NB but cannot encode it; the wheel's binary can)."""
    found = shutil.which("ffmpeg")
    if found and (encoder is None or encoder in _encoders(found)):
        return found
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=4)
def _encoders(exe: str) -> frozenset:
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return frozenset(line.split()[1] for line in out.splitlines() if len(line.split()) > 1 and len(line.split()[0]) == 6)


def load_audio(source: str | os.PathLike | bytes, sr: int = SAMPLE_RATE, *,
               min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS,
               max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Decode a file path or raw bytes to float32 mono at `sr` Hz, or raise an AudioError subclass."""
    data = source if isinstance(source, (bytes, bytearray)) else None
    if data is None:
        path = Path(source)
        if not path.is_file():
            raise NotAudioError(f"No file found at {path.name!r}.")
        size = path.stat().st_size
    else:
        size = len(data)
    if size == 0:
        raise EmptyAudioError("The file is empty (0 bytes). Please record again.")
    if size > max_bytes:
        raise FileTooLargeError(f"The file is {size / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
                                "Record 10-60 seconds, or trim the file.")
    head = data[:16] if data is not None else path.open("rb").read(16)

    try:
        audio, rate = _read_soundfile(io.BytesIO(data) if data is not None else path, max_seconds)
    except sf.LibsndfileError:
        audio, rate = _read_ffmpeg(data if data is not None else path, head, max_seconds)

    if audio.size == 0:
        raise EmptyAudioError("The recording contains no sound samples. Please record again.")
    # 16-bit samples stay integers until the resampler's stream takes them a chunk at a time (resample); the
    # scale is read before the channels are averaged, which makes floats of them.
    scale = 1 / 32768 if audio.dtype == np.int16 else 1.0
    if audio.ndim == 2:      # any channel count -> mono (one channel: a view, no copy)
        audio = audio[:, 0] if audio.shape[1] == 1 else audio.mean(axis=1, dtype=np.float32)
    # The sum of float samples (in double: no float32 samples overflow it) is finite exactly when every sample is.
    total = float(audio.sum(dtype=np.int64 if audio.dtype == np.int16 else np.float64))
    if not np.isfinite(total):
        raise InvalidSamplesError("The recording contains invalid sample values (NaN or infinity); "
                                  "the file was written incorrectly. Please export or record it again.")
    # DC offset removed: no heart sound is at 0 Hz, and an offset is a device signature (training-b and -e
    # carry one up to 3x their RMS) that the resampler and band-pass turn into clicks at the ends.
    audio = resample(audio, rate, sr, scale=scale, offset=total / len(audio) * scale)
    duration = len(audio) / sr
    if duration < min_seconds:
        raise TooShortError(f"The recording is {duration:.1f} s long; at least {min_seconds:.0f} s is needed "
                            "to judge a heart sound. Record 10-60 seconds.")
    return audio


RESAMPLE_CHUNK = 65536      # input samples per step of soxr's stream
# A long recording is resampled as two halves at once, one on another core (soxr releases the GIL): each half
# runs SPLIT_MARGIN_S past the split, further than soxr's HQ filter reaches at any rate here, and the split falls
# where input and output samples line up, so the halves meet without a seam (tests/test_audio.py).
SPLIT_ABOVE_S = 8.0
SPLIT_MARGIN_S = 0.25


def _new_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="resample")


_second_half = _new_pool()
# A forked worker (the batch's pools) gets a pool of its own: the parent's threads do not exist there, though the
# parent's pool thinks they do and would wait on them for ever.
os.register_at_fork(after_in_child=lambda: globals().update(_second_half=_new_pool()))


def resample(audio: np.ndarray, rate: int, sr: int, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """`audio * scale - offset` as float32 at `sr` Hz, through soxr's anti-aliased HQ filter: the only place the
    sample rate changes. The same output as one soxr call on the whole signal (tests/test_audio.py), without a
    float32 copy of the whole of it (`_stream`) and, for a long recording, in two halves at once."""
    if rate == sr or len(audio) == 0:
        return _scaled(audio, scale, offset)
    step_in, step_out = rate // gcd(rate, sr), sr // gcd(rate, sr)     # input samples per output sample group
    half = len(audio) // 2 // step_in * step_in
    margin = -(-int(SPLIT_MARGIN_S * rate) // step_in) * step_in
    if len(audio) < SPLIT_ABOVE_S * rate or half <= margin:
        return _stream(audio, rate, sr, scale, offset)
    second = _second_half.submit(_stream, audio[half - margin:], rate, sr, scale, offset)
    first = _stream(audio[: half + margin], rate, sr, scale, offset)
    return np.concatenate([first[: half // step_in * step_out], second.result()[margin // step_in * step_out:]])


def _stream(audio: np.ndarray, rate: int, sr: int, scale: float, offset: float) -> np.ndarray:
    """soxr's stream, a chunk at a time, converted as it goes. A float32 copy of the whole signal costs more in
    fresh memory pages than the filter: a 30 s 44.1 kHz file took ~1,500 page faults and 9 ms to decode and
    resample, and takes none and 5 ms streamed."""
    stream = soxr.ResampleStream(rate, sr, 1, dtype="float32", quality="HQ")
    n = len(audio)
    return np.concatenate([stream.resample_chunk(_scaled(audio[i:i + RESAMPLE_CHUNK], scale, offset),
                                                 last=i + RESAMPLE_CHUNK >= n)
                           for i in range(0, n, RESAMPLE_CHUNK)])


def _scaled(samples: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """`samples * scale - offset` as float32: `samples` themselves when they already are that, else a new array
    (the caller's is never changed)."""
    if scale == 1.0 and not offset:
        return np.asarray(samples, dtype=np.float32)
    out = np.array(samples, dtype=np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    if offset:
        out -= np.float32(offset)
    return out


def _check_rate(rate: int) -> None:
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise BadSampleRateError(f"The file says its sample rate is {rate} Hz, which no recorder uses "
                                 f"(expected {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz). The file is probably damaged.")


def _too_long(seconds: float, max_seconds: float) -> TooLongError:
    return TooLongError(f"The recording is {seconds:.0f} s long; the limit is {max_seconds:.0f} s and longer "
                        "recordings are refused rather than cut. Trim it to the part with the heart sound.")


def _read_soundfile(file, max_seconds: float) -> tuple[np.ndarray, int]:
    """libsndfile: checks the header's rate and length before reading any samples."""
    with sf.SoundFile(file) as f:
        _check_rate(f.samplerate)
        if f.frames > max_seconds * f.samplerate:
            raise _too_long(f.frames / f.samplerate, max_seconds)
        try:
            # Most phone and browser files are 16-bit: read as integers, converted to float by the resampler's
            # stream a chunk at a time (libsndfile's own conversion to float took a third of the decoding).
            audio = f.read(dtype="int16" if f.subtype == "PCM_16" else "float32", always_2d=True)
        except sf.LibsndfileError as e:
            raise CorruptAudioError("The audio file is damaged or incomplete and could not be read. "
                                    "Please export or record it again.") from e
        return audio, f.samplerate


def _read_ffmpeg(source: bytes | Path, head: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    """ffmpeg decodes the first audio stream to a float WAV in a private temporary folder, deleted at once.

    A file (not a pipe) is needed both ways: mp4/m4a keep their index at the end, and a seekable WAV
    carries the original sample rate back so that resampling stays in one place (soxr).
    """
    with tempfile.TemporaryDirectory(prefix="heartbeat-") as tmp:
        src = source if isinstance(source, Path) else Path(tmp, "input")
        if not isinstance(source, Path):
            src.write_bytes(source)
        out = Path(tmp, "decoded.wav")
        cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(src),
               "-map", "0:a:0", "-vn", "-t", f"{max_seconds + 1:.3f}", "-c:a", "pcm_f32le", "-f", "wav", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise CorruptAudioError("Decoding the file took too long; it may be damaged.") from e
        err = proc.stderr.decode(errors="replace").lower()
        if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
            raise _ffmpeg_error(err, head)
        with sf.SoundFile(out) as f:
            _check_rate(f.samplerate)
            audio = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    if len(audio) > max_seconds * rate:
        raise _too_long(len(audio) / rate, max_seconds)   # ffmpeg stopped at max+1 s: "at least" that long
    return audio, rate


def _ffmpeg_error(stderr: str, head: bytes) -> AudioError:
    if "matches no streams" in stderr or "does not contain any stream" in stderr:
        return NotAudioError("The file has no audio track. Please upload a sound recording.")
    if any(m in stderr for m in ("no decoder found", "unknown codec", "unsupported codec")) or \
            ("decoder" in stderr and "not found" in stderr):
        return UnsupportedCodecError("The file is audio, but in an encoding this app cannot read. "
                                     "Please export it as WAV, MP3 or M4A.")
    if _looks_like_audio(head):
        return CorruptAudioError("The audio file is damaged or incomplete and could not be read. "
                                 "Please export or record it again.")
    return NotAudioError("This file is not a sound recording this app can open "
                         "(WAV, MP3, M4A, OGG, OPUS, FLAC, WEBM, MP4, 3GP or AMR).")
