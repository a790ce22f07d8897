"""Untrusted input: hostile files and random data end in the documented clear error or a valid answer,
within bounded memory. Nothing crashes the process, nothing hangs (ffmpeg runs under audio.FFMPEG_TIMEOUT_S;
how long each case takes is not asserted: these machines are noisy)."""
from __future__ import annotations

import struct
import subprocess

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartbeat.audio import AudioError, load_audio
from heartbeat.features import FeatureConfig, model_input
from heartbeat.frontend import prepare
from heartbeat.predict import predict_files
from conftest import tone, write




def wav_header(rate: int, channels: int = 1, bits: int = 16, frames: int = 1000, fmt: int = 1) -> bytes:
    data = frames * channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate,
            rate * channels * bits // 8, channels * bits // 8, bits) + b"data" + struct.pack("<I", data))


def hostile_files(tmp, ffmpeg):
    rng = np.random.default_rng(0)
    ok = write(tmp / "ok.wav", tone(seconds=6), 8000).read_bytes()
    files = {
        "empty.wav": b"", "one-byte.mp3": b"\x00",
        "random.wav": rng.bytes(4096), "random.mp3": rng.bytes(4096), "random.m4a": rng.bytes(4096),
        "random.ogg": rng.bytes(4096), "random.flac": rng.bytes(4096), "random.webm": rng.bytes(4096),
        "truncated-header.wav": ok[:20], "header-only.wav": ok[:44],
        "claims-2^31-samples.wav": wav_header(8000, frames=2**31 // 2)[:40] + struct.pack("<I", 2**31) + ok[44:],
        "zero-rate.wav": wav_header(0) + bytes(2000), "1-hz.wav": wav_header(1) + bytes(2000),
        "1-mhz.wav": wav_header(1_000_000, frames=10_000_000)[:44] + bytes(20_000),
        "unknown-codec.wav": wav_header(8000, fmt=0x5555) + bytes(2000),
        "image.wav": b"\x89PNG\r\n\x1a\n" + rng.bytes(3000), "jpeg.m4a": b"\xff\xd8\xff\xe0" + rng.bytes(3000),
        "text.flac": b"fLaC but actually text\n" * 50,
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    nan = tone(seconds=6)
    nan[::97] = np.nan
    write(tmp / "nan.wav", nan, 8000, subtype="FLOAT")
    inf = tone(seconds=6)
    inf[5] = np.inf
    write(tmp / "inf.wav", inf, 8000, subtype="DOUBLE")
    write(tmp / "64-channels.wav", np.tile(tone(seconds=5, sr=4000)[:, None], (1, 64)), 4000)
    write(tmp / "two-hours.wav", np.zeros(2 * 3600 * 1000), 1000, subtype="PCM_U8")   # 7 MB: under the size cap
    with (tmp / "200mb.wav").open("wb") as f:          # sparse: 200 MB on paper, nothing on disk
        f.write(ok[:44])
        f.truncate(200 * 2**20)
    # "zip bomb": hours of silence that compress to almost nothing, in-process (FLAC) and via ffmpeg (opus)
    with sf.SoundFile(tmp / "bomb.flac", "w", 8000, 1, format="FLAC") as f:
        block = np.zeros(8000 * 60)
        for _ in range(120):
            f.write(block)
    # Two hours of Opus: one minute encoded, its packets repeated (encoding two hours took 40 s of CPU).
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "60", "-c:a", "libopus", "-b:a", "6k", str(tmp / "minute.opus")], check=True)
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-stream_loop", "119", "-i", str(tmp / "minute.opus"),
                    "-c", "copy", str(tmp / "bomb.opus")], check=True)
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=2",
                    "-t", "5", "-c:v", "mpeg4", str(tmp / "video-only.mp4")], check=True)
    m4a = tmp / "x.m4a"
    subprocess.run([ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(tmp / "ok.wav"), "-c:a", "aac", str(m4a)],
                   check=True)
    (tmp / "truncated.m4a").write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 3])
    return sorted(p for p in tmp.iterdir() if p.name not in ("ok.wav", "x.m4a", "minute.opus"))


def test_hostile_corpus(tmp_path, ffmpeg, model):
    import psutil
    process = psutil.Process()
    files = hostile_files(tmp_path, ffmpeg)
    outcomes = {}
    for path in files:
        before = process.memory_info().rss
        result = next(predict_files([path], model=model))
        grown_mb = (process.memory_info().rss - before) / 2**20
        assert grown_mb < 600, (path.name, grown_mb)
        if "error" in result:
            assert result["error"] and result["error_code"] and "Traceback" not in result["error"]
        else:
            assert result["label"] in ("normal", "abnormal", "no_heartbeat")
        outcomes[path.name] = result.get("error_code", result.get("label"))
    print(f"\nhostile corpus: {len(files)} files -> {outcomes}")
    # The cases with one clear expected answer:
    expected = {"empty.wav": "empty", "one-byte.mp3": "not_audio", "image.wav": "not_audio",
                "nan.wav": "invalid_samples", "inf.wav": "invalid_samples", "two-hours.wav": "too_long",
                "200mb.wav": "too_large", "bomb.flac": "too_long", "bomb.opus": "too_long",
                "video-only.mp4": "not_audio", "1-hz.wav": "bad_sample_rate", "1-mhz.wav": "bad_sample_rate",
                "unknown-codec.wav": "unsupported_codec", "truncated.m4a": "corrupt"}
    assert {k: outcomes[k] for k in expected} == expected
    assert outcomes["64-channels.wav"] in ("normal", "abnormal", "no_heartbeat")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_never_crash(data):
    try:
        audio = load_audio(data)
    except AudioError as e:
        assert e.message and e.code
    else:
        assert audio.dtype == np.float32 and np.isfinite(audio).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=6000, max_value=40000), st.floats(min_value=0, max_value=1e4),
       st.sampled_from(["sine", "noise", "zeros", "impulses", "huge"]))
def test_features_of_any_signal_are_finite(n, scale, kind):
    rng = np.random.default_rng(n)
    x = {"sine": np.sin(np.arange(n) * 0.3), "noise": rng.standard_normal(n), "zeros": np.zeros(n),
         "impulses": (rng.random(n) > 0.999).astype(float), "huge": rng.standard_normal(n) * 1e30}[kind] * scale
    cfg = FeatureConfig()
    batch, starts = model_input(prepare(x.astype(np.float32), cfg, None, rate=cfg.sample_rate), cfg)
    assert np.isfinite(batch).all() and len(batch) == len(starts) >= 1


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=24000, max_value=80000), st.floats(min_value=0, max_value=1.0),
       st.sampled_from(["sine", "noise", "zeros", "clicks"]))
def test_classify_any_signal_gives_a_valid_result(model, n, scale, kind):
    from heartbeat.predict import classify
    rng = np.random.default_rng(n)
    x = {"sine": np.sin(np.arange(n) * 0.05), "noise": rng.standard_normal(n), "zeros": np.zeros(n),
         "clicks": (rng.random(n) > 0.9995).astype(float)}[kind] * scale
    r = classify(x.astype(np.float32), model)
    assert r.label in ("normal", "abnormal", "no_heartbeat") and 0 <= r.confidence <= 1
    assert (r.p_abnormal is None) == (r.label == "no_heartbeat")
