"""Device transfer, measured before it is trained on: re-colour recordings of each database with another
database's long-term average spectrum (the field's device impulse-response augmentation, built from our own nine
devices) and see how far the shipped features move, against the channel augmentation training already uses.

    python scripts/device_transfer.py
"""
import zlib

import numpy as np
from scipy import signal

from heartbeat import augment
from heartbeat.audio import SAMPLE_RATE, load_audio
from heartbeat.datasets import ALL_DBS, load_table, select
from heartbeat.recipes import RECIPES
from heartbeat.frontend import prepare
from heartbeat.features import model_input
from heartbeat.model import load_model

if __name__ == "__main__":
    cfg = RECIPES["audible"][0]
    seg = load_model().segmenter
    t = select(load_table(), ALL_DBS, ["normal", "abnormal"], min_seconds=8)
    sample = t.groupby("database").sample(8, random_state=0)
    ltas = {}
    for db, g in sample.groupby("database"):
        ps = []
        for p in g.path:
            x = load_audio(p, SAMPLE_RATE, min_seconds=0)
            f, P = signal.welch(x, SAMPLE_RATE, nperseg=512)
            ps.append(10 * np.log10(P + 1e-12) - 10 * np.log10(P + 1e-12).mean())
        ltas[db] = np.mean(ps, axis=0)
    rng = np.random.default_rng(0)
    d_col, d_chan = [], []
    dbs = list(ltas)
    for r in sample.itertuples():
        rec = load_audio(r.path, SAMPLE_RATE, min_seconds=0)
        base = model_input(prepare(rec, cfg, seg), cfg)[0][:, :cfg.n_coeffs]
        other = rng.choice([d for d in dbs if d != r.database])
        gain_db = ltas[other] - ltas[r.database]
        def recolour(x, sr):
            X = np.fft.rfft(x)
            g = np.interp(np.fft.rfftfreq(len(x), 1 / sr), f, gain_db)
            return np.fft.irfft(X * 10 ** (g / 20), len(x)).astype(np.float32)
        col = model_input(prepare(rec, cfg, seg, augment=recolour), cfg)[0][:, :cfg.n_coeffs]
        rr = np.random.default_rng(zlib.crc32(r.path.encode()))
        chan = model_input(prepare(rec, cfg, seg, augment=lambda x, sr: augment.channel(x, sr, rr, snr_db=(5, 30))), cfg)[0][:, :cfg.n_coeffs]
        n = min(len(base), len(col), len(chan))
        d_col.append(np.abs(base[:n] - col[:n]).mean()); d_chan.append(np.abs(base[:n] - chan[:n]).mean())
    print(f"recordings {len(d_col)}: mean |feature change| recoloured with another database's LTAS {np.mean(d_col):.3f} "
          f"(median {np.median(d_col):.3f}); channel augmentation {np.mean(d_chan):.3f} (median {np.median(d_chan):.3f}); "
          "units: the per-recording standardised log-mel (1 = one within-recording spread)")
    spread = np.array([ltas[a] - ltas[b] for a in dbs for b in dbs if a != b])[:, (f >= 25) & (f <= 400)]
    print(f"LTAS differences between databases in 25-400 Hz: median |dB| {np.median(np.abs(spread)):.1f}, 90th pct {np.percentile(np.abs(spread), 90):.1f}")
