"""The web app through its API (gradio_client), its tunnel (a stand-in ngrok agent), and a real browser."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import encode, need, write

ROOT = Path(__file__).resolve().parents[1]
AUTH = ("nurse", "correct-horse-battery")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` on a free port; stopped by its own PID."""

    def __init__(self, tmp: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / f"server-{self.port}.log"
        full_env = os.environ | {"TMPDIR": str(tmp)} | (env or {})
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port), *args],
                                     cwd=ROOT, env=full_env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while "is ready on" not in self.log.read_text():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"app did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory):
    return tmp_path_factory.mktemp("app")


@pytest.fixture(scope="module")
def server(tmp_module):
    s = Server(tmp_module, env={"HEARTBEAT_AUTH": ":".join(AUTH)})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server.url, auth=AUTH, verbose=False)


@pytest.fixture(scope="module")
def recordings(tmp_module, ffmpeg, data_root):
    """A real heart recording as wav, m4a (iPhone) and webm (browser)."""
    import soundfile as sf
    src = data_root / "physionet2016" / "training-a" / "a0001.flac"
    x, sr = sf.read(src)
    wav = write(tmp_module / "heart.wav", x[: 20 * sr], sr)
    return {"wav": wav, "m4a": encode(ffmpeg, wav, tmp_module / "heart.m4a", "-c:a", "aac"),
            "webm": encode(ffmpeg, wav, tmp_module / "heart.webm", "-c:a", "libopus")}


def ask(client, path):
    from gradio_client import handle_file
    return client.predict(handle_file(str(path)), api_name="/predict")


def label_of(out) -> str:
    return (out[0] or {}).get("label", "")


@pytest.mark.parametrize("fmt", ["wav", "m4a", "webm"])
def test_round_trip(client, recordings, fmt):
    out = ask(client, recordings[fmt])
    assert label_of(out) in ("Normal", "Abnormal: refer"), out[1]
    assert "Heart rate" in out[1]


def test_bad_file_gets_a_message_not_a_traceback(client, tmp_module):
    bad = tmp_module / "notes.wav"
    bad.write_text("not audio at all\n" * 20)
    out = ask(client, bad)
    assert not out[0] and "Could not judge" in out[1] and "Traceback" not in out[1]


def test_silence_says_no_heartbeat(client, tmp_module):
    out = ask(client, write(tmp_module / "quiet.wav", np.zeros(8000 * 10), 8000))
    assert label_of(out) == "No heartbeat heard" and "silent" in out[1]


def test_login_is_enforced(server):
    from gradio_client import Client
    with pytest.raises(Exception):
        Client(server.url, verbose=False)
    import urllib.request
    import urllib.error
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "gradio_api/info")
    assert err.value.code in (401, 403)


def test_oversize_upload_is_rejected(client, tmp_module):
    big = tmp_module / "big.wav"
    write(big, np.zeros(4_000_000 * 2), 44100, subtype="PCM_24")   # ~24 MB of samples + header > 25 MB?
    with big.open("ab") as f:
        f.write(bytes(3 * 2**20))
    assert big.stat().st_size > 25 * 2**20
    with pytest.raises(Exception) as err:
        ask(client, big)
    assert "413" in str(err.value) or "large" in str(err.value).lower() or "size" in str(err.value).lower()


def test_eight_concurrent_requests(client, recordings):
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: ask(client, recordings["wav"]), range(8)))
    assert all(label_of(o) in ("Normal", "Abnormal: refer") for o in outs), [o[1] for o in outs]


def _uploads(server) -> dict[int, str]:
    """Files in the server's upload folders, inode -> name. By inode, because Gradio writes an upload under a
    temporary name and then renames it into its own folder: a walk that lists the top folder before the rename
    and the new folder after it meets the same file twice (a count of 4 with 3 clients, once in CI). Folders
    vanish while it looks: what cannot be read is skipped."""
    found = {}

    def scan(folder, inside):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    scan(entry.path, inside or "heartbeat-uploads-" in entry.name)
                elif inside:
                    found[entry.inode()] = entry.name
            except OSError:
                pass
    scan(server.log.parent, False)
    return found


def test_answered_recordings_leave_the_disk_at_once_under_load(server, recordings, tmp_module):
    """Three clients send ten distinct recordings each, back to back, while the server's upload folder is
    watched every 10 ms: it never holds more recordings than requests in flight (one per client), and it
    is empty the moment the last answer is back, though the queue was never idle in between. A fixed
    number of requests, not a time window: how many fit in 20 s is the machine's speed, not custody
    (throughput figures live in scripts/bench_app.py)."""
    import soundfile as sf
    from gradio_client import Client
    x, sr = sf.read(recordings["wav"])
    copies = [write(tmp_module / f"load-{i}.wav", x * (0.5 + i / 400), sr) for i in range(30)]  # distinct bytes
    seen, answers, done = [], [], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(len(_uploads(server)))
            time.sleep(0.01)

    def send(k):
        # Each sender is its own client, as three clinicians are: one gradio_client.Client shared by three threads
        # shares one event stream, and its own bookkeeping once cancelled a pending answer (CancelledError in CI).
        own = Client(server.url, auth=AUTH, verbose=False)
        for i in range(k, len(copies), 3):
            answers.append(label_of(ask(own, copies[i])))

    with ThreadPoolExecutor(4) as pool:
        watcher = pool.submit(watch)
        try:     # a request that raises must fail the test, not leave the watcher running and the pool waiting on it
            for f in [pool.submit(send, k) for k in range(3)]:
                f.result()
            left = _uploads(server)
        finally:
            done.set()
        watcher.result()
    assert len(answers) == 30 and set(answers) <= {"Normal", "Abnormal: refer"}, (len(answers), set(answers))
    assert len(seen) > 10 and max(seen) <= 3, (len(seen), max(seen))
    assert not left, left


def test_identical_uploads_at_once_are_all_answered_and_not_kept(server, client, recordings):
    """Identical bytes share one upload path; the first request deletes the file, the others are served
    from memory, and nothing stays behind."""
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda _: ask(client, recordings["webm"]), range(6)))
    assert all(label_of(o) in ("Normal", "Abnormal: refer") for o in outs), [o[1] for o in outs]
    assert not _uploads(server)


# ------------------------------------------------------------------ tunnel ----

def fake_agent(tmp: Path) -> Path:
    agent = tmp / "ngrok"
    agent.write_text(f"#!{sys.executable}\n" + (ROOT / "tests" / "fake_ngrok.py").read_text())
    agent.chmod(0o755)
    return agent


def test_share_opens_a_tunnel_with_login_and_closes_it(tmp_path):
    calls = tmp_path / "ngrok-calls.jsonl"
    env = {"PYNGROK_NGROK_PATH": str(fake_agent(tmp_path)), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "NGROK_AUTHTOKEN": "test-token", "FAKE_NGROK_LOG": str(calls), "HEARTBEAT_AUTH": ":".join(AUTH)}
    s = Server(tmp_path, "--share", env=env)
    deadline = time.time() + 30
    while "Public HTTPS link: https://" not in s.output() and time.time() < deadline:
        time.sleep(0.2)
    assert "Public HTTPS link: https://" in s.output(), s.output()
    s.stop()
    requests = [json.loads(line) for line in calls.read_text().splitlines()]
    start = next(r for r in requests if r["method"] == "START")
    assert "test-token" in start["args"]
    post = next(r for r in requests if r["method"] == "POST")
    assert post["body"]["upstream"]["url"].endswith(f":{s.port}")
    policy = json.loads(post["body"]["traffic_policy"])
    action = policy["on_http_request"][0]["actions"][0]
    assert action["type"] == "basic-auth" and action["config"]["credentials"] == [":".join(AUTH)]
    assert any(r["method"] == "DELETE" for r in requests), "tunnel not closed on exit"


def test_share_without_credentials_generates_a_password(tmp_path):
    env = {"PYNGROK_NGROK_PATH": str(fake_agent(tmp_path)), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "NGROK_AUTHTOKEN": "test-token", "FAKE_NGROK_LOG": str(tmp_path / "calls.jsonl"), "HEARTBEAT_AUTH": ""}
    s = Server(tmp_path, "--share", env=env)
    s.stop()
    line = next(l for l in s.output().splitlines() if "Public link login" in l)
    password = line.split("password '")[1].split("'")[0]
    assert len(password) >= 16


def test_missing_agent_says_so_and_keeps_serving(tmp_path):
    env = {"PYNGROK_NGROK_PATH": str(tmp_path / "no-such-ngrok"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "NGROK_AUTHTOKEN": "test-token", "HEARTBEAT_AUTH": ":".join(AUTH)}
    s = Server(tmp_path, "--share", env=env)
    try:
        deadline = time.time() + 30
        while "Not sharing" not in s.output() and time.time() < deadline:
            time.sleep(0.2)
        assert "Not sharing: the ngrok agent could not start" in s.output()
        from gradio_client import Client
        out = Client(s.url, auth=AUTH, verbose=False).predict(None, api_name="/predict")
        assert "Record or upload" in out[1]
    finally:
        s.stop()


def test_missing_token_says_so(tmp_path):
    s = Server(tmp_path, "--share", env={"NGROK_AUTHTOKEN": "", "HEARTBEAT_AUTH": ":".join(AUTH)})
    s.stop()
    assert "NGROK_AUTHTOKEN is not set" in s.output()


# ------------------------------------------------------------------ a real browser ----

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


def _answer_on_page(page) -> tuple[str, float]:
    """The page's headline and its chance of abnormal (from the words under it)."""
    import re
    label = page.locator('[data-testid="label-output-value"]').inner_text()
    chance = re.search(r"Chance the heart sound is abnormal: ([0-9.]+)%", page.locator("body").inner_text())
    return label, float(chance.group(1)) / 100


def test_browser_upload_and_microphone(server, data_root, tmp_module):
    need(CHROMIUM.exists(), "Debian's chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright
    import soundfile as sf
    import soxr
    x, sr = sf.read(data_root / "physionet2016" / "training-a" / "a0007.flac")
    mic = tmp_module / "fake-mic.wav"   # Chromium plays this file as the microphone
    sf.write(mic, soxr.resample(x[: 12 * sr], sr, 44100) * 0.8, 44100, subtype="PCM_16")
    ARTIFACTS.mkdir(exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={mic}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=flags)
        try:
            # A phone's viewport (iPhone 12-15: 390 x 844 CSS pixels): clinicians open the shared link on one.
            page = browser.new_context(permissions=["microphone"], viewport={"width": 390, "height": 844},
                                       device_scale_factor=2, is_mobile=True, has_touch=True).new_page()
            page.goto(server.url)
            page.locator("input[type=text]").fill(AUTH[0])
            page.locator("input[type=password]").fill(AUTH[1])
            page.get_by_role("button", name="Login").click()
            page.wait_for_selector("input[type=file]", state="attached", timeout=30000)

            # upload a real recording
            page.set_input_files("input[type=file]", str(data_root / "physionet2016" / "training-a" / "a0001.flac"))
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Check this heart sound").click()
            answer = page.locator('[data-testid="label-output-value"]')
            answer.wait_for(timeout=30000)
            assert answer.inner_text() in ("Normal", "Abnormal: refer")
            page.wait_for_timeout(500)
            no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
            assert page.evaluate(no_sideways), page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(ARTIFACTS / "browser-upload.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})       # the same answer on a desktop
            page.screenshot(path=str(ARTIFACTS / "browser-desktop.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})

            # the referral sheet: a PDF inside the page
            page.get_by_placeholder("printed on the referral sheet only; never stored").fill("Bed 4")
            page.get_by_role("button", name="Download referral sheet").click()
            link = page.get_by_role("link", name="Save the referral sheet")
            link.wait_for(timeout=30000)
            assert link.get_attribute("href").startswith("data:application/pdf;base64,")
            assert link.get_attribute("download") == "referral-sheet.pdf"
            assert page.evaluate(no_sideways)
            page.screenshot(path=str(ARTIFACTS / "browser-referral.png"), full_page=True)

            # the recording that will play as the microphone, uploaded: the reference answer
            page.get_by_role("button", name="Clear").first.click()
            page.set_input_files("input[type=file]", str(mic))
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Check this heart sound").click()
            page.wait_for_function("() => document.body.innerText.includes('12 s analysed')", timeout=30000)
            uploaded = _answer_on_page(page)

            # record it through the (fake) microphone
            page.get_by_role("button", name="Clear").first.click()
            page.get_by_role("button", name="Record audio").click()
            page.get_by_role("button", name="Record", exact=True).click()
            page.wait_for_timeout(10000)
            page.get_by_role("button", name="Stop").first.click()
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Check this heart sound").click()
            # The upload's answer said "12 s analysed": wait for the new answer, not the old one.
            page.wait_for_function("""() => { const t = document.body.innerText;
                return !t.includes('processing') && !t.includes('12 s analysed') &&
                       (t.includes('s analysed') || t.includes('No usable heart sound') || t.includes('Could not judge')); }""",
                                   timeout=30000)
            text = page.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "browser-microphone.png"), full_page=True)
            assert "Could not judge" not in text, text[:500]
            assert page.evaluate(no_sideways)
            # The browser was asked for raw audio, and granted it (speech processing off) ...
            granted = page.evaluate("window.heartbeatMicrophone")
            assert granted and not any(granted.get(k) for k in ("echoCancellation", "noiseSuppression",
                                                                 "autoGainControl")), granted
            # ... and the heart sound through the microphone gets the upload's answer.
            recorded = _answer_on_page(page)
            assert recorded[0] == uploaded[0] and abs(recorded[1] - uploaded[1]) <= 0.05, (uploaded, recorded)
        finally:
            browser.close()
    assert not _uploads(server)                  # deleted as each request started


def test_json_api_gives_the_whole_result(client, recordings, tmp_module):
    from gradio_client import handle_file
    out = client.predict(handle_file(str(recordings["m4a"])), api_name="/classify")
    assert out["label"] in ("normal", "abnormal") and 0 <= out["p_abnormal"] <= 1 and out["windows"]
    bad = tmp_module / "empty.wav"
    bad.write_bytes(b"")
    assert "empty" in client.predict(handle_file(str(bad)), api_name="/classify")["error"]


def test_headline_is_the_decision_on_both_sides_of_the_cut(tmp_module, recordings):
    """Near the referral cut the headline once said "Normal" (the larger of two bars) above the words
    "Abnormal: refer". Two servers whose bundles differ only in the cut, just below and just above this
    recording's p_abnormal, asked through the page's own endpoint: the headline is the decision, its
    confidence is the confidence in that decision, and the text says the same."""
    import shutil
    from gradio_client import Client
    from heartbeat.model import DEFAULT_MODEL_DIR, load_model
    from heartbeat.predict import classify, read
    model = load_model()
    p = classify(read(recordings["wav"], model), model).p_abnormal
    assert 0.02 < p < 0.98
    for cut, decision, confidence in ((p - 0.005, "Abnormal: refer", p), (p + 0.005, "Normal", 1 - p)):
        bundle = tmp_module / f"cut-{cut:.4f}"
        shutil.copytree(DEFAULT_MODEL_DIR, bundle)
        meta = json.loads((bundle / "bundle.json").read_text())
        (bundle / "bundle.json").write_text(json.dumps(meta | {"threshold": cut}))
        s = Server(tmp_module, "--model", str(bundle), env={"HEARTBEAT_AUTH": ":".join(AUTH)})
        try:
            out = ask(Client(s.url, auth=AUTH, verbose=False), recordings["wav"])
        finally:
            s.stop()
        headline, text = out[0], out[1]
        assert headline["label"] == decision, (cut, p, headline)
        assert [c["label"] for c in headline["confidences"]] == [decision]
        assert abs(headline["confidences"][0]["confidence"] - confidence) < 0.002
        assert decision not in text and text.startswith("- Chance the heart sound is abnormal")   # said once, above
        assert ("at or above the referral cut" in text) == (decision != "Normal"), text


def test_the_picture_is_the_heart_band_with_systole_marked(model, table):
    """The page's second picture: the 20-600 Hz band of the first 8 s, and one systole bar for each S1
    there that has its S2 (a murmur shows as energy in or between those bars)."""
    import shutil
    from heartbeat.frontend import prepare
    from heartbeat.predict import decide, read
    from heartbeat.serve import figures, page
    from heartbeat.serve.custody import Custody
    from heartbeat.serve.process import UPLOAD_DIR
    row = table[(table.database == "circor2022") & (table.label == "abnormal")].iloc[3]
    upload = UPLOAD_DIR / "murmur.flac"
    shutil.copy(row.path, upload)
    custody = Custody(UPLOAD_DIR)
    out = page.answer(str(upload), model, custody)
    assert not upload.exists() and custody.in_flight == 0     # read, deleted, then judged
    assert out[3].plot.startswith("data:image/png;base64,")     # rendered once, as it is drawn below
    prepared = prepare(read(row.path, model), model.features, model.segmenter)
    result = decide(prepared, model)
    picture = figures.spectrogram_figure(prepared, result)
    strip, spectrum = picture.panels
    assert spectrum.y_range == (20, 600) and spectrum.x_range[1] <= 8.0
    systoles = [s1 for s1 in result.s1_times if s1 < 8 and any(s1 < s2 < s1 + 0.6 for s2 in result.s2_times)]
    # one bar per systole (a murmur heard in diastole adds shading between the bars: not counted here)
    bars = [span for span in strip.spans if span[2] == "systole" and any(abs(span[0] - s1) < 1e-9 for s1 in systoles)]
    assert len(systoles) >= 5 and len(bars) == len(systoles)
    # and drawn: each bar's middle is coloured in the strip, the middle of the gap after it is left white
    middle_row = (strip.box[1] + strip.box[3]) // 2
    for start, end, _ in bars:
        assert picture.pixels[middle_row, int(strip.column((start + end) / 2))].min() < 200
    gap = (bars[0][1] + bars[1][0]) / 2
    assert (picture.pixels[middle_row, int(strip.column(gap))] == 255).all() or result.murmur_timing


def test_referral_sheet_is_a_one_page_pdf_made_in_memory(server, client, recordings):
    """Through the page's endpoints in one session: judge a recording, then ask for the sheet with a
    patient reference. The PDF comes inside the page (nothing to fetch from the server, nothing written to
    its disk) and says the answer, its confidence, heart rate, quality, the reference and the disclaimer."""
    import base64
    import io
    import re
    from gradio_client import Client
    from pypdf import PdfReader
    session = Client(server.url, auth=AUTH, verbose=False)
    before = set(_uploads(server).values())
    out = ask(session, recordings["wav"])
    html = session.predict("Bed 4 / clinic ref A-117", api_name="/referral")
    pdf = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1))
    pages = PdfReader(io.BytesIO(pdf)).pages
    text = " ".join(pages[0].extract_text().split())
    assert len(pages) == 1
    decision = label_of(out)
    assert f"Answer: {decision} (confidence" in text, text
    assert "Bed 4 / clinic ref A-117" in text and "Heart rate:" in text and "Recording quality:" in text
    assert "Screening aid, not a diagnosis" in text and "Date and time: 20" in text
    assert set(_uploads(server).values()) <= before          # the sheet left nothing on disk
    fresh = Client(server.url, auth=AUTH, verbose=False)     # another session has no answer to print
    assert "Check a heart sound first" in fresh.predict("", api_name="/referral")


def test_upload_sweeper_survives_a_failing_pass(monkeypatch):
    """The sweeper once died on a folder deleted while it listed it, and then nothing was swept or freed
    until a restart. A pass that raises must leave it sweeping: a stale upload made after the failure is
    still removed."""
    import threading
    from heartbeat.serve import custody as C
    from heartbeat.serve.process import UPLOAD_DIR

    class Failing(C.Custody):
        calls = 0

        def idle(self):
            Failing.calls += 1
            if Failing.calls == 1:
                raise FileNotFoundError("a folder vanished while it was listed")
            return super().idle()

    monkeypatch.setattr(C, "STALE_S", 0.0)
    threading.Thread(target=Failing(UPLOAD_DIR).sweep_forever, args=(0.02,), daemon=True).start()
    deadline = time.time() + 5
    while Failing.calls < 2 and time.time() < deadline:
        time.sleep(0.01)
    stale = UPLOAD_DIR / "abandoned" / "recording.wav"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"RIFF")
    while stale.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert Failing.calls >= 2 and not stale.exists()


def test_custody_reads_only_its_own_folder_and_counts_what_is_in_flight(tmp_path):
    """What upload custody relies on, pinned: Gradio hands the handler a path inside GRADIO_TEMP_DIR (our
    folder: checked end to end by the round-trip tests, which fail if an upload lands elsewhere); a path
    outside it is never read; every take is balanced by done; identical bytes taken twice are served from
    memory, and dropped once nothing is in flight."""
    from heartbeat.serve import custody as C
    from heartbeat.serve.process import UPLOAD_DIR
    assert os.environ["GRADIO_TEMP_DIR"] == str(UPLOAD_DIR)
    keeper = C.Custody(UPLOAD_DIR)
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF....")
    assert keeper.take(str(outside)) is None and outside.exists()
    keeper.done()
    inside = UPLOAD_DIR / "hash123" / "same.wav"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(b"RIFF-bytes")
    assert keeper.take(str(inside)) == b"RIFF-bytes" and not inside.exists() and not inside.parent.exists()
    assert keeper.take(str(inside)) == b"RIFF-bytes" and keeper.in_flight == 2   # the twin, from memory
    keeper.done()
    keeper.done()
    assert keeper.in_flight == 0 and not keeper.idle()        # just finished: a queued twin may still come
    keeper.sweep_once()
    assert keeper.take(str(inside)) == b"RIFF-bytes"
    keeper.done()
    keeper.last_activity -= C.GRACE_S + 1                      # quiet for GRACE_S: the copy is dropped
    assert keeper.idle()
    keeper.sweep_once()
    assert keeper.take(str(inside)) is None
    keeper.done()
