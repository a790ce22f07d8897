"""Download the PhysioNet/CinC Challenge 2016 training set, verify it, and unpack it.

    python scripts/download_physionet2016.py --dest ~/data/physionet2016 [--base-url URL]

Fetches training.zip with a progress bar, checks its SHA-256 against the publisher's SHA256SUMS.txt
(or --sha256), and unpacks training-a .. training-f. Point HEARTBEAT_DATA at the parent folder afterwards.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

BASE_URL = "https://physionet.org/files/challenge-2016/1.0.0/"
ARCHIVE = "training.zip"


def expected_sha256(base_url: str, name: str = ARCHIVE) -> str:
    """The archive's line in the publisher's SHA256SUMS.txt ('<hash> <path>' per line)."""
    with urllib.request.urlopen(base_url + "SHA256SUMS.txt", timeout=60) as response:
        for line in response.read().decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*./") == name:
                return parts[0].lower()
    raise RuntimeError(f"{name} is not listed in {base_url}SHA256SUMS.txt")


def download(url: str, dest: Path) -> str:
    """Stream `url` to `dest` with a progress bar; returns the SHA-256 of what was written."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out, \
            tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                 desc=dest.name) as bar:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def fetch(dest: Path, base_url: str = BASE_URL, sha256: str | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    want = (sha256 or expected_sha256(base_url)).lower()
    archive = dest / ARCHIVE
    got = download(base_url + ARCHIVE, archive)
    if got != want:
        archive.unlink()
        raise RuntimeError(f"checksum mismatch for {ARCHIVE}: expected {want}, got {got}; the download was deleted")
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():   # refuse paths that would escape dest
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise RuntimeError(f"unsafe path in archive: {member}")
        z.extractall(dest)
    archive.unlink()
    inner = dest / "training"          # the publisher's zip holds training/training-?/
    if inner.is_dir():
        for folder in inner.iterdir():
            folder.rename(dest / folder.name)
        inner.rmdir()
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--base-url", default=BASE_URL)
    parser.add_argument("--sha256", help="expected SHA-256 of training.zip (default: from SHA256SUMS.txt)")
    args = parser.parse_args(argv)
    try:
        out = fetch(args.dest.expanduser(), args.base_url if args.base_url.endswith("/") else args.base_url + "/",
                    args.sha256)
    except (OSError, RuntimeError) as e:
        print(f"download failed: {e}", file=sys.stderr)
        return 1
    print(f"PhysioNet 2016 training set in {out}; set HEARTBEAT_DATA={out.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
