"""Non-heart audio: what a clinician may record by mistake (the quality gate is fitted and measured on it), and
what may sound over a real heart recording (`overlay`: the artifact detector's measure, and training's
`overlay` copies, which teach the network that speech and movement are not heart disease).

Each kind is generated here from what makes it that sound (the periodic ones at heart-like rates, as
they are the hardest), spoken by espeak-ng (Debian) in many voices and languages, or read from Debian's
sound theme. Nothing is saved in the repository: it is all made at run time, at SR, at a random level.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

from .artifacts import KINDS as ARTIFACT_KINDS
from .audio import SAMPLE_RATE, resample
from .augment import coloured_noise, hum

SR = 8000  # generated at 8 kHz, then read like any upload (load_audio resamples)


def _level(rng, x, lo_db=-40, hi_db=-6):
    """Peak-normalise to a random level: the same kind arrives loud and quiet."""
    return x / (np.abs(x).max() + 1e-12) * 10 ** (rng.uniform(lo_db, hi_db) / 20)


def _noise(rng, n, alpha):
    x = coloured_noise(rng, n, SR, alpha)
    return x / (np.abs(x).max() + 1e-12)


def _events(rng, n, make, rate_hz, jitter):
    """Sum of sounds made by `make(rng)` at about `rate_hz`, each interval varied by +-`jitter` of it."""
    x = np.zeros(n)
    t = rng.uniform(0, 1 / rate_hz)
    while t < n / SR:
        ev = make(rng)
        i = int(t * SR)
        x[i:i + len(ev)] += ev[: n - i]
        t += (1 / rate_hz) * (1 + rng.uniform(-jitter, jitter))
    return x


def _decay(rng, seconds, hz, tau):
    t = np.arange(int(seconds * SR)) / SR
    return np.sin(2 * np.pi * hz * t + rng.uniform(0, 6)) * np.exp(-t / tau)


def _click(rng, ms, band):
    """A short broadband click shaped by a resonance: keys, ticks, wooden blocks."""
    n = int(ms / 1000 * SR)
    sos = signal.butter(2, band, "bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n)) * np.exp(-np.arange(n) / (0.2 * n))


# ---------------------------------------------------------------- the kinds ----

def silence(rng, s):
    return np.zeros(int(s * SR))


def near_silence(rng, s):
    return 10 ** (rng.uniform(-80, -65) / 20) * rng.standard_normal(int(s * SR))


def white_noise(rng, s):
    return _level(rng, _noise(rng, int(s * SR), 0))


def pink_noise(rng, s):
    return _level(rng, _noise(rng, int(s * SR), 1))


def brown_noise(rng, s):
    return _level(rng, _noise(rng, int(s * SR), 2))


def mains_hum(rng, s):
    """50 or 60 Hz with harmonics, at several levels, over a faint noise floor."""
    n = int(s * SR)
    return _level(rng, hum(n, SR, rng) + 10 ** (rng.uniform(-50, -20) / 20) * rng.standard_normal(n), -50, -3)


def dc_offset(rng, s):
    """A large constant offset (a faulty input stage) over faint noise."""
    n = int(s * SR)
    return rng.choice([-1, 1]) * rng.uniform(0.1, 0.7) + 10 ** (rng.uniform(-70, -40) / 20) * rng.standard_normal(n)


def slow_drift(rng, s):
    """The baseline wandering below the heart band (0.05-3 Hz), with an offset and faint noise."""
    n = int(s * SR)
    t = np.arange(n) / SR
    drift = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(0.05, 3) * t + rng.uniform(0, 6)) for _ in range(3))
    return rng.uniform(-0.3, 0.3) + drift + 10 ** (rng.uniform(-70, -40) / 20) * rng.standard_normal(n)


def tone(rng, s):
    t = np.arange(int(s * SR)) / SR
    x = np.sin(2 * np.pi * rng.uniform(60, 1500) * t) if rng.random() < 0.5 else \
        signal.chirp(t, rng.uniform(50, 300), t[-1], rng.uniform(400, 2000))
    return _level(rng, x)


def beeps(rng, s):
    """A monitor's or device's beep, 400-3000 Hz, repeated at 0.5-2 per second."""
    hz, dur = rng.uniform(400, 3000), rng.uniform(0.05, 0.3)
    t = np.arange(int(dur * SR)) / SR
    beep = np.sin(2 * np.pi * hz * t) * np.minimum(1, np.minimum(t, dur - t) * 200)
    return _level(rng, _events(rng, int(s * SR), lambda r: beep, rng.uniform(0.5, 2), 0.02))


def alarm(rng, s):
    """Two alternating tones or a swept siren, as alarms do."""
    n = int(s * SR)
    t = np.arange(n) / SR
    if rng.random() < 0.5:
        f1, f2, rate = rng.uniform(400, 1500), rng.uniform(600, 2500), rng.uniform(1, 5)
        f = np.where(np.sin(2 * np.pi * rate * t) > 0, f1, f2)
    else:
        f = rng.uniform(500, 1000) + rng.uniform(200, 800) * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t)
    return _level(rng, np.sin(2 * np.pi * np.cumsum(f) / SR))


def ringtone(rng, s):
    """A phone's melody: short bright notes with harmonics, in a repeating pattern."""
    notes = 440 * 2 ** (rng.integers(0, 24, rng.integers(4, 9)) / 12)
    dur = rng.uniform(0.1, 0.3)
    t = np.arange(int(dur * SR)) / SR
    pattern = np.concatenate([sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-t * 6)
                              for f in notes] + [np.zeros(int(rng.uniform(0.2, 1) * SR))])
    return _level(rng, np.resize(pattern, int(s * SR)))


def music_like(rng, s):
    """Notes with harmonics and decays at a tempo: rhythmic and tonal."""
    n, t = int(s * SR), np.arange(int(0.6 * SR)) / SR
    x = np.zeros(n)
    beat = 60 / rng.uniform(60, 160)
    for start in np.arange(0, s - 0.6, beat / rng.choice([1, 2])):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        note = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5)) * np.exp(-t * rng.uniform(3, 8))
        i = int(start * SR)
        x[i:i + len(note)] += note[: n - i]
    return _level(rng, x)


def breathing(rng, s):
    """Breath noise (200-2000 Hz) swelling in and out 10-30 times a minute, through the chest piece."""
    n = int(s * SR)
    t = np.arange(n) / SR
    sos = signal.butter(2, [rng.uniform(100, 300), rng.uniform(1000, 2500)], "bandpass", fs=SR, output="sos")
    swell = np.maximum(0, np.sin(2 * np.pi * rng.uniform(10, 30) / 60 * t + rng.uniform(0, 6))) ** rng.uniform(1, 3)
    return _level(rng, signal.sosfilt(sos, rng.standard_normal(n)) * swell)


def _glottal(r, seconds, f0):
    """A voice's source: glottal pulses at a falling pitch from `f0` with 2-5% jitter, through two formants
    (F1 400-800 Hz, F2 1200-2200 Hz). Harmonics that glide and wobble, as a voice's do, not a sine's line."""
    n = int(seconds * SR)
    pulses, t, jitter = np.zeros(n), 0.0, r.uniform(0.02, 0.05)
    while int(t * SR) < n:
        pulses[int(t * SR)] = 1.0
        t += 1 / (f0 * (1 - 0.2 * t / seconds)) * (1 + r.uniform(-jitter, jitter))
    f1, f2 = r.uniform(400, 800), r.uniform(1200, 2200)
    return sum(signal.sosfilt(signal.butter(1, [f * 0.85, f * 1.15], "bandpass", fs=SR, output="sos"), pulses) * g
               for f, g in ((f1, 1.0), (f2, 0.5)))


def cough(rng, s):
    """Coughs every few seconds, in the three phases described by Korpas et al. (Pulm Pharmacol 1996;9:261-8,
    "Analysis of the cough sound: an overview"): an explosive burst of broad noise (30-50 ms), an
    intermediate stretch of airflow noise, and in most coughs a voiced end as the glottis closes (a voice's
    pulses, not a pure tone: an earlier sine here read as a hum)."""
    def one(r):
        d = r.uniform(0.25, 0.5)
        t = np.arange(int(d * SR)) / SR
        noise = signal.sosfilt(signal.butter(2, [150, 3000], "bandpass", fs=SR, output="sos"), r.standard_normal(len(t)))
        burst = r.uniform(0.03, 0.05)
        x = noise * np.where(t < burst, 1.0, 0.35 * np.exp(-(t - burst) / (d / 3))) * np.minimum(1, t * 300)
        if r.random() < 0.7:                      # the voiced end: the last 30-50% of the cough
            start = int(len(t) * r.uniform(0.5, 0.7))
            voice = _glottal(r, (len(t) - start) / SR, r.uniform(100, 250))[: len(t) - start]
            ramp = np.sin(np.pi * np.arange(len(voice)) / len(voice))
            x[start:start + len(voice)] += voice / (np.abs(voice).max() + 1e-12) * 0.3 * np.abs(x).max() * ramp
        return x
    return _level(rng, _events(rng, int(s * SR), one, rng.uniform(0.2, 0.8), 0.5) + 0.003 * rng.standard_normal(int(s * SR)))


def fan(rng, s):
    """A fan: broadband noise, a blade-pass tone with harmonics and a slow wobble."""
    n = int(s * SR)
    t = np.arange(n) / SR
    blade = sum(np.sin(2 * np.pi * rng.uniform(20, 90) * k * t) / k for k in (1, 2, 3))
    wobble = 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 1) * t)
    return _level(rng, (_noise(rng, n, rng.uniform(0.5, 1.5)) + rng.uniform(0.05, 0.5) * blade) * wobble)


def traffic(rng, s):
    """Road noise: low rumble swelling as vehicles pass every few seconds, now and then a horn."""
    n = int(s * SR)
    t = np.arange(n) / SR
    swell = sum(np.exp(-((t - c) / rng.uniform(1, 3)) ** 2) for c in rng.uniform(0, s, rng.integers(2, 8)))
    x = _noise(rng, n, 2) * (0.2 + swell)
    if rng.random() < 0.5:
        i = int(rng.uniform(0, max(s - 1, 0.1)) * SR)
        horn = np.sin(2 * np.pi * rng.uniform(300, 500) * np.arange(int(0.5 * SR)) / SR)
        x[i:i + len(horn)] += 0.5 * horn[: n - i]
    return _level(rng, x)


def handling(rng, s):
    """The microphone or chest piece handled: low thumps and rustle bursts at random moments."""
    def one(r):
        thump = _decay(r, 0.2, r.uniform(10, 40), 0.04)
        rustle = signal.sosfilt(signal.butter(2, [200, 2500], "bandpass", fs=SR, output="sos"),
                                r.standard_normal(int(r.uniform(0.1, 0.5) * SR)))
        out = np.zeros(max(len(thump), len(rustle)))
        out[: len(thump)] += thump
        out[: len(rustle)] += 0.3 * rustle * r.random()
        return out
    return _level(rng, _events(rng, int(s * SR), one, rng.uniform(0.5, 3), 0.8) + 0.002 * rng.standard_normal(int(s * SR)))


def rubbing(rng, s):
    """Cloth or fingers rubbing the microphone: band-limited noise in slow, uneven strokes."""
    n = int(s * SR)
    sos = signal.butter(2, [rng.uniform(100, 300), rng.uniform(1000, 3500)], "bandpass", fs=SR, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    strokes = np.abs(signal.sosfilt(signal.butter(2, rng.uniform(0.5, 3), fs=SR, output="sos"), rng.standard_normal(n)))
    return _level(rng, noise * strokes)


def taps(rng, s):
    """Irregular knocks and taps on the chest piece or table."""
    t = np.arange(int(0.05 * SR)) / SR
    knock = lambda r: np.sin(2 * np.pi * r.uniform(80, 600) * t) * np.exp(-t * 80) * r.uniform(0.2, 1)  # noqa: E731
    return _level(rng, _events(rng, int(s * SR), knock, rng.uniform(0.8, 3), 0.9) + 0.002 * rng.standard_normal(int(s * SR)))


def typing(rng, s):
    """Keyboard typing: sharp clicks with a low thump, 3-8 a second, irregular, in bursts."""
    def key(r):
        c = _click(r, r.uniform(5, 15), [r.uniform(800, 1500), r.uniform(2500, 3900)])
        c[: int(0.005 * SR)] += 0.3 * _decay(r, 0.005, r.uniform(80, 200), 0.003)
        return c * r.uniform(0.3, 1)
    x = _events(rng, int(s * SR), key, rng.uniform(3, 8), 0.7)
    pauses = np.repeat(rng.random(int(s) + 1) < 0.8, SR)[: len(x)]
    return _level(rng, x * pauses + 0.001 * rng.standard_normal(len(x)))


def footsteps(rng, s):
    """Footsteps on a hard floor, 1.5-2.2 a second: a broadband heel impact over a low floor thump, a
    softer toe. Periodic at a heart-like rate: among the hardest."""
    def step(r):
        out = np.zeros(int(0.35 * SR))
        heel = _click(r, r.uniform(20, 50), [r.uniform(60, 200), r.uniform(2000, 3900)])
        thump = 0.5 * _decay(r, 0.12, r.uniform(20, 60), 0.03)
        toe_at = int(r.uniform(0.1, 0.2) * SR)
        out[: len(thump)] += thump
        out[: len(heel)] += heel
        out[toe_at:toe_at + len(heel)] += 0.4 * heel[: len(out) - toe_at]
        return out * r.uniform(0.6, 1)
    return _level(rng, _events(rng, int(s * SR), step, rng.uniform(1.5, 2.2), 0.08) + 0.003 * rng.standard_normal(int(s * SR)))


def ticking_clock(rng, s):
    """A clock: alternating tick and tock, one a second (or two), clicks with a resonance."""
    rate = rng.choice([1.0, 2.0])
    bands = [[rng.uniform(1500, 2500), 3800], [rng.uniform(800, 1500), 3000]]
    n = int(s * SR)
    x = np.zeros(n)
    for k, t in enumerate(np.arange(rng.uniform(0, 1), s, 1 / rate)):
        c = _click(rng, 8, bands[k % 2]) * (1 if k % 2 else 0.7)
        i = int(t * SR)
        x[i:i + len(c)] += c[: n - i]
    return _level(rng, x + 0.001 * rng.standard_normal(n))


def metronome(rng, s):
    """A metronome: identical wooden clicks at an exact tempo of 40-200 beats a minute."""
    c = _click(rng, 15, [rng.uniform(500, 1200), rng.uniform(2000, 3500)])
    c[: int(0.01 * SR)] += 0.5 * _decay(rng, 0.01, rng.uniform(150, 400), 0.004)
    return _level(rng, _events(rng, int(s * SR), lambda r: c, rng.uniform(40, 200) / 60, 0.0)
                  + 0.001 * rng.standard_normal(int(s * SR)))


def dripping_tap(rng, s):
    """Drops into water: a rising 'plink' and a low plop, 0.5-3 times a second, nearly regular."""
    def drop(r):
        t = np.arange(int(0.08 * SR)) / SR
        plink = signal.chirp(t, r.uniform(300, 700), t[-1], r.uniform(900, 2000)) * np.exp(-t * 50)
        plink[: int(0.03 * SR)] += 0.4 * _decay(r, 0.03, r.uniform(60, 150), 0.01)
        return plink * r.uniform(0.6, 1)
    return _level(rng, _events(rng, int(s * SR), drop, rng.uniform(0.5, 3), 0.1) + 0.002 * rng.standard_normal(int(s * SR)))


GENERATED = [silence, near_silence, white_noise, pink_noise, brown_noise, mains_hum, dc_offset, slow_drift, tone,
             beeps, alarm, ringtone, music_like, breathing, cough, fan, traffic, handling, rubbing, taps, typing,
             footsteps, ticking_clock, metronome, dripping_tap]
# The causes a refusal of each kind may rightly name (heartbeat.quality.CAUSES): what a clinician can act on.
# Sounds wholly above 1 kHz (beeps, ticks, typing) are silence in the heart band, and saying so is right; a
# steady noise with no beats in it (pink, brown) is rightly "no heart sounds, only a steady sound"; sounds
# mostly above 200 Hz (rubbing, breath, clicks, voices) rightly "above the heart-sound range"; any pitched
# sound (a voice, a melody, a tone or a sweep) rightly "pitched". Clicks are noise bursts, the metronome's and
# the clock's as the keyboard's. PASCAL's artifact class is, by its own description, "feedback squeals and
# echoes, speech, music and noise": a squeal is a tone. Debian's alerts are played once and followed by faint
# noise to 8 s (quality_gate.py), so most of each such recording is that noise, or no heart sound at all.
_NO_HEART, _NOISE, _VOICE, _TONE, _SILENCE = "no heart sounds", "noise", "a voice, music or a tone", "tone or hum", "silence"
_HIGH = "sound above the heart band"
# The silence rule reads the heart band's level alone (quality.SILENT_DBFS): when it fires, nothing audible was
# recorded where heart sounds live, whatever else the file holds (a faint cough, footsteps far off), and its advice
# (the chest piece firmly on the chest) is right for every kind: every kind's set holds it.
RIGHT_CAUSES = {kind: {_SILENCE, *causes} for kind, causes in {
    "silence": (), "near_silence": (), "white_noise": (_NOISE,), "pink_noise": (_NOISE, _NO_HEART),
    "brown_noise": (_NOISE, _NO_HEART), "mains_hum": (_TONE,), "dc_offset": (_NOISE,),
    "slow_drift": (_NOISE, _NO_HEART), "tone": (_TONE, _VOICE, _HIGH), "beeps": (_TONE, _VOICE, _HIGH),
    "alarm": (_TONE, _VOICE, _HIGH), "ringtone": (_TONE, _VOICE, _HIGH),
    "music_like": (_TONE, _VOICE, _HIGH), "breathing": (_NOISE, _NO_HEART, _HIGH),
    "cough": (_NOISE, _NO_HEART, _VOICE, _HIGH), "fan": (_NOISE, _TONE, _HIGH), "traffic": (_NOISE, _TONE, _NO_HEART),
    "handling": (_NOISE, _NO_HEART), "rubbing": (_NOISE, _NO_HEART, _HIGH), "taps": (_NO_HEART, _NOISE, _HIGH),
    "typing": (_NO_HEART, _NOISE, _HIGH), "footsteps": (_NO_HEART, _NOISE, _HIGH),
    "ticking_clock": (_NO_HEART, _NOISE, _HIGH), "metronome": (_NO_HEART, _NOISE, _HIGH),
    "dripping_tap": (_NO_HEART, _NOISE, _HIGH),
    "speech (espeak-ng, 16 voices)": (_VOICE, _HIGH), "Debian alert sounds (real)": (_TONE, _VOICE, _HIGH, _NOISE, _NO_HEART),
    "artifact (PASCAL set_a, real)": (_NOISE, _NO_HEART, _VOICE, _HIGH, _TONE),
}.items()}
# Background sounds a heart recording may carry and still be judged (mixed under real heart sounds).
BACKGROUNDS = [white_noise, pink_noise, brown_noise, mains_hum, breathing, fan, traffic, typing, rubbing, music_like]


def mixture(rng, s, kinds=None) -> tuple[np.ndarray, list[str]]:
    """Two non-heart kinds at once, at random relative levels; returns the audio and the kinds' names."""
    a, b = rng.choice(kinds or GENERATED[2:], 2, replace=False)
    x, y = a(rng, s), b(rng, s)
    mixed = x / (np.abs(x).max() + 1e-12) + 10 ** (rng.uniform(-20, 0) / 20) * y / (np.abs(y).max() + 1e-12)
    return _level(rng, mixed), [a.__name__, b.__name__]


SENTENCES = ["Please take a deep breath and hold it.", "The patient is resting quietly on the bed.",
             "Can you hear me? Tell me if it hurts.", "Twelve, thirteen, fourteen, fifteen, sixteen.",
             "This recording is for the clinic in the morning.", "Breathe in slowly, and now breathe out.",
             "Lie still for a moment, we are almost done.", "Where does it hurt, and since when?"]
VOICES = ["en", "en-us", "fr", "de", "es", "sw", "pt", "hi", "ar", "cmn", "ru", "it", "vi", "tr", "am", "yo"]


def speech(seed: int, seconds: float = 8.0) -> np.ndarray | None:
    """A sentence or two from espeak-ng (None when it is not installed), repeated to fill `seconds`, in
    one of many voices and languages, at a random speed, pitch and level."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    rng = np.random.default_rng(seed)
    import soundfile as sf
    import soxr
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "s.wav")
        text = " ".join(rng.choice(SENTENCES, 2, replace=False))
        cmd = [exe, "-v", VOICES[seed % len(VOICES)], "-s", str(rng.integers(120, 200)),
               "-p", str(rng.integers(20, 80)), "-w", str(out), text]
        if subprocess.run(cmd, capture_output=True).returncode != 0:   # a voice this espeak-ng lacks
            subprocess.run(cmd[:2] + ["en"] + cmd[3:], check=True, capture_output=True)
        x, sr = sf.read(out)
    return _level(rng, np.resize(soxr.resample(x, sr, SR), int(seconds * SR)))


def debian_sounds() -> list[Path]:
    """Bells, alarms and alerts of Debian's sound-theme-freedesktop, where installed."""
    return sorted(Path("/usr/share/sounds/freedesktop/stereo").glob("*.oga"))


# ------------------------------------------------------- over a heart recording ----

# What sounds over a heart recording in a clinic: the patient or the clinician speaking, the chest piece rubbed,
# handled or knocked, someone walking, a cough (the artifact windows' network names the same kinds).
OVERLAY_KINDS = ARTIFACT_KINDS
OVERLAY_RATIOS_DB = (-5, 0, 5, 10)   # heart sound over the artifact (the measures: fit_artifacts, evaluate --overlays)


def artifact(kind: str, seed: int, seconds: float) -> np.ndarray:
    """One artifact of OVERLAY_KINDS at SR, `seconds` long."""
    if kind == "speech":
        x = speech(seed, seconds)
        if x is None:
            raise RuntimeError("espeak-ng is needed for speech (apt install espeak-ng)")
        return x
    return globals()[kind](np.random.default_rng(seed), seconds)


def overlay(heart: np.ndarray, rate: int, kind: str, ratio_db: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(`heart` (at `rate`) with an artifact over a stretch of it, the scaled artifact alone). The stretch is
    30-60% of the recording (all of it one time in four); `ratio_db` is the heart sound over the artifact in
    the model's band (at SAMPLE_RATE: what the model hears), over that stretch."""
    rng = np.random.default_rng(seed)
    n = len(heart)
    length = n if rng.random() < 0.25 else int(n * rng.uniform(0.3, 0.6))
    start = int(rng.integers(0, n - length + 1))
    art = np.zeros(n, np.float32)
    piece = resample(artifact(kind, seed, length / rate + 0.1), SR, rate)[:length]
    piece = np.pad(piece, (0, length - len(piece)))
    fade = np.minimum(1, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.05 * rate))
    art[start:start + length] = piece * fade
    h2, a2 = (resample(v, rate, SAMPLE_RATE) for v in (heart, art)) if rate != SAMPLE_RATE else (heart, art)
    s, e = start * SAMPLE_RATE // rate, (start + length) * SAMPLE_RATE // rate
    gain = np.sqrt(np.mean(h2[s:e] ** 2) / (np.mean(a2[s:e] ** 2) + 1e-20) / 10 ** (ratio_db / 10))
    return (heart + gain * art).astype(np.float32), gain * art
