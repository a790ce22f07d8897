"""A second listener for diastolic murmurs: the rumble of mitral stenosis and the blowing decrescendo of aortic
regurgitation, which the network barely hears (the shared data hold 4 diastolic murmurs and no rumble).

It reads the cycle profile the murmur describer reads (describe.cycle_profile: each band's level through
systole and diastole and at S1 and S2, relative to the cycle's quietest diastolic stretch) and scores it with a
small network (one hidden layer, stored as plain JSON like the segmenter's) fitted by scripts/fit_diastolic.py on
synthetic diastolic murmurs (murmurs.py) placed into real normal recordings of every database, against those
same normals (clean and through another device's chain). Its cut is set on real normals only: at most
FALSE_ALARMS of the normal recordings of any one fitting database reach it, so the specificity it costs is
bounded by design, and measured with each database left out (reports/diastolic_listener.md). It can only raise
an answer to "abnormal", never lower one, and it abstains (None) where the segmenter found too few whole
cycles to profile.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FALSE_ALARMS = 0.01     # the share of a fitting database's real normals the cut lets through, at most
# Where S1/S2 stand no more than this far above the sound of diastole (beats.contrast_db), a rumble is lost under
# that sound: held out, the listener heard mitral stenosis of grade III in 0.34-0.38 of such copies, 0.57-0.97 above
# (reports/diastolic_listener.md). A "normal" answer there says so, since it cannot vouch for diastole.
MASKED_BELOW_DB = 10.0
MASKED_NOTE = ("the sound between the beats is loud here, so a soft diastolic murmur (the rumble of mitral stenosis) "
               "could be missed: if that is a concern, record again somewhere quieter")


def masked(contrast_db: float) -> bool:
    """Whether a diastolic rumble could hide under diastole's own sound in a recording whose S1/S2 stand
    `contrast_db` above it."""
    return contrast_db <= MASKED_BELOW_DB


@dataclass
class DiastolicListener:
    mean: list               # the profile's standardisation, as fitted
    scale: list
    layers: list             # [[W, b], ...]: ReLU between, one logit out (positive: a diastolic murmur)
    cut: float               # the logit at or above which a diastolic murmur is heard
    info: dict = field(default_factory=dict)

    def score(self, profile: np.ndarray | None) -> float | None:
        """The logit that `profile` holds a diastolic murmur; None without a profile."""
        if profile is None:
            return None
        h = (np.asarray(profile, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        for i, (w, b) in enumerate(self.layers):
            h = h @ np.asarray(w) + np.asarray(b)
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
        return float(h[0])

    def probability(self, profile: np.ndarray) -> float:
        """The network's probability of a diastolic murmur. Fitted on synthetic murmurs: a strength of
        evidence, not a calibrated chance in any population."""
        return float(1 / (1 + np.exp(-self.score(profile))))

    def heard(self, profile: np.ndarray | None) -> bool | None:
        s = self.score(profile)
        return None if s is None else s >= self.cut

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, path) -> "DiastolicListener":
        return cls(**json.loads(Path(path).read_text()))
