"""The page's two pictures, drawn from what the front end prepared (the recording at the model's rate):
the beats, and the heart-sound band with systole marked. Each is a `Picture`: what it marks (spans, lines,
ranges: what the tests read) and the pixels drawn from exactly those marks, as PNG. The page shows it and
the referral sheet reuses the beats picture.

Drawn with numpy and Pillow (already loaded by Gradio), not matplotlib: importing matplotlib cost the app
~25 MB and its two figures ~200 ms an answer; these cost a few milliseconds.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from gradio.components.plot import PlotData
from PIL import Image, ImageDraw, ImageFont

from ..describe import PHASES
from ..dsp import spectrogram
from ..frontend import Prepared

# Drawn for a phone first (390 CSS px wide: the picture spans about 330 of them): 750 pixels wide, shown at
# ~0.44 CSS px each, so FONT_PX text (25 pixels, 12 pt at 150 dpi) reads as ~11 CSS px, and a 2x phone
# screen (660 device pixels) loses nothing. On a desktop the same picture is shown larger.
WIDTH_PX, FONT_PX, LINE_PX = 750, 25, 30
INK, GRID = (34, 34, 34), (120, 120, 120)
S1_BLUE, S2_GREEN, MURMUR_RED, ASIDE_GREY = (21, 101, 192), (0, 137, 123), (198, 40, 40), (208, 208, 208)
# Colour ramps as anchor colours, linearly interpolated: green-yellow-red for "how abnormal" (ColorBrewer's
# RdYlGn ends and middle) and magma's colours at nine points for loudness (dark quiet, bright loud).
ABNORMAL_RAMP = np.array([(26, 152, 80), (255, 255, 191), (215, 48, 39)], float)
LOUDNESS_RAMP = np.array([(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
                          (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191)], float)


def colours(ramp: np.ndarray, values: np.ndarray) -> np.ndarray:
    """RGB (float) for values in 0..1 along a ramp of anchor colours."""
    at = np.clip(np.nan_to_num(values), 0, 1) * (len(ramp) - 1)
    low = np.minimum(at.astype(int), len(ramp) - 2)
    return ramp[low] + (ramp[low + 1] - ramp[low]) * (at - low)[..., None]


@dataclass
class Panel:
    """One plotting area: data ranges, its place in pixels, and what was drawn in it."""
    x_range: tuple
    y_range: tuple
    box: tuple                                    # left, top, right, bottom, pixels
    spans: list = field(default_factory=list)     # (start_s, end_s, kind): shaded stretches
    lines: list = field(default_factory=list)     # (time_s, kind): vertical marks

    def column(self, t) -> np.ndarray:
        left, _, right, _ = self.box
        share = (np.asarray(t, float) - self.x_range[0]) / np.ptp(self.x_range)
        return np.round(left + share * (right - left)).astype(int)

    def row(self, y) -> np.ndarray:
        _, top, _, bottom = self.box
        share = (np.asarray(y, float) - self.y_range[0]) / np.ptp(self.y_range)
        return np.round(bottom - share * (bottom - top)).astype(int)


@dataclass
class Picture:
    title: str
    panels: list
    pixels: np.ndarray = field(repr=False)        # (height, width, 3) uint8

    def png(self) -> bytes:
        out = io.BytesIO()
        # compress_level 1: ~4 ms faster than the default 6, for 5-15% more bytes
        Image.fromarray(self.pixels).save(out, format="PNG", compress_level=1)
        return out.getvalue()


def _shade(canvas: np.ndarray, panel: Panel, start: float, end: float, rgb, alpha: float, hatch: bool = False,
           rows: tuple | None = None) -> None:
    """Blend a colour over the panel's columns from start to end (s); hatched: every 12th diagonal darker."""
    left, top, right, bottom = panel.box
    a, b = np.clip(panel.column([start, end]), left, right)
    top, bottom = rows or (top, bottom)
    area = canvas[top:bottom, a:b].astype(float)
    blended = area * (1 - alpha) + np.asarray(rgb, float) * alpha
    if hatch:
        y, x = np.mgrid[top:bottom, a:b]
        blended[(x + y) % 12 < 2] = np.asarray(rgb, float) * 0.55
    canvas[top:bottom, a:b] = blended.astype(np.uint8)


def _vline(canvas: np.ndarray, panel: Panel, t: float, rgb, dashed: bool = False) -> None:
    left, top, right, bottom = panel.box
    x = int(panel.column(t))
    if left <= x < right:
        ys = np.arange(top, bottom)
        canvas[ys[(ys // 8) % 2 == 0] if dashed else ys, x:x + 2] = rgb


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_PX)       # Pillow's own font: no font files on the machine needed


def _render(title: str, panels: list, canvas: np.ndarray, x_label: str = "seconds", y_unit: str = "",
            y_ticks=()) -> Picture:
    """Frames, ticks and words over the canvas's pixels."""
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    font = _font()
    for i, line in enumerate(title.split("\n")):
        draw.text((8, 6 + i * LINE_PX), line, fill=INK, font=font)
    for panel in panels:
        draw.rectangle(panel.box, outline=INK, width=1)
    axis = panels[-1]
    left, _, right, bottom = axis.box
    span = np.ptp(axis.x_range)
    step = next(s for s in (1, 2, 5, 10, 20, 30, 60) if span / s <= 7)
    for t in np.arange(np.ceil(axis.x_range[0] / step) * step, axis.x_range[1] + 1e-9, step):
        x = int(axis.column(t))
        draw.line([(x, bottom), (x, bottom + 6)], fill=INK)
        draw.text((x, bottom + 8), f"{t:g}", fill=INK, font=font, anchor="ma")
    draw.text(((left + right) // 2, bottom + 8 + LINE_PX), x_label, fill=INK, font=font, anchor="ma")
    for value in y_ticks:
        y = int(axis.row(value))
        draw.line([(left - 6, y), (left, y)], fill=INK)
        unit = f" {y_unit}" if y_unit and value == y_ticks[-1] else ""      # the unit once, on the top tick
        draw.text((left - 9, y), f"{value:g}{unit}", fill=INK, font=font, anchor="rm")
    return Picture(title, panels, np.asarray(image))


def shown(picture: bytes) -> PlotData:
    """A picture for gr.Plot, already rendered (the beats picture is rendered for the referral sheet anyway)."""
    return PlotData(type="matplotlib", plot="data:image/png;base64," + base64.b64encode(picture).decode())


def beats_figure(prepared: Prepared, r) -> Picture:
    """Waveform with S1/S2 marks, the stretches the artifact detector left out grey and hatched, and a
    background strip: how abnormal each stretch sounds (mean window score at each 0.1 s)."""
    x, rate = prepared.audio, prepared.sample_rate
    duration = len(x) / rate
    peak = float(np.abs(x).max()) or 1.0
    height = 450
    panel = Panel((0.0, duration), (-peak, peak), (22, 120, WIDTH_PX - 22, height - 75))
    canvas = np.full((height, WIDTH_PX, 3), 255, np.uint8)
    left, top, right, bottom = panel.box
    if r.windows:
        grid = np.arange(0, duration, 0.1)
        shade = np.array([np.mean([w["p_abnormal"] for w in r.windows if w["start_s"] <= t < w["end_s"]] or [np.nan])
                          for t in grid])
        times = (np.arange(left, right) - left + 0.5) / (right - left) * duration
        shade = shade[np.minimum((times * 10).astype(int), len(shade) - 1)]     # each column's 0.1 s stretch
        tinted = 255 * 0.75 + colours(ABNORMAL_RAMP, shade) * 0.25
        canvas[top:bottom, left:right] = np.where(np.isnan(shade)[None, :, None], 255, tinted[None]).astype(np.uint8)
    for span in r.set_aside:
        _shade(canvas, panel, span["start_s"], span["end_s"], ASIDE_GREY, 1.0, hatch=True)   # no score: not judged
        panel.spans.append((span["start_s"], span["end_s"], "left out"))
    # The waveform as each pixel column's lowest and highest sample: every beat shows, however long the recording.
    edges = np.linspace(0, len(x), right - left + 1).astype(int)
    lows, highs = np.minimum.reduceat(x, edges[:-1]), np.maximum.reduceat(x, edges[:-1])
    y = np.arange(top, bottom)[:, None]
    ink = (y >= panel.row(highs)[None, :] - 1) & (y <= panel.row(lows)[None, :])
    canvas[top:bottom, left:right][ink] = (51, 51, 51)
    for t in r.s1_times:
        _vline(canvas, panel, t, S1_BLUE)
        panel.lines.append((t, "S1"))
    for t in r.s2_times:
        _vline(canvas, panel, t, S2_GREEN, dashed=True)
        panel.lines.append((t, "S2"))
    title = ("Beats: blue S1, dashed green S2.\nShading: how abnormal each stretch sounds\n(green low, red high"
             + ("; grey hatched: left out)" if r.set_aside else ")"))
    return _render(title, [panel], canvas)


def spectrogram_figure(prepared: Prepared, r, seconds: float = 8.0) -> Picture:
    """What a clinician can read instead of cepstra: the heart-sound band (20-600 Hz) over the first few
    seconds, with a strip above it marking each systole (S1 to S2), so a murmur shows as energy filling the
    gaps between the beats, in systole or diastole."""
    sr = prepared.sample_rate
    x = prepared.audio[: int(seconds * sr)]
    f, t, power = spectrogram(x, sr, nperseg=128, noverlap=112)
    height = 540
    strip = Panel((0.0, len(x) / sr), (0.0, 1.0), (110, 105, WIDTH_PX - 20, 150))
    band = Panel((0.0, len(x) / sr), (20.0, 600.0), (110, 156, WIDTH_PX - 20, height - 80))
    canvas = np.full((height, WIDTH_PX, 3), 255, np.uint8)
    left, top, right, bottom = band.box
    db = 10 * np.log10(power + 1e-12)
    # Each pixel shows the nearest time segment and frequency bin (an image, not a mesh).
    hop = t[1] - t[0] if len(t) > 1 else 0.008
    centres = (np.arange(left, right) - left + 0.5) / (right - left) * band.x_range[1]
    seg = np.round((centres - t[0]) / hop).astype(int)
    inside = (seg >= 0) & (seg < len(t)) & (centres <= t[-1] + hop / 2)
    hz = band.y_range[0] + (bottom - np.arange(top, bottom) - 0.5) / (bottom - top) * np.ptp(band.y_range)
    rows = np.clip(np.round(hz / (f[1] - f[0])).astype(int), 0, len(f) - 1)
    shown_db = db[f <= 600]
    level = (db[rows][:, np.clip(seg, 0, len(t) - 1)] - (shown_db.max() - 60)) / 60
    lut = colours(LOUDNESS_RAMP, np.linspace(0, 1, 256)).astype(np.uint8)    # a lookup, not maths per pixel
    pixels = lut[(np.clip(level, 0, 1) * 255).astype(np.uint8)]
    canvas[top:bottom, left:right] = np.where(inside[None, :, None], pixels, np.uint8(255))
    # Where the murmur was located (describe.py), in red: systole, diastole or both.
    in_systole, in_diastole = PHASES.get(r.murmur_timing, (False, False))
    for s1, after in zip(r.s1_times, list(r.s1_times[1:]) + [None]):   # systole: each S1 to its S2
        s2 = next((s for s in r.s2_times if s1 < s < s1 + 0.6), None)
        if s2 is None or s1 >= seconds:
            continue
        _shade(canvas, strip, s1, s2, MURMUR_RED if in_systole else S1_BLUE, 0.6)
        strip.spans.append((s1, s2, "systole"))
        if in_diastole and after is not None:
            _shade(canvas, strip, s2, after, MURMUR_RED, 0.35)
            strip.spans.append((s2, after, "diastole"))
    where = {(True, False): "Red: the murmur, in systole", (False, True): "Red: the murmur, in diastole",
             (True, True): "Red: the murmur, in systole and diastole"}.get((in_systole, in_diastole))
    title = ("Heart-sound band. Bars: systole (S1 to S2),\ngaps: diastole. "
             + (where + "." if where else "A murmur is energy\nbetween the beats."))
    return _render(title, [strip, band], canvas, y_unit="Hz", y_ticks=tuple(range(100, 601, 100)))
