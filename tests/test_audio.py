"""Audio in: every format a clinician may have decodes to the right length and pitch; every bad input
raises its own clear error."""
from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest

from heartbeat import audio as A
from conftest import encode, tone, write


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


def check(x: np.ndarray, seconds=5.0, tol=0.08):
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / A.SAMPLE_RATE - seconds) < tol, len(x) / A.SAMPLE_RATE
    assert abs(dominant_hz(x, A.SAMPLE_RATE) - 100) < 1.0
    # at the level written (tone()'s 0.5), whatever the sample format and channel count: a 16-bit stereo file
    # once came out in integer units (32768 times too loud: "clipped") and the frequency alone did not see it
    assert 0.4 < np.abs(x[200:-200]).max() < 0.6, np.abs(x).max()


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats(tmp_path, subtype):
    check(A.load_audio(write(tmp_path / "x.wav", tone(), 8000, subtype=subtype)))


@pytest.mark.parametrize("sr", [2000, 4000, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])
def test_any_sample_rate(tmp_path, sr):
    check(A.load_audio(write(tmp_path / "x.wav", tone(sr=sr), sr)))


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_downmixed(tmp_path, channels):
    check(A.load_audio(write(tmp_path / "x.wav", tone(channels=channels), 8000)))


@pytest.mark.parametrize("name,kw", [("x.flac", {}), ("x.ogg", {"subtype": "VORBIS"}),
                                     ("x.opus", {"format": "OGG", "subtype": "OPUS"}),
                                     ("x.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"})])
def test_soundfile_formats(tmp_path, name, kw):
    sr = 48000 if "opus" in name else 44100
    check(A.load_audio(write(tmp_path / name, tone(sr=sr), sr, **kw)))


@pytest.mark.parametrize("name,args", [
    ("memo.m4a", ["-c:a", "aac", "-b:a", "64k"]),          # iPhone voice memo
    ("x.aac", ["-c:a", "aac", "-f", "adts"]),
    ("browser.webm", ["-c:a", "libopus"]),                 # what browsers record
    ("x.mov", ["-c:a", "aac"]),
    ("android.3gp", ["-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"]),
    ("x.amr", ["-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"]),
])
def test_ffmpeg_formats(tmp_path, ffmpeg, name, args):
    src = write(tmp_path / "src.wav", tone(sr=44100), 44100)
    check(A.load_audio(encode(ffmpeg, src, tmp_path / name, *args)), tol=0.12)


def test_mp4_with_video_uses_the_audio_track(tmp_path, ffmpeg):
    src = write(tmp_path / "src.wav", tone(sr=44100), 44100)
    out = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10",
                    "-i", str(src), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "mpeg4", "-c:a", "aac",
                    str(out)], check=True)
    check(A.load_audio(out), tol=0.15)


def test_bytes_and_path_give_the_same_samples(tmp_path, ffmpeg):
    wav = write(tmp_path / "x.wav", tone(), 8000)
    np.testing.assert_array_equal(A.load_audio(wav), A.load_audio(wav.read_bytes()))
    m4a = encode(ffmpeg, wav, tmp_path / "x.m4a", "-c:a", "aac")
    np.testing.assert_array_equal(A.load_audio(m4a), A.load_audio(m4a.read_bytes()))


def test_resampling_is_anti_aliased(tmp_path):
    # 1.5 kHz is above the 1 kHz Nyquist of the 2 kHz output: it must vanish, not fold down to 500 Hz.
    x = A.load_audio(write(tmp_path / "x.wav", tone(hz=1500, sr=8000), 8000))
    assert np.sqrt(np.mean(x[200:-200] ** 2)) < 0.01 * 0.5 / np.sqrt(2)


@pytest.mark.parametrize("rate", [4000, 8000, 11025, 16000, 22050, 44100, 48000, 96000])
def test_streamed_resampling_is_one_call_on_the_whole_signal(table, rate):
    # A real recording as a phone or a browser would hand it over at `rate`, 16-bit: streamed through soxr a chunk
    # at a time, converted and offset as it goes, in two halves at once (30 s: longer than SPLIT_ABOVE_S), it
    # comes out as soxr's one call on the whole float signal, to float32's rounding.
    import soundfile as sf
    import soxr
    heart, sr = sf.read(table.query("duration_s >= 30")["path"].iloc[0], dtype="float32")
    x = soxr.resample(heart[: 30 * sr], sr, rate)
    pcm = np.round(np.clip(x / np.abs(x).max() * 0.8, -1, 1) * 32767).astype(np.int16)
    assert len(pcm) > 2 * A.RESAMPLE_CHUNK or rate < 8000      # several chunks, seams included
    assert len(pcm) > A.SPLIT_ABOVE_S * rate                    # and two halves
    offset = float(pcm.mean() / 32768)
    whole = soxr.resample(pcm.astype(np.float32) / 32768 - np.float32(offset), rate, A.SAMPLE_RATE, "HQ")
    given = pcm.copy()
    streamed = A.resample(pcm, rate, A.SAMPLE_RATE, scale=1 / 32768, offset=offset)
    assert streamed.dtype == np.float32 and len(streamed) == len(whole)
    assert np.max(np.abs(streamed - whole)) <= 1e-6 * np.max(np.abs(whole))
    np.testing.assert_array_equal(pcm, given)      # the caller's samples untouched


def _resampled(x: np.ndarray) -> np.ndarray:
    return A.resample(x, 44100, A.SAMPLE_RATE)


def test_a_forked_worker_resamples_long_recordings_too():
    # The batch forks its workers after the parent has resampled: a long recording's second half runs on a thread
    # pool, and a forked child must get a pool of its own (the parent's would wait for ever on threads the child
    # does not have).
    import multiprocessing
    x = tone(seconds=20.0, sr=44100, hz=120.0, amp=0.5).astype(np.float32)
    here = _resampled(x)                       # the parent's pool has run threads now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_resampled, (x,)).get(timeout=60)
    np.testing.assert_array_equal(there, here)


def test_16_bit_and_float_files_give_the_same_samples(tmp_path):
    x = tone(seconds=10.0, sr=44100, hz=120.0, amp=0.5) + 0.05      # with a DC offset to remove
    samples = np.round(x * 32768).astype(np.int16)          # written as they are, read back as they were
    pcm = write(tmp_path / "p.wav", samples, 44100, subtype="PCM_16")
    flt = write(tmp_path / "f.wav", samples / 32768, 44100, subtype="FLOAT")
    a, b = A.load_audio(pcm), A.load_audio(flt)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert abs(float(a.mean())) < 1e-3     # the offset is gone


def test_silence_is_not_an_error(tmp_path):
    x = A.load_audio(write(tmp_path / "x.wav", np.zeros(8000 * 5), 8000))
    assert len(x) == 5 * A.SAMPLE_RATE and not x.any()


# ------------------------------------------------------------------ bad input ----

def wav_bytes(tmp_path, **kw) -> bytearray:
    return bytearray(write(tmp_path / "ok.wav", tone(), 8000, subtype="PCM_16", **kw).read_bytes())


def raises(error, source, **kw) -> str:
    with pytest.raises(error) as info:
        A.load_audio(source, **kw)
    assert isinstance(info.value, A.AudioError) and info.value.code == error.code
    assert info.value.message and "Traceback" not in info.value.message
    return info.value.message


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    assert "empty" in raises(A.EmptyAudioError, tmp_path / "e.wav")


def test_zero_samples(tmp_path):
    assert "no sound" in raises(A.EmptyAudioError, write(tmp_path / "z.wav", np.zeros(0), 8000))


def test_not_audio(tmp_path):
    (tmp_path / "notes.wav").write_text("patient notes, not a recording\n" * 50)
    raises(A.NotAudioError, tmp_path / "notes.wav")
    (tmp_path / "photo.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    raises(A.NotAudioError, tmp_path / "photo.wav")
    raises(A.NotAudioError, tmp_path / "missing.wav")


def test_mp4_without_audio_track(tmp_path, ffmpeg):
    out = tmp_path / "video.mp4"
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5",
                    "-t", "4", "-c:v", "mpeg4", str(out)], check=True)
    assert "no audio track" in raises(A.NotAudioError, out)


def test_truncated_files(tmp_path, ffmpeg):
    (tmp_path / "t.wav").write_bytes(wav_bytes(tmp_path)[:30])
    raises(A.CorruptAudioError, tmp_path / "t.wav")
    m4a = encode(ffmpeg, tmp_path / "ok.wav", tmp_path / "x.m4a", "-c:a", "aac").read_bytes()
    (tmp_path / "t.m4a").write_bytes(m4a[: len(m4a) // 2])
    raises(A.CorruptAudioError, tmp_path / "t.m4a")


def test_unsupported_codec(tmp_path):
    data = wav_bytes(tmp_path)
    data[20:22] = struct.pack("<H", 0x5555)  # a WAVE format tag no decoder knows
    (tmp_path / "c.wav").write_bytes(data)
    assert "encoding" in raises(A.UnsupportedCodecError, tmp_path / "c.wav")


@pytest.mark.parametrize("rate", [1, 1_000_000])
def test_impossible_sample_rate(tmp_path, rate):
    data = wav_bytes(tmp_path)
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * 2)
    assert f"{rate} Hz" in raises(A.BadSampleRateError, bytes(data))


def test_nan_and_inf_samples(tmp_path):
    x = tone()
    x[100], x[200] = np.nan, np.inf
    raises(A.InvalidSamplesError, write(tmp_path / "n.wav", x, 8000, subtype="FLOAT"))
    x = tone()
    x[300] = -np.inf     # alone: the finite check is the samples' sum
    raises(A.InvalidSamplesError, write(tmp_path / "i.wav", x, 8000, subtype="FLOAT"))


def test_too_short_states_the_minimum(tmp_path):
    assert "at least 3 s" in raises(A.TooShortError, write(tmp_path / "s.wav", tone(seconds=1.0), 8000))


def test_too_long_states_the_limit(tmp_path, ffmpeg):
    wav = write(tmp_path / "l.wav", tone(seconds=12.0), 8000)
    assert "limit is 10 s" in raises(A.TooLongError, wav, max_seconds=10)
    m4a = encode(ffmpeg, wav, tmp_path / "l.m4a", "-c:a", "aac")
    assert "limit is 10 s" in raises(A.TooLongError, m4a, max_seconds=10)


def test_too_large(tmp_path):
    wav = write(tmp_path / "big.wav", tone(), 8000)
    assert "limit is" in raises(A.FileTooLargeError, wav, max_bytes=1000)
