"""The PhysioNet downloader against a local HTTP server on 127.0.0.1 serving a small zip."""
from __future__ import annotations

import functools
import hashlib
import threading
import zipfile
from http.server import HTTPServer, SimpleHTTPRequestHandler

import numpy as np
import pytest

import download_physionet2016 as dl
from conftest import write


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    src = tmp_path / "src" / "training" / "training-z"
    src.mkdir(parents=True)
    write(src / "z0001.wav", np.zeros(8000), 2000, subtype="PCM_16")
    (src / "REFERENCE.csv").write_text("z0001,-1\n")
    with zipfile.ZipFile(root / "training.zip", "w") as z:
        for f in src.iterdir():
            z.write(f, f"training/training-z/{f.name}")
    sha = hashlib.sha256((root / "training.zip").read_bytes()).hexdigest()
    (root / "SHA256SUMS.txt").write_text(f"{'0' * 64} other.zip\n{sha} training.zip\n")
    handler = functools.partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                                directory=str(root))
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()


def test_download_verifies_and_unpacks(site, tmp_path):
    url, _ = site
    assert dl.main(["--dest", str(tmp_path / "out"), "--base-url", url]) == 0
    assert (tmp_path / "out" / "training-z" / "REFERENCE.csv").read_text() == "z0001,-1\n"
    assert not (tmp_path / "out" / "training.zip").exists()


def test_checksum_mismatch_is_refused(site, tmp_path):
    url, _ = site
    assert dl.main(["--dest", str(tmp_path / "out"), "--base-url", url, "--sha256", "ab" * 32]) == 1
    assert not (tmp_path / "out" / "training.zip").exists() and not (tmp_path / "out" / "training-z").exists()


def test_unreachable_server_fails_cleanly(tmp_path):
    assert dl.main(["--dest", str(tmp_path / "out"), "--base-url", "http://127.0.0.1:9/"]) == 1
