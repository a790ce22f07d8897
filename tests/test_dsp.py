"""heartbeat.dsp gives scipy.signal's answers (it exists so that serving need not import scipy.signal), on
real recordings and on the shapes that break naive versions (flat peaks, odd lengths); the numpy Viterbi
gives the scalar loop's path; and serving imports neither scipy.signal, numba nor matplotlib."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage, signal
import scipy.fft

from conftest import need
from heartbeat import dsp

FILTERS = [(4, [25, 400], "bandpass", 2000), (4, 90, "highpass", 8000), (2, 8.0, "lowpass", 50),
           (4, (100, 200), "bandpass", 2000), (3, 150, "lowpass", 2000), (5, 30, "highpass", 4000)]


@pytest.fixture(scope="module")
def recordings(table):
    """(audio, rate): four real recordings at 2 kHz (two databases, two devices) and one at 8 kHz."""
    from heartbeat.audio import load_audio
    rows = table[table.database.isin(["training-a", "circor2022"])].groupby("database").head(2)
    return [(load_audio(p, 2000), 2000) for p in rows.path] + [(load_audio(rows.path.iloc[0], 8000), 8000)]


@pytest.mark.parametrize("order, cutoff, btype, fs", FILTERS)
def test_butterworth_sections_match_scipy(order, cutoff, btype, fs):
    ours = dsp.butter(order, cutoff, btype, fs)
    theirs = signal.butter(order, cutoff, btype, fs=fs, output="sos")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_filtering_matches_scipy_on_real_recordings(recordings):
    for x, rate in recordings:
        for order, cutoff, btype, _ in FILTERS[:2] + FILTERS[3:]:
            sos = signal.butter(order, cutoff, btype, fs=rate, output="sos")
            scale = np.abs(x).max()
            np.testing.assert_allclose(dsp.sosfiltfilt(sos, x), signal.sosfiltfilt(sos, x), atol=1e-9 * scale)
            np.testing.assert_allclose(dsp.sosfilt(sos, x), signal.sosfilt(sos, x), atol=1e-9 * scale)
    blocks = np.random.default_rng(0).standard_normal((3, 500))      # rows filtered alike, each from its own start
    sos = signal.butter(2, 8.0, "lowpass", fs=50, output="sos")
    np.testing.assert_allclose(dsp.sosfiltfilt(sos, blocks), signal.sosfiltfilt(sos, blocks), atol=1e-12)
    with pytest.raises(ValueError, match="padlen"):
        dsp.sosfiltfilt(sos, np.ones(9))


def test_peaks_envelope_median_and_spectrogram_match_scipy(recordings):
    rng = np.random.default_rng(1)
    plateaus = np.repeat(rng.integers(0, 5, 300), rng.integers(1, 4, 300)).astype(float)   # flat tops of 1-3 samples
    for x in [plateaus, rng.standard_normal(1001), np.array([1.0, 2, 2, 1, 3, 3]), np.zeros(5)]:
        np.testing.assert_array_equal(dsp.find_peaks(x), signal.find_peaks(x)[0])
        np.testing.assert_array_equal(dsp.find_peaks(x, height=1.5), signal.find_peaks(x, height=1.5)[0])
    for n in [1, 7, 1000, 60_001, 240_007, 1_000_003]:
        assert dsp.next_fast_len(n) == scipy.fft.next_fast_len(n)
    for x, _ in recordings[:3]:
        n = scipy.fft.next_fast_len(len(x))
        np.testing.assert_allclose(dsp.analytic_envelope(x, n), np.abs(signal.hilbert(x, N=n)),
                                   atol=1e-5 * np.abs(x).max())
        spectrum = np.abs(np.fft.rfft(x[:4096])) + rng.random(2049)
        np.testing.assert_array_equal(dsp.median_filter(spectrum, 21), ndimage.median_filter(spectrum, 21, mode="nearest"))
        ours, theirs = dsp.spectrogram(x, 2000, 128, 112), signal.spectrogram(x.astype(float), 2000, nperseg=128, noverlap=112)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12 * b.max())


def scalar_viterbi(emit, stay, one, skip):
    """The segmenter's Viterbi as a plain loop over frames and phases (what numba compiled before)."""
    n, k = emit.shape
    score, back = emit[0].copy(), np.zeros((n, k), int)
    for t in range(1, n):
        new = np.empty(k)
        for j in range(k):
            best, step = score[j] + stay[j], 0
            for s, cost in ((1, one), (2, skip)):
                c = score[j - s] + cost[j - s]
                if c > best:
                    best, step = c, s
            new[j], back[t, j] = best + emit[t, j], step
        score = new
    path = [int(np.argmax(score))]
    for t in range(n - 1, 0, -1):
        path.append((path[-1] - back[t, path[-1]]) % k)
    return np.array(path[::-1]), score.max()


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_viterbi_finds_the_scalar_loops_path(model, recordings, compiled, monkeypatch):
    """On real recordings: every candidate period's ring run alone through the scalar loop; the batched pass,
    compiled (_viterbi.c) and in numpy (where no C compiler built it), picks the same best period, the same
    states frame by frame and the same score, bit for bit."""
    from heartbeat import beats
    if compiled:
        need(beats._viterbi is not None, "the compiled Viterbi (heartbeat/_viterbi.c; pip needs a C compiler)")
    monkeypatch.setattr(beats, "COMPILED", compiled)
    seg = model.segmenter
    for x, _ in recordings[:4]:
        probs = seg.state_probs(x[: 20 * 2000], 2000)
        log_p = np.log(probs + 1e-6) - np.log(np.asarray(seg.prior) + 1e-6)
        periods = [47.3, 61.0, 61.2, 30.6]
        runs = []
        for p in periods:
            phase, stay, one, skip = beats.cycle(p, seg)
            path, best = scalar_viterbi(log_p[:, phase], stay, one, skip)
            runs.append((phase[path], best))
        states, best = max(runs, key=lambda r: r[1])
        ours = beats.best_cycle(log_p, periods, seg)
        np.testing.assert_array_equal(ours[0], states)
        assert ours[1] == best


def test_compiled_and_numpy_viterbi_agree_on_every_kind_of_recording(model, table, monkeypatch):
    """The whole beat finder, compiled pass against numpy pass, on real recordings of all nine databases:
    the same states, S1 and S2 times, fit and heart rate."""
    from heartbeat import beats
    from heartbeat.audio import load_audio
    from heartbeat.frontend import prepare
    need(beats._viterbi is not None, "the compiled Viterbi (heartbeat/_viterbi.c; pip needs a C compiler)")
    cfg, seg = model.features, model.segmenter
    for _, group in table.groupby("database"):
        for path in group["path"].iloc[:2]:
            cleaned = prepare(load_audio(path, 8000), cfg, None).cleaned
            monkeypatch.setattr(beats, "COMPILED", True)
            found = beats.find_beats(cleaned, cfg.sample_rate, seg)
            monkeypatch.setattr(beats, "COMPILED", False)
            again = beats.find_beats(cleaned, cfg.sample_rate, seg)
            assert (found.states is None) == (again.states is None)
            if found.states is not None:
                np.testing.assert_array_equal(found.states, again.states)
            assert (found.s1_times, found.s2_times, found.cycle_fit, found.contrast_db, found.heart_rate_bpm) == \
                (again.s1_times, again.s2_times, again.cycle_fit, again.contrast_db, again.heart_rate_bpm)


def test_transforms_match_numpys_on_real_recordings(recordings):
    # scipy.fft's pocketfft in place of numpy's: the same transforms, to the input's precision, of frames
    # (many short rows, as the segmenter, the gate and the features take them) and of whole recordings.
    for x, _ in recordings:
        frames = np.lib.stride_tricks.sliding_window_view(x, 80)[::40]
        for data, n, axis in [(frames, None, 1), (frames, 160, 1), (frames.T, 96, 0), (x, None, -1), (x, 70_000, -1),
                              (x.astype(np.float64), 65_536, -1)]:
            ours, theirs = dsp.rfft(data, n, axis=axis), np.fft.rfft(data, n, axis=axis)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(ours, theirs, atol=(1e-12 if data.dtype == np.float64 else 1e-6) * scale)
            length = n or data.shape[axis]
            power = np.abs(theirs) ** 2      # a real spectrum too, as the autocorrelations hand it over
            for spectrum in (theirs, power):
                back, expected = dsp.irfft(spectrum, length, axis=axis), np.fft.irfft(spectrum, length, axis=axis)
                assert back.dtype == expected.dtype
                np.testing.assert_allclose(back, expected, atol=1e-6 * np.abs(expected).max())


def test_serving_imports_no_scipy_signal_numba_or_matplotlib(model):
    """The app's process after its first answer and both pictures: the heavy libraries stay out."""
    code = ("import sys\nfrom heartbeat.serve.page import warm_up\nfrom heartbeat import load_model\n"
            "warm_up(load_model())\n"
            "heavy = ('numba', 'matplotlib', 'llvmlite', 'scipy.signal', 'scipy.fft', 'scipy.stats', 'scipy.special',"
            " 'scipy.linalg', 'scipy.ndimage', 'scipy.optimize', 'scipy.sparse')\n"
            "alone = ('scipy.signal._sosfilt', 'scipy.fft._pocketfft.pypocketfft')\n"   # compiled modules, loaded alone
            "print(' '.join(sorted(m for m in sys.modules if m not in alone"
            " and any(m == h or m.startswith(h + '.') for h in heavy))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [], out.stdout
