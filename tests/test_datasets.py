"""The real databases: exact counts and labels, and splits that never put one recording on both sides."""
from __future__ import annotations

import numpy as np
import pytest

from heartbeat import datasets as D


def test_physionet_counts(table):
    pn = D.select(table, D.PHYSIONET_DBS)
    assert len(pn) == 3240
    assert (pn["label"] == "normal").sum() == 2575 and (pn["label"] == "abnormal").sum() == 665
    per_db = pn.groupby("database").size().to_dict()
    assert per_db == {"training-a": 409, "training-b": 490, "training-c": 31, "training-d": 55,
                      "training-e": 2141, "training-f": 114}
    assert (pn["sample_rate"] == 2000).all()


def test_pascal_counts_and_labels(table):
    pa = D.select(table, D.PASCAL_DBS)
    assert len(pa) == 832
    counts = pa.groupby(["database", "original_label"]).size().to_dict()
    assert counts[("set_a", "normal")] == 31 and counts[("set_a", "murmur")] == 34
    assert counts[("set_a", "extrahls")] == 19 and counts[("set_a", "artifact")] == 40
    assert counts[("set_a", "Aunlabelledtest")] == 52
    assert counts[("set_b", "normal")] + counts[("set_b", "normal/noisynormal")] == 320
    assert counts[("set_b", "normal/noisynormal")] == 120
    assert counts[("set_b", "murmur")] + counts[("set_b", "murmur/noisymurmur")] == 95
    assert counts[("set_b", "extrastole")] == 46 and counts[("set_b", "Bunlabelledtest")] == 195
    labels = pa.groupby("label").size().to_dict()
    assert labels == {"normal": 351, "abnormal": 194, "no_heartbeat": 40, "unknown": 247}
    assert set(pa[pa.database == "set_a"]["sample_rate"]) == {44100}
    assert set(pa[pa.database == "set_b"]["sample_rate"]) == {4000}


def test_set_b_groups_are_patients(table):
    b = D.select(table, ["set_b"])
    assert b["group"].nunique() < len(b)       # several recordings (chest locations) per patient
    assert b["group"].str.startswith("set_b/patient").all()


def test_kfold_never_splits_a_group(table):
    for tr, te in D.stratified_kfold(table, 5, seed=3):
        assert not set(table.loc[tr, "group"]) & set(table.loc[te, "group"])
        assert not set(table.loc[tr, "path"]) & set(table.loc[te, "path"])
    tests = np.concatenate([te for _, te in D.stratified_kfold(table, 5, seed=3)])
    assert sorted(tests) == sorted(table.index)            # every recording tested exactly once


def test_kfold_is_stratified_by_database(table):
    pn = D.select(table, D.PHYSIONET_DBS)
    for _, te in D.stratified_kfold(pn, 5, seed=0):
        share = pn.loc[te, "database"].value_counts(normalize=True)
        assert abs(share["training-e"] - 2141 / 3240) < 0.03


def test_leave_one_database_out(table):
    pn = D.select(table, D.PHYSIONET_DBS)
    splits = D.leave_one_database_out(pn)
    assert [db for db, _, _ in splits] == list(D.PHYSIONET_DBS)
    for db, tr, te in splits:
        assert set(pn.loc[te, "database"]) == {db} and db not in set(pn.loc[tr, "database"])
        assert len(tr) + len(te) == len(pn)


def test_external_selection(table):
    ext = D.select(table, ["set_b"], ["normal", "abnormal"], min_seconds=3)
    assert set(ext["database"]) == {"set_b"} and set(ext["label"]) <= {"normal", "abnormal"}
    assert (ext["duration_s"] >= 3).all()


def test_official_layout_reads_the_same(tmp_path, data_root):
    """PhysioNet's download (training-?/*.wav + REFERENCE.csv, no MANIFEST) gives the same table."""
    import soundfile as sf
    src = data_root / "physionet2016" / "training-c"
    dst = tmp_path / "training-c"
    dst.mkdir()
    (dst / "REFERENCE.csv").write_text((src / "REFERENCE.csv").read_text())
    for f in sorted(src.glob("*.flac"))[:31]:
        audio, sr = sf.read(f, dtype="int16")
        sf.write(dst / f"{f.stem}.wav", audio, sr, subtype="PCM_16")
    ours = D.physionet2016(tmp_path)
    ref = D.select(D.physionet2016(data_root), ["training-c"]).reset_index(drop=True)
    assert len(ours) == 31
    assert (ours["label"].to_numpy() == ref["label"].to_numpy()).all()
    assert np.allclose(ours["duration_s"], ref["duration_s"], atol=1e-3)


def test_data_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path))
    assert D.data_root() == tmp_path
    with pytest.raises(FileNotFoundError):
        D.load_table()


def test_circor_counts_groups_and_segmentation(table):
    c = D.select(table, D.CIRCOR_DBS)
    assert len(c) == 566 and c["group"].nunique() == 566                  # one recording per patient
    assert c.groupby("label").size().to_dict() == {"normal": 417, "abnormal": 108, "unknown": 41}
    assert (c["sample_rate"] == 2000).all() and c["group"].str.startswith("circor2022/").all()
    seg = D.circor_segments(c["path"].iloc[0])
    assert set(seg["state"]) <= set(D.CIRCOR_STATES.values()) and (seg["end_s"] > seg["start_s"]).all()
    assert {"S1", "S2"} <= set(seg["state"])
    for tr, te in D.stratified_kfold(c, 5):
        assert not set(c.loc[tr, "group"]) & set(c.loc[te, "group"])
