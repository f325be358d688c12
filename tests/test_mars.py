"""MARS loader: exact output on a tiny MARS-format folder, and every bad-input message."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import scipy.io

from cgclip.data import load_dataset
from cgclip.data.mars import load_mars
from cgclip.errors import DataError
from fixtures_reid import MARS_TEST, MARS_TRAIN, mars_names, write_mars


def _frames(root, home, names):
    return tuple(os.path.join(str(root.absolute()), home, n[:4], n) for n in names)


def test_train_split_relabelled_junk_dropped(tmp_path):
    write_mars(tmp_path)
    ds = load_mars(tmp_path)
    names, _ = mars_names(MARS_TRAIN)
    # rows: (1,c1,3) (1,c2,2) (3,c6,2) (-1 junk) (5,c1,4) -> pids relabelled 1->0, 3->1, 5->2
    assert [(t.pid, t.camid, t.identity) for t in ds.train] == [
        (0, 0, "0001"),
        (0, 1, "0001"),
        (1, 5, "0003"),
        (2, 0, "0005"),
    ]
    assert ds.train[0].frames == _frames(tmp_path, "bbox_train", names[0:3])
    assert ds.train[3].frames == _frames(tmp_path, "bbox_train", names[9:13])
    assert all(os.path.isfile(f) for t in ds.train for f in t.frames)
    assert ds.num_train_pids == 3
    assert ds.train_identities() == ["0001", "0003", "0005"]
    assert ds.info["junk_tracklets_dropped"] == {"train": 1, "test": 1}


def test_query_gallery_split(tmp_path):
    write_mars(tmp_path)
    ds = load_dataset("mars", tmp_path)
    names, _ = mars_names(MARS_TEST)
    # query_IDX = [3, 1] (1-based, file order kept): rows (4,c3,2) and (2,c1,3); pids keep their own values
    assert [(t.pid, t.camid) for t in ds.query] == [(4, 2), (2, 0)]
    assert ds.query[1].frames == _frames(tmp_path, "bbox_test", names[0:3])
    # gallery = rows 2, 4, 5 (distractor pid 0 kept), 7; junk row 6 dropped
    assert [(t.pid, t.camid, t.identity) for t in ds.gallery] == [
        (2, 1, "0002"),
        (4, 0, "0004"),
        (0, 1, "0000"),
        (4, 4, "0004"),
    ]
    assert ds.gallery[3].frames == _frames(tmp_path, "bbox_test", names[-1:])
    assert ds.info["gallery_convention"] == "gallery = test tracks not in query_IDX (torchreid)"
    assert ds.info["distractor_tracklets"] == 1
    assert ds.statistics()["gallery"]["tracklets"] == 4


def test_transposed_tables_accepted(tmp_path):
    write_mars(tmp_path, transpose=True)
    ds = load_mars(tmp_path)
    assert len(ds.train) == 4 and len(ds.query) == 2 and len(ds.gallery) == 4


def test_junk_query_row_dropped_with_warning(tmp_path, caplog):
    write_mars(tmp_path, query=[6, 1])
    with caplog.at_level(logging.WARNING):
        ds = load_mars(tmp_path)
    assert [t.pid for t in ds.query] == [2]
    assert len(ds.gallery) == 5
    assert "junk" in caplog.text


def test_verify_frames_names_missing_file(tmp_path):
    write_mars(tmp_path)
    names, _ = mars_names(MARS_TEST)
    missing = tmp_path / "bbox_test" / "0004" / names[5]
    missing.unlink()
    assert len(load_mars(tmp_path).gallery) == 4  # not checked by default
    with pytest.raises(DataError, match="missing") as err:
        load_mars(tmp_path, verify_frames=True)
    assert str(missing) in str(err.value)


@pytest.mark.parametrize("name", ["tracks_test_info.mat", "query_IDX.mat", "train_name.txt"])
def test_missing_info_file(tmp_path, name):
    write_mars(tmp_path, images=False)
    (tmp_path / "info" / name).unlink()
    with pytest.raises(DataError) as err:
        load_mars(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "info" / name) in msg and "\n" not in msg


def test_missing_bbox_folder(tmp_path):
    write_mars(tmp_path, images=False)
    (tmp_path / "bbox_test").rmdir()
    with pytest.raises(DataError, match="bbox_test"):
        load_mars(tmp_path)


def test_wrong_mat_key(tmp_path):
    write_mars(tmp_path, images=False, keys={"train": "tracks"})
    with pytest.raises(DataError) as err:
        load_mars(tmp_path)
    msg = str(err.value)
    assert "tracks_train_info.mat" in msg and "'track_train_info'" in msg and "found: tracks" in msg


def test_wrong_table_shape(tmp_path):
    write_mars(tmp_path, images=False)
    scipy.io.savemat(tmp_path / "info" / "tracks_test_info.mat", {"track_test_info": np.ones((5, 3))})
    with pytest.raises(DataError, match=r"tracks_test_info.mat: 'track_test_info' has shape \(5, 3\); expected an N×4"):
        load_mars(tmp_path)


def test_mixed_person_tracklet(tmp_path):
    _, table = write_mars(tmp_path, images=False)["train"]
    table = table.copy()
    table[0, 1] += 1  # row 1 now runs into the first frame of row 2 (same pid, other camera)
    scipy.io.savemat(tmp_path / "info" / "tracks_train_info.mat", {"track_train_info": table})
    with pytest.raises(DataError, match=r"tracks_train_info.mat: row 1: .*cameras \['1', '2'\]"):
        load_mars(tmp_path)
    table[0, 1] = 6  # row 1 now spans persons 0001 and 0003
    scipy.io.savemat(tmp_path / "info" / "tracks_train_info.mat", {"track_train_info": table})
    with pytest.raises(DataError, match=r"row 1: .*mix persons \['0001', '0003'\]"):
        load_mars(tmp_path)


def test_row_pid_must_match_names(tmp_path):
    _, table = write_mars(tmp_path, images=False)["test"]
    table = table.copy()
    table[1, 2] = 9
    scipy.io.savemat(tmp_path / "info" / "tracks_test_info.mat", {"track_test_info": table})
    with pytest.raises(DataError, match=r"tracks_test_info.mat: row 2: says pid 9 camera 2 but its frames are 0002"):
        load_mars(tmp_path)


def test_row_out_of_range(tmp_path):
    _, table = write_mars(tmp_path, images=False)["test"]
    table = table.copy()
    table[-1, 1] = len(mars_names(MARS_TEST)[0]) + 1
    scipy.io.savemat(tmp_path / "info" / "tracks_test_info.mat", {"track_test_info": table})
    with pytest.raises(DataError, match=r"tracks_test_info.mat: row 7: frames 14..15 are outside 1..14"):
        load_mars(tmp_path)


def test_query_index_out_of_range(tmp_path):
    write_mars(tmp_path, images=False, query=[1, 8])
    with pytest.raises(DataError, match=r"query_IDX.mat: query_IDX value 8 is outside 1..7"):
        load_mars(tmp_path)


def test_malformed_frame_name(tmp_path):
    write_mars(tmp_path, images=False)
    path = tmp_path / "info" / "train_name.txt"
    lines = path.read_text().splitlines()
    lines[1] = "frame_0002.jpg"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train_name.txt:2: frame name 'frame_0002.jpg'"):
        load_mars(tmp_path)


def test_not_a_mat_file(tmp_path):
    write_mars(tmp_path, images=False)
    (tmp_path / "info" / "query_IDX.mat").write_bytes(b"not a matlab file at all")
    with pytest.raises(DataError, match="query_IDX.mat: not a readable MATLAB file"):
        load_mars(tmp_path)
