"""The product as a user gets it: a wheel installed into a clean virtualenv and used from another folder,
and the serving image built from the repository and answering a real recording."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import need

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _classify(port: int, path: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> dict:
    """Wait for the app on `port` (while `proc` lives), then ask /classify for `path`."""
    from gradio_client import Client, handle_file
    deadline = time.time() + timeout
    while "is ready on" not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    return Client(f"http://127.0.0.1:{port}/", verbose=False).predict(handle_file(path), api_name="/classify")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def recording(table) -> str:
    return table[(table.database == "circor2022") & (table.label == "abnormal")]["path"].iloc[0]


def test_wheel_in_a_clean_virtualenv_predicts_and_serves_from_another_folder(tmp_path, recording, model):
    """`pip install dist/*.whl` (with the app's extra) into a fresh virtualenv; from a folder that holds no
    source: `python -m heartbeat predict` gives the checkout's answer, and the app answers /classify."""
    from heartbeat.predict import judge
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("heartbeat-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"heartbeat/bundled/model.tflite", "heartbeat/bundled/bundle.json", "heartbeat/bundled/segmenter.json",
            "heartbeat/bundled/quality.json", "heartbeat/serve/page.py"} <= set(names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", f"{wheel}[app]"], check=True, timeout=1800)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HEARTBEAT_MODEL")} | {
        "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    where = subprocess.run([py, "-c", "import heartbeat; print(heartbeat.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where
    out = subprocess.run([py, "-m", "heartbeat", "predict", "--json", recording], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.strip().splitlines()[-1])
    expected = judge(recording, model).row()
    assert row["label"] == expected["label"] and abs(row["p_abnormal"] - expected["p_abnormal"]) < 1e-3, (row, expected)

    port, log = _free_port(), tmp_path / "app.log"
    proc = subprocess.Popen([py, "-m", "heartbeat", "serve", "--port", str(port)], cwd=elsewhere, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        answer = _classify(port, recording, proc, log)
    finally:
        _stop(proc)
    assert answer["label"] == expected["label"] and abs(answer["p_abnormal"] - expected["p_abnormal"]) < 1e-3


IMAGE_LIMIT_BYTES = 1.2e9


def test_image_builds_runs_as_a_user_and_answers_a_real_recording(tmp_path, recording, model):
    """`BASE=debian-local make image` (no registry here: a Debian base from Debian's packages), then the
    image's own command run in a container: it serves as a non-root user and answers /classify."""
    need(shutil.which("buildah") is not None and shutil.which("debootstrap") is not None, "buildah and debootstrap")
    from heartbeat.predict import judge
    image = "localhost/heartbeat-test"
    build = subprocess.run(["bash", str(ROOT / "scripts" / "build_image.sh")], cwd=ROOT, capture_output=True,
                           text=True, env=os.environ | {"BASE": "debian-local", "IMAGE": image}, timeout=3000)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    info = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", image], capture_output=True,
                                     text=True, check=True).stdout)
    config = info["OCIv1"]["config"]
    assert config["User"] == "clinic" and config["Cmd"][:2] == ["python", "app.py"]
    sizes = subprocess.run(["buildah", "images", "--format", "{{.Size}}", image], capture_output=True, text=True,
                           check=True).stdout.split("\n")[0]
    print(f"image size: {sizes}")
    number, unit = float(sizes.split()[0]), sizes.split()[1].upper()
    assert number * {"KB": 1e3, "MB": 1e6, "GB": 1e9}[unit] <= IMAGE_LIMIT_BYTES, sizes

    container = subprocess.run(["buildah", "from", image], capture_output=True, text=True, check=True).stdout.strip()
    port, log = _free_port(), tmp_path / "image.log"
    shutil.copy(recording, tmp_path / Path(recording).name)
    # The image's own command, on a free port: chroot isolation shares this machine's network.
    proc = subprocess.Popen(["buildah", "run", "--isolation", "chroot", container, "--", "python", "app.py",
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        answer = _classify(port, recording, proc, log, timeout=300)
        whoami = subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", "id", "-un"],
                                capture_output=True, text=True, check=True).stdout.strip()
    finally:
        _stop(proc)
        subprocess.run(["buildah", "rm", container], capture_output=True)
    expected = judge(recording, model).row()
    assert whoami == "clinic"
    assert answer["label"] == expected["label"] and abs(answer["p_abnormal"] - expected["p_abnormal"]) < 1e-3
