"""The page's two pictures, drawn from what the front end prepared (the recording at the model's rate):
the beats, and the heart-sound band with systole marked. Each is rendered once, to PNG: the page shows it
and the referral sheet reuses the beats picture."""
from __future__ import annotations

import base64
import io

import numpy as np
from gradio.components.plot import PlotData

from ..describe import PHASES
from ..frontend import Prepared


# Drawn for a phone first (390 CSS px wide: the picture spans about 330 of them): 5 inches at DPI dots an
# inch is 750 pixels, shown at ~0.44 CSS px each, so FONT_PT text (12 pt = 25 pixels) reads as ~11 CSS px,
# and a 2x phone screen (660 device pixels) loses nothing. On a desktop the same picture is shown larger.
WIDTH_IN, DPI, FONT_PT = 5.0, 150, 12


def png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _label(ax, title: str, xlabel: str = "seconds") -> None:
    ax.set_title(title, fontsize=FONT_PT, loc="left")
    ax.tick_params(labelsize=FONT_PT)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=FONT_PT)


def shown(picture: bytes) -> PlotData:
    """A picture for gr.Plot, already rendered: given a Figure, Gradio would render it once more (the
    beats picture is rendered for the referral sheet anyway) and import pyplot to close it (+33 MB)."""
    return PlotData(type="matplotlib", plot="data:image/png;base64," + base64.b64encode(picture).decode())


def beats_figure(prepared: Prepared, r):
    """Waveform with S1/S2 marks, windows shaded by how abnormal they sound. Drawn with one image and
    two line collections: a figure per request must cost milliseconds, not a third of a second."""
    from matplotlib.figure import Figure
    x, rate = prepared.audio, prepared.sample_rate
    duration = len(x) / rate
    fig = Figure(figsize=(WIDTH_IN, 3.0))
    ax = fig.subplots()
    peak = float(np.abs(x).max()) or 1.0
    if r.windows:   # mean window score at each 0.1 s, as a background strip
        grid = np.arange(0, duration, 0.1)
        shade = np.array([np.mean([w["p_abnormal"] for w in r.windows if w["start_s"] <= t < w["end_s"]] or [np.nan])
                          for t in grid])
        ax.imshow(shade[None, :], aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=1, alpha=0.25,
                  extent=(0, duration, -peak, peak), interpolation="nearest")
    for span in r.set_aside:      # what the artifact detector left out of the decision
        ax.axvspan(span["start_s"], span["end_s"], color="#9e9e9e", alpha=0.45, hatch="//", lw=0)
    step = max(1, len(x) // 4000)
    ax.plot(np.arange(0, len(x), step) / rate, x[::step], lw=0.5, color="#333")
    ax.vlines(r.s1_times, -peak, peak, color="#1565c0", lw=0.8, alpha=0.8)
    ax.vlines(r.s2_times, -peak, peak, color="#00897b", lw=0.6, linestyles="--", alpha=0.8)
    ax.set(yticks=[], xlim=(0, duration), ylim=(-peak, peak))
    _label(ax, "Beats: blue S1, dashed green S2.\nShading: how abnormal each stretch sounds\n(green low, red high"
           + ("; grey hatched: left out)" if r.set_aside else ")"))
    fig.subplots_adjust(left=0.03, right=0.97, bottom=0.17, top=0.72)   # fixed: tight_layout costs 30 ms
    return fig


def spectrogram_figure(prepared: Prepared, r, seconds: float = 8.0):
    """What a clinician can read instead of cepstra: the heart-sound band (20-600 Hz) over the first few
    seconds, with a strip above it marking each systole (S1 to S2), so a murmur shows as energy filling the
    gaps between the beats, in systole or diastole."""
    from matplotlib.figure import Figure
    from scipy import signal
    sr = prepared.sample_rate
    x = prepared.audio[: int(seconds * sr)]
    f, t, power = signal.spectrogram(x, sr, nperseg=128, noverlap=112)
    band = f <= 600
    db = 10 * np.log10(power[band] + 1e-12)
    fig = Figure(figsize=(WIDTH_IN, 3.6))
    strip, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 6])
    hop = t[1] - t[0] if len(t) > 1 else 0.008                    # an image: pcolormesh costs 5x the time
    ax.imshow(db, aspect="auto", origin="lower", cmap="magma", vmin=db.max() - 60, vmax=db.max(),
              extent=(t[0] - hop / 2, t[-1] + hop / 2, f[0], f[band][-1]), interpolation="nearest")
    # Where the murmur was located (describe.py), in red: systole, diastole or both.
    in_systole, in_diastole = PHASES.get(r.murmur_timing, (False, False))
    for s1, after in zip(r.s1_times, list(r.s1_times[1:]) + [None]):   # systole: each S1 to its S2
        s2 = next((s for s in r.s2_times if s1 < s < s1 + 0.6), None)
        if s2 is None or s1 >= seconds:
            continue
        strip.axvspan(s1, s2, color="#c62828" if in_systole else "#1565c0", alpha=0.6, lw=0)
        if in_diastole and after is not None:
            strip.axvspan(s2, after, color="#c62828", alpha=0.35, lw=0)
    where = {(True, False): "Red: the murmur, in systole", (False, True): "Red: the murmur, in diastole",
             (True, True): "Red: the murmur, in systole and diastole"}.get((in_systole, in_diastole))
    strip.set(yticks=[])
    _label(strip, "Heart-sound band. Bars: systole (S1 to S2),\ngaps: diastole. "
           + (where + "." if where else "A murmur is energy\nbetween the beats."), xlabel="")
    ax.set(ylim=(20, 600), xlim=(0, len(x) / sr))
    _label(ax, "", "seconds")
    ax.set_ylabel("Hz", fontsize=FONT_PT)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.14, top=0.78, hspace=0.05)
    return fig
