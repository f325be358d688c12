"""LS-VID loader: exact output on a tiny LS-VID-format folder, format detection beside MARS, every bad-input message."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from cgclip.cli import main
from cgclip.data import detect_dataset, load_dataset, lsvid, mars
from cgclip.data.lsvid import load_lsvid
from cgclip.errors import DataError
from fixtures_reid import write_image, write_mars

# (pid, camera 1-based, number of frames) per list line; pid -1 = junk
LSVID_TRAIN = [(3, 1, 3), (3, 2, 2), (-1, 2, 2), (7, 3, 4), (12, 1, 2)]
LSVID_TEST = [(5, 1, 3), (5, 2, 2), (9, 3, 2), (-1, 1, 2), (9, 1, 3), (5, 3, 1)]
LSVID_QUERY = [3, 1]  # 1-based lines of LSVID_TEST, deliberately not sorted
MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2019 HDF5 schema 1.00 ."


def write_query_mat(path: Path, query: Sequence[int] | np.ndarray, key: str = "query") -> None:
    """Write ``info_test.mat`` as MATLAB v7.3 does: an HDF5 file behind a 512-byte text header, ``key`` as (1, N)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(query, dtype=np.float64)
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(key, data=data.reshape(1, -1) if data.ndim == 1 else data)
    with open(path, "r+b") as fh:
        fh.write(MAT_HEADER)


def write_lsvid(
    root: Path,
    train: Sequence[tuple[int, int, int]] = LSVID_TRAIN,
    test: Sequence[tuple[int, int, int]] = LSVID_TEST,
    query: Sequence[int] = LSVID_QUERY,
) -> dict[str, list[tuple[str, list[str]]]]:
    """Write an LS-VID-format folder under ``root``; returns per split the (prefix, frame paths) of every line.

    Line ``pid cam n`` becomes prefix ``tracklet_SPLIT/PPPP/PPPP_TTTT_CC`` (T counts the person's tracklets) with
    frames ``PPPP_TTTT_CC_FFFF.jpg``, written last frame first (so a loader must sort them); a person's tracklets share
    one folder (so a loader must match by prefix, not by folder).
    """
    out: dict[str, list[tuple[str, list[str]]]] = {}
    lists = root / "info" / "list_sequence"
    lists.mkdir(parents=True, exist_ok=True)
    for split, tracks in (("train", train), ("test", test)):
        counter: dict[int, int] = {}
        rows, lines = [], []
        for pid, cam, n in tracks:
            counter[pid] = counter.get(pid, 0) + 1
            person = f"{pid:04d}"
            prefix = f"tracklet_{split}/{person}/{person}_{counter[pid]:04d}_{cam:02d}"
            frames = [str(root.absolute() / f"{prefix}_{f:04d}.jpg") for f in range(1, n + 1)]
            for i, frame in reversed(list(enumerate(frames))):
                write_image(Path(frame), ((pid * 40) % 256, cam * 60, i * 30))
            rows.append((prefix, frames))
            lines.append(f"{prefix} {pid}")
        (lists / f"list_seq_{split}.txt").write_text("\n".join(lines) + "\n")
        out[split] = rows
    write_query_mat(root / "info" / "data" / "info_test.mat", query)
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh tiny LS-VID folder."""
    write_lsvid(tmp_path)
    return tmp_path


def _set_line(root: Path, split: str, lineno: int, text: str) -> None:
    path = root / "info" / "list_sequence" / f"list_seq_{split}.txt"
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_train_split_relabelled_junk_dropped(tmp_path):
    written = write_lsvid(tmp_path)
    ds = load_lsvid(tmp_path)
    # lines (3,c1,3) (3,c2,2) (-1 junk) (7,c3,4) (12,c1,2) -> pids relabelled 3->0, 7->1, 12->2; cameras 0-based
    assert [(t.pid, t.camid, t.identity, len(t)) for t in ds.train] == [
        (0, 0, "3", 3),
        (0, 1, "3", 2),
        (1, 2, "7", 4),
        (2, 0, "12", 2),
    ]
    assert ds.train[0].frames == tuple(written["train"][0][1])  # name order, only this tracklet's files
    assert ds.train[2].frames == tuple(written["train"][3][1])
    assert all(os.path.isabs(f) and os.path.isfile(f) for t in ds.train for f in t.frames)
    assert ds.num_train_pids == 3 and ds.train_identities() == ["3", "7", "12"]  # relabelled in numeric pid order
    assert ds.info["junk_tracklets_dropped"] == {"train": 1, "test": 1}
    assert ds.name == "lsvid" and ds.root == str(tmp_path.absolute())


def test_query_gallery_split(tmp_path):
    written = write_lsvid(tmp_path)
    ds = load_dataset("lsvid", tmp_path)
    # query = test lines 3 and 1 (file order kept); pids keep their own values
    assert [(t.pid, t.camid, t.identity) for t in ds.query] == [(9, 2, "9"), (5, 0, "5")]
    assert ds.query[1].frames == tuple(written["test"][0][1])
    # gallery = lines 2, 5, 6; junk line 4 dropped; no query line repeated
    assert [(t.pid, t.camid, len(t)) for t in ds.gallery] == [(5, 1, 2), (9, 0, 3), (5, 2, 1)]
    assert ds.gallery[1].frames == tuple(written["test"][4][1])
    assert ds.info["gallery_convention"] == lsvid.GALLERY_CONVENTION and ds.info["query_rows"] == 2
    assert ds.num_cameras == 3


def test_junk_and_repeated_query_lines_warn(tmp_path, caplog):
    write_lsvid(tmp_path, query=[4, 1, 1])
    with caplog.at_level(logging.WARNING):
        ds = load_lsvid(tmp_path)
    assert [t.pid for t in ds.query] == [5, 5]  # junk line 4 dropped, line 1 kept twice (as TF-CLIP does)
    assert len(ds.gallery) == 4
    assert "junk" in caplog.text and "more than once" in caplog.text


def test_folder_prefix_skips_hidden_files(root):
    folder = root / "tracklet_test" / "0009"
    (folder / ".DS_Store").write_bytes(b"")
    _set_line(root, "test", 5, "tracklet_test/0009/ 9")  # the whole folder, as glob("tracklet_test/0009/*") reads it
    ds = load_lsvid(root)
    assert [os.path.basename(f) for f in ds.gallery[1].frames] == sorted(p.name for p in folder.glob("*.jpg"))


def test_detection_beside_mars(tmp_path, root):
    assert detect_dataset(root) == "lsvid"
    mars_root = tmp_path / "mars"
    write_mars(mars_root, images=False)
    assert detect_dataset(mars_root) == "mars"
    assert not lsvid.detect(mars_root)
    (root / "bbox_test").mkdir()  # even an LS-VID folder with a bbox_test/ is not MARS
    assert not mars.detect(root) and detect_dataset(root) == "lsvid"


def test_cli_info(root, capsys):
    assert main(["info", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"lsvid dataset at {root.absolute()}"
    rows = {line.split()[0]: line.split()[1:4] for line in lines[2:5]}
    assert rows == {"train": ["3", "4", "3"], "query": ["2", "2", "2"], "gallery": ["2", "3", "3"]}


@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_list_file(root, split):
    path = root / "info" / "list_sequence" / f"list_seq_{split}.txt"
    path.unlink()
    with pytest.raises(DataError) as err:
        load_lsvid(root)
    msg = str(err.value)
    assert msg.startswith(f"{path}: missing LS-VID sequence list") and "'PATH-PREFIX PID'" in msg and "\n" not in msg


@pytest.mark.parametrize("text", ["tracklet_train/0003/0003_0002_02", "a b 3", "tracklet_train/x 3.0", "p -2"])
def test_malformed_line(root, text):
    _set_line(root, "train", 2, text)
    with pytest.raises(DataError, match=r"list_seq_train.txt:2: expected 'PATH-PREFIX PID' \(two fields"):
        load_lsvid(root)


def test_empty_list(root):
    (root / "info" / "list_sequence" / "list_seq_test.txt").write_text("\n\n")
    with pytest.raises(DataError, match="list_seq_test.txt: empty LS-VID sequence list"):
        load_lsvid(root)


def test_prefix_without_frames(root):
    _set_line(root, "test", 3, "tracklet_test/0009/0009_0009_03 9")
    with pytest.raises(DataError) as err:
        load_lsvid(root)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'info/list_sequence/list_seq_test.txt'}:3: tracklet prefix")
    assert f"{root / 'tracklet_test/0009/0009_0009_03'}*" in msg and "\n" not in msg
    _set_line(root, "test", 3, "tracklet_nowhere/0009_0001_03 9")  # a folder that does not exist
    with pytest.raises(DataError, match=r"list_seq_test.txt:3: tracklet prefix 'tracklet_nowhere/0009_0001_03'"):
        load_lsvid(root)


@pytest.mark.parametrize(
    "bad", ["0012_0001_xx_0001.jpg", "0012_0001_16_0001.jpg", "0012_0001_00_0001.jpg", "0012_01.jpg"]
)
def test_bad_camera_field(root, bad):
    write_image(root / "tracklet_train" / "0012" / bad, (1, 2, 3))
    _set_line(root, "train", 5, f"tracklet_train/0012/{bad[:-4]} 12")
    with pytest.raises(DataError) as err:
        load_lsvid(root)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'info/list_sequence/list_seq_train.txt'}:5: frame '{bad}'")
    assert "camera number 1..15" in msg and "\n" not in msg


def test_junk_lines_are_not_looked_up(root):
    _set_line(root, "train", 3, "tracklet_train/gone -1")
    assert len(load_lsvid(root).train) == 4


def test_missing_query_mat(root):
    path = root / "info" / "data" / "info_test.mat"
    path.unlink()
    with pytest.raises(DataError, match=r"info_test.mat: missing LS-VID query file; expected info/data/info_test.mat"):
        load_lsvid(root)


def test_unreadable_query_mat(root):
    path = root / "info" / "data" / "info_test.mat"
    path.write_bytes(b"not a matlab file at all")
    with pytest.raises(DataError, match=r"info_test.mat: not a readable MATLAB v7.3 \(HDF5\) file") as err:
        load_lsvid(root)
    assert "re-save" not in str(err.value)
    scipy.io.savemat(path, {"query": np.asarray([LSVID_QUERY], dtype=np.float64)})  # a v5 file, not v7.3
    with pytest.raises(DataError, match=r"it is a MATLAB v5/v7 file: re-save it with save\(\.\.\., '-v7.3'\)"):
        load_lsvid(root)


def test_query_mat_contents(root):
    path = root / "info" / "data" / "info_test.mat"
    write_query_mat(path, LSVID_QUERY, key="queries")
    with pytest.raises(DataError, match=r"info_test.mat: no dataset 'query' \(found: queries\)"):
        load_lsvid(root)
    write_query_mat(path, np.ones((2, 3)))
    with pytest.raises(DataError, match=r"'query' has shape \(2, 3\)"):
        load_lsvid(root)
    write_query_mat(path, [1.5, 2])
    with pytest.raises(DataError, match="'query' holds non-integer values"):
        load_lsvid(root)
    write_query_mat(path, np.asarray([[3], [1]]))  # an (N, 1) vector reads the same
    assert [t.pid for t in load_lsvid(root).query] == [9, 5]


@pytest.mark.parametrize("value", [0, 7])
def test_query_index_out_of_range(root, value):
    write_query_mat(root / "info" / "data" / "info_test.mat", [1, value])
    with pytest.raises(DataError, match=rf"info_test.mat: query value {value} is outside 1..6 \(the tracklet lines"):
        load_lsvid(root)
