"""The dataset report on a small copy of the real layout."""
from __future__ import annotations

import shutil

from heartbeat.__main__ import main


def test_report_on_a_small_database(data_root, tmp_path):
    src = data_root / "physionet2016" / "training-c"
    dst = tmp_path / "data" / "physionet2016" / "training-c"
    dst.mkdir(parents=True)
    lines = (src / "REFERENCE.csv").read_text().splitlines()[:6]
    (dst / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    for line in lines:
        shutil.copy(src / f"{line.split(',')[0]}.flac", dst)
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "data"), "--out", str(out), "--model", "models/heartbeat"]) == 0
    text = (out / "report.md").read_text()
    assert (out / "labels.png").stat().st_size > 5000 and (out / "durations.png").stat().st_size > 5000
    assert "| training-c |" in text and "Quality gate" in text and "Scores of the given model" in text
    assert "6 recordings" in text
