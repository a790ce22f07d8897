"""Speed of one 30 s recording through our pipeline, against the original notebooks' way, in one process.

    python scripts/benchmark.py [--repeats 50]

Prints medians of many runs and ratios; nothing here is a pass/fail test (these machines are noisy).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402


def median_ms(fn, repeats: int, clock=time.perf_counter) -> float:
    """Median milliseconds of `fn` on `clock`: wall time, or time.process_time (CPU of all the process's threads)."""
    fn()  # warm: first calls pay lazy imports and size buffers
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)

    import librosa
    from threadpoolctl import threadpool_limits
    # The app's, the batch workers' and the command line's setting (one BLAS thread), here for both pipelines:
    # with OpenBLAS's default pool, its idle threads spin and an answer's CPU time doubled at the same wall time.
    threadpool_limits(1)
    from heartbeat.datasets import load_table, select
    from heartbeat.features import FeatureConfig, model_input
    from heartbeat.frontend import prepare
    from heartbeat.audio import load_audio
    from heartbeat.model import DEFAULT_MODEL_DIR, load_model
    from heartbeat.describe import describe
    from heartbeat.predict import classify, read

    table = select(load_table(), ["training-a"]).query("duration_s >= 30")
    src = table["path"].iloc[0]
    audio, sr = sf.read(src)
    audio = audio[: 30 * sr]
    tmp = Path(tempfile.mkdtemp())
    wav2k = tmp / "rec_2k.wav"
    sf.write(wav2k, audio, sr)
    import soxr
    wav44k = tmp / "rec_44k.wav"
    sf.write(wav44k, soxr.resample(audio, sr, 44100), 44100)   # what a phone or browser hands us
    try:
        model = load_model()
    except FileNotFoundError:
        model = None
    # The bundled model's own features (log-mel and cycle rows need its segmenter); the defaults without it.
    cfg, segmenter = (model.features, model.segmenter) if model else (FeatureConfig(), None)

    print(f"30 s recording, median of {args.repeats} runs (ms)")
    rows = []
    for name, path in (("2 kHz wav (PhysioNet)", wav2k), ("44.1 kHz wav (phone/browser)", wav44k)):
        ours = median_ms(lambda: model_input(prepare(load_audio(path, cfg.sample_rate), cfg, segmenter), cfg), args.repeats)
        notebook = median_ms(lambda: librosa.feature.mfcc(y=librosa.load(path)[0], sr=22050, n_mfcc=40),
                             args.repeats)
        rows.append((name, ours, notebook))
        print(f"  {name}: decode+resample+features ours {ours:.1f} ms | notebook (librosa.load at 22,050 Hz "
              f"+ MFCC) {notebook:.1f} ms | notebook/ours = {notebook / ours:.1f}x")

    if model is None:
        print("  (no bundled model: skipping the end-to-end figures)")
        return 0
    audio = read(wav44k, model)
    prepared = prepare(audio, cfg, segmenter)
    windows, _ = model_input(prepared, cfg)
    infer = median_ms(lambda: model.window_logits(windows), args.repeats)
    e2e = median_ms(lambda: classify(read(wav44k, model), model), args.repeats)
    e2e_cpu = median_ms(lambda: classify(read(wav44k, model), model), args.repeats, time.process_time)
    classify_only = median_ms(lambda: classify(audio, model), args.repeats)
    described = median_ms(lambda: describe(prepared, model.describer, True), args.repeats)
    print(f"  model on {len(windows)} windows (LiteRT): {infer:.1f} ms")
    # Where the front end's time goes, each step against the network's.
    from heartbeat.artifacts import screen
    from heartbeat.frontend import clean
    from heartbeat.quality import measure
    from heartbeat.beats import find_beats

    def beats_gate_artifacts(prepared):
        fresh = dataclasses.replace(prepared, beats=find_beats(prepared.cleaned, cfg.sample_rate, segmenter))
        screen(fresh, cfg, model.artifacts)
        return measure(fresh)

    steps = {"decode + resample to 2 kHz (one step)": lambda: read(wav44k, model),
             "clean (band-pass, fade, scale)": lambda: clean(audio, cfg),
             "whole front end (+ beats)": lambda: prepare(audio, cfg, segmenter),
             # A fresh copy each time: the frames' voicing is made once per recording, and both steps read it.
             "gate measurements": lambda: measure(dataclasses.replace(prepared)),
             "artifact windows": lambda: screen(dataclasses.replace(prepared), cfg, model.artifacts),
             # Issue 21's budget (10 ms): the S1/S2 segmentation, the gate's measurements and the artifact windows.
             "beats, gate and artifacts together": lambda: beats_gate_artifacts(prepared),
             "features": lambda: model_input(prepared, cfg)}
    print("  where the time goes: " + "; ".join(f"{name} {median_ms(fn, args.repeats):.1f} ms"
                                                 for name, fn in steps.items()))
    print(f"  murmur timing and loudness (describe.py, an abnormal answer): {described:.1f} ms "
          f"({described / infer:.2f}x the network)")
    print(f"  end to end from a 44.1 kHz file (decode, gate, beats, features, model): {e2e:.1f} ms "
          f"(classify alone {classify_only:.1f} ms; CPU time of an answer, all threads: {e2e_cpu:.1f} ms)")

    # The original notebooks end to end: librosa.load at 22,050 Hz, 40 MFCC, 3 s segments, their Keras CNN
    # through model.predict (weights do not change the time; the architecture is the one in heartbeat.model).
    from heartbeat.model import build_cnn

    def notebook_segments(path):
        y = librosa.load(path)[0]
        seg = 3 * 22050
        return np.stack([librosa.feature.mfcc(y=y[i:i + seg], sr=22050, n_mfcc=40)
                         for i in range(0, len(y) - seg + 1, seg // 2)])[..., None]

    segments = notebook_segments(wav44k)
    keras_net = build_cnn(segments.shape[1:], "baseline")
    nb = median_ms(lambda: keras_net.predict(notebook_segments(wav44k), verbose=0), max(5, args.repeats // 5))
    print(f"  notebook end to end from the same file (librosa.load 22,050 Hz, MFCC, Keras predict on "
          f"{len(segments)} segments): {nb:.1f} ms | notebook/ours = {nb / e2e:.1f}x")
    print(f"  model file: {(DEFAULT_MODEL_DIR / 'model.tflite').stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
