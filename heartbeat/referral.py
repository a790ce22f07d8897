"""The referral sheet: one A4 page, made in memory from an answer, for the clinician to save or print.

Nothing of it is written to disk: `referral_pdf` returns the PDF's bytes, and the app hands them to the
browser inside the page (a data: link), so the patient reference typed into it exists only in that PDF.
"""
from __future__ import annotations

import io
import textwrap
from datetime import datetime

from .words import DISCLAIMER, details, headline


def lines_for(result: dict, reference: str, when: datetime) -> list[str]:
    """The sheet's text, one entry per line (also what the tests read back from the PDF)."""
    return [f"Date and time: {when:%Y-%m-%d %H:%M}",
            f"Patient reference: {reference.strip() or '(none given)'}",
            "",
            f"Answer: {headline(result)} (confidence {result['confidence']:.0%})"] + details(result)


def referral_pdf(result: dict, picture_png: bytes | None, reference: str = "", when: datetime | None = None) -> bytes:
    """One A4 page: title, the answer's lines, the beats picture (if any) and the disclaimer, as PDF bytes."""
    import matplotlib.image as mpimg
    from matplotlib.figure import Figure       # no pyplot: no global state shared between requests
    fig = Figure(figsize=(8.27, 11.69))
    fig.text(0.08, 0.94, "Heart-sound screening: referral sheet", fontsize=16, weight="bold")
    y = 0.90
    for line in lines_for(result, reference, when or datetime.now()):
        for part in textwrap.wrap(line, 95) or [""]:
            fig.text(0.08, y, part, fontsize=10.5)
            y -= 0.022
    if picture_png:
        ax = fig.add_axes((0.06, y - 0.27, 0.88, 0.25))
        ax.imshow(mpimg.imread(io.BytesIO(picture_png), format="png"))
        ax.set_axis_off()
        y -= 0.29
    for part in textwrap.wrap(DISCLAIMER, 95):
        fig.text(0.08, y, part, fontsize=10, style="italic")
        y -= 0.02
    fig.text(0.08, 0.04, "Made by heartbeat (screening software). Recording not kept after the answer.", fontsize=8,
             color="#555")
    out = io.BytesIO()
    fig.savefig(out, format="pdf", metadata={"Title": "Heart-sound referral sheet", "Creator": "heartbeat"})
    return out.getvalue()
