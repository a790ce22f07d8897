"""How much the diastolic listener's logit moves when the same recording is uploaded at another rate, level or offset.

    python scripts/listener_invariance.py [--n 160] [--seed 11] [--against OTHER/diastolic.json]

Each of `n` random labelled recordings (>= 8 s) as tests/test_quality.py uploads it: 16-bit WAV at 2, 4, 8, 16 and
44.1 kHz (hiss above the heart band as loud as the heart), 20 dB quieter and with a DC offset of 0.4. Prints the
spread of the listener's logit across the copies (median, 90th percentile) and how many recordings have the
listener's verdict differ between copies; `--against`: the same for another listener file, on the same copies.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heartbeat.audio import load_audio                                      # noqa: E402
from heartbeat.augment import as_uploaded                                   # noqa: E402
from heartbeat.datasets import load_table                                   # noqa: E402
from heartbeat.describe import profile_of                                   # noqa: E402
from heartbeat.diastolic import DiastolicListener, input_of                         # noqa: E402
from heartbeat.frontend import prepare                                      # noqa: E402
from heartbeat.model import load_model                                      # noqa: E402
from heartbeat.predict import read                                          # noqa: E402

RATES = (2000, 4000, 8000, 16000, 44100)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--against", help="another listener's diastolic.json, scored on the same copies")
    args = ap.parse_args(argv)
    model = load_model()
    listeners = {"bundled": model.diastolic}
    if args.against:
        listeners[args.against] = DiastolicListener.load(args.against)
    table = load_table()
    table = table[table["label"].isin(["normal", "abnormal"]) & (table["duration_s"] >= 8)]
    spreads = {name: [] for name in listeners}
    with tempfile.TemporaryDirectory() as tmp:
        for path in tqdm(table.sample(args.n, random_state=args.seed)["path"], desc="recordings", disable=None):
            x = load_audio(path, 2000)
            x = 0.3 * x / np.abs(x).max()
            copies = [(as_uploaded(x, 2000, rate, np.random.default_rng(rate)), rate) for rate in RATES] + \
                     [(0.1 * x, 2000), (x + 0.4, 2000)]
            inputs = []
            for y, rate in copies:
                out = Path(tmp, "copy.wav")
                sf.write(out, np.clip(y, -1, 1), rate, subtype="PCM_16")
                p = prepare(read(out, model), model.features, model.segmenter)
                inputs.append(input_of(p, profile_of(p)))
            for name, listener in listeners.items():
                margins = [listener.score(z) - listener.cut for z in inputs if z is not None]
                if margins:
                    spreads[name].append((min(margins), max(margins), path))
    for name, rows in spreads.items():
        low, high = np.array([r[:2] for r in rows]).T
        flips = int(np.sum((low < 0) & (high >= 0)))
        for lo, hi, path in rows:
            if lo < 0 <= hi:
                print(f"  {name}: verdict differs for {path}: logit - cut {lo:+.2f} to {hi:+.2f}")
        print(f"{name}: {len(rows)} recordings; logit spread across copies median {np.median(high - low):.3f}, "
              f"90th percentile {np.percentile(high - low, 90):.3f}; verdict differs between copies in {flips}; "
              f"heard in some copy {int(np.sum(high >= 0))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
