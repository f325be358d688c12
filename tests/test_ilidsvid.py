"""iLIDS-VID loader: exact output on a tiny iLIDS-VID-format folder, both test-half conventions, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cgclip.data import load_dataset
from cgclip.data.ilidsvid import load_ilidsvid
from cgclip.errors import DataError
from fixtures_reid import ILIDS_PERSONS, write_ilidsvid

ROWS = np.array([[4, 1, 6, 2, 3, 5]] + [[1, 2, 3, 4, 5, 6]] * 9, dtype=np.float64)


def test_first_half_is_test_by_default(tmp_path):
    write_ilidsvid(tmp_path, rows=ROWS)
    ds = load_ilidsvid(tmp_path)
    # sorted person folders: person001 002 003 005 007 008; row 0 = [4, 1, 6 | 2, 3, 5]
    # first half (test) -> persons 5, 1, 8; second half (train) -> persons 2, 3, 7
    assert [(t.pid, t.camid, t.identity) for t in ds.query] == [
        (1, 0, "person001"),
        (5, 0, "person005"),
        (8, 0, "person008"),
    ]
    assert [(t.pid, t.camid) for t in ds.gallery] == [(1, 1), (5, 1), (8, 1)]
    assert [(t.pid, t.camid, t.identity) for t in ds.train] == [
        (0, 0, "person002"),
        (0, 1, "person002"),
        (1, 0, "person003"),
        (1, 1, "person003"),
        (2, 0, "person007"),
        (2, 1, "person007"),
    ]
    assert ds.info["test_half"] == "first" and "torchreid" in ds.info["test_half_convention"]
    assert ds.info["split"] == 0


def test_second_half_convention(tmp_path):
    write_ilidsvid(tmp_path, rows=ROWS)
    ds = load_dataset("ilidsvid", tmp_path, split=0, test_half="second")
    assert [t.pid for t in ds.query] == [2, 3, 7]
    assert [t.identity for t in ds.train] == ["person001"] * 2 + ["person005"] * 2 + ["person008"] * 2
    assert ds.info["test_half"] == "second"


def test_frames_sorted_by_name(tmp_path):
    write_ilidsvid(tmp_path, rows=ROWS, frames=4)
    ds = load_ilidsvid(tmp_path, split=1)
    q = ds.query[0]  # split 1: first half = persons 1, 2, 3
    base = tmp_path.absolute() / "i-LIDS-VID" / "sequences" / "cam1" / "person001"
    assert q.frames == tuple(str(base / f"cam1_person001_{100 + 7 * f + 1:05d}.png") for f in range(4))
    g = ds.gallery[2]
    assert g.pid == 3 and g.frames[0].endswith("cam2/person003/cam2_person003_00203.png")


def test_all_splits_partition_persons(tmp_path):
    rows = write_ilidsvid(tmp_path, seed=3)
    for split in range(10):
        ds = load_ilidsvid(tmp_path, split=split)
        test = {t.pid for t in ds.query}
        train = set(ds.train_identities())
        expected_test = {ILIDS_PERSONS[int(i) - 1] for i in rows[split, :3]}
        assert test == expected_test == {t.pid for t in ds.gallery}
        assert train == {f"person{p:03d}" for p in ILIDS_PERSONS if p not in expected_test}


@pytest.mark.parametrize("split", [-1, 10, 1.5, True])
def test_bad_split(tmp_path, split):
    write_ilidsvid(tmp_path)
    with pytest.raises(DataError, match="split must be an integer 0-9"):
        load_ilidsvid(tmp_path, split=split)


def test_bad_test_half(tmp_path):
    write_ilidsvid(tmp_path)
    with pytest.raises(DataError, match="test_half must be 'first' or 'second'"):
        load_ilidsvid(tmp_path, test_half="middle")


def test_wrong_mat_key(tmp_path):
    write_ilidsvid(tmp_path, key="splits")
    with pytest.raises(DataError, match=r"train_test_splits_ilidsvid.mat: no variable 'ls_set' \(found: splits\)"):
        load_ilidsvid(tmp_path)


def test_missing_split_file(tmp_path):
    write_ilidsvid(tmp_path)
    (tmp_path / "train-test people splits" / "train_test_splits_ilidsvid.mat").unlink()
    with pytest.raises(DataError, match="train_test_splits_ilidsvid.mat: missing MATLAB file"):
        load_ilidsvid(tmp_path)


def test_index_out_of_range(tmp_path):
    rows = ROWS.copy()
    rows[2, 0] = 7
    write_ilidsvid(tmp_path, rows=rows)
    assert len(load_ilidsvid(tmp_path, split=0).query) == 3
    with pytest.raises(DataError, match=r"'ls_set' row 3 has index 7 outside 1..6"):
        load_ilidsvid(tmp_path, split=2)


def test_odd_row_length(tmp_path):
    write_ilidsvid(tmp_path, rows=ROWS[:, :5])
    with pytest.raises(DataError, match=r"'ls_set' has shape \(10, 5\)"):
        load_ilidsvid(tmp_path)


def test_person_missing_in_one_camera(tmp_path):
    write_ilidsvid(tmp_path)
    shutil.rmtree(tmp_path / "i-LIDS-VID" / "sequences" / "cam2" / "person007")
    with pytest.raises(DataError, match="person person007 is missing in cam2"):
        load_ilidsvid(tmp_path)


def test_person_without_frames(tmp_path):
    write_ilidsvid(tmp_path, rows=ROWS)
    folder = tmp_path / "i-LIDS-VID" / "sequences" / "cam2" / "person005"
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DataError, match="person005: no .png frame"):
        load_ilidsvid(tmp_path)


def test_missing_camera_folder(tmp_path):
    (tmp_path / "i-LIDS-VID" / "sequences").mkdir(parents=True)
    with pytest.raises(DataError, match="cam1: missing iLIDS-VID camera folder"):
        load_ilidsvid(tmp_path)
