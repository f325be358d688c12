"""Independent check of the MARS and iLIDS-VID loaders on folders laid out as the official releases are.

These fixtures are written from the datasets' published layouts, separately from the loaders' own unit-test
fixtures, and the expected values are computed by hand from the tables below.
"""

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from cgclip.data import load_dataset


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (120, 30, 30)).save(path)


def _mars(root: Path) -> None:
    # (pid, cam, tracklet, n_frames) per track, in file order
    train_tracks = [(2, 1, 1, 3), (2, 3, 2, 2), (7, 2, 1, 2), (-1, 1, 1, 2)]
    test_tracks = [(5, 1, 1, 2), (5, 2, 1, 3), (0, 4, 1, 2), (9, 6, 1, 2), (9, 1, 3, 2), (-1, 2, 5, 1)]

    def write(split: str, tracks):
        names, rows = [], []
        for pid, cam, t, n in tracks:
            folder = "00-1" if pid == -1 else f"{pid:04d}"
            start = len(names) + 1
            for f in range(1, n + 1):
                name = f"{folder}C{cam}T{t:04d}F{f:03d}.jpg"
                names.append(name)
                _img(root / f"bbox_{split}" / folder / name)
            rows.append([start, len(names), pid, cam])
        return names, np.array(rows, dtype=np.float64)

    (root / "info").mkdir(parents=True)
    names, rows = write("train", train_tracks)
    (root / "info/train_name.txt").write_text("\n".join(names) + "\n")
    scipy.io.savemat(root / "info/tracks_train_info.mat", {"track_train_info": rows})
    names, rows = write("test", test_tracks)
    (root / "info/test_name.txt").write_text("\n".join(names) + "\n")
    scipy.io.savemat(root / "info/tracks_test_info.mat", {"track_test_info": rows})
    # queries: test rows 1 (pid 5, cam 1) and 5 (pid 9, cam 1), 1-based, as a column vector
    scipy.io.savemat(root / "info/query_IDX.mat", {"query_IDX": np.array([[1], [5]], dtype=np.float64)})


def test_mars_official_layout(tmp_path: Path) -> None:
    _mars(tmp_path)
    ds = load_dataset("mars", tmp_path)
    # junk (pid -1) dropped; train pids 2, 7 -> 0, 1
    assert [(t.pid, t.camid, len(t)) for t in ds.train] == [(0, 0, 3), (0, 2, 2), (1, 1, 2)]
    assert [t.identity for t in ds.train] == ["0002", "0002", "0007"]
    assert [Path(f).name for f in ds.train[0].frames] == [f"0002C1T0001F00{i}.jpg" for i in (1, 2, 3)]
    assert [(t.pid, t.camid) for t in ds.query] == [(5, 0), (9, 0)]
    # gallery = test rows not in query_IDX, junk dropped, distractor pid 0 kept
    assert [(t.pid, t.camid, len(t)) for t in ds.gallery] == [(5, 1, 3), (0, 3, 2), (9, 5, 2)]


def test_ilidsvid_official_layout(tmp_path: Path) -> None:
    persons = [f"person{n:03d}" for n in (1, 2, 4, 7)]
    for cam in (1, 2):
        for p in persons:
            for f in (3, 1, 2):  # written out of order: the loader must sort by name
                _img(tmp_path / "i-LIDS-VID/sequences" / f"cam{cam}" / p / f"cam{cam}_{p}_{f:05d}.png")
    split_dir = tmp_path / "train-test people splits"
    split_dir.mkdir()
    ls_set = np.array([[2, 4, 1, 3]] * 10, dtype=np.float64)  # 1-based into sorted persons
    scipy.io.savemat(split_dir / "train_test_splits_ilidsvid.mat", {"ls_set": ls_set})

    first = load_dataset("ilidsvid", tmp_path, split=3, test_half="first")  # torchreid: first half is test
    assert sorted({t.identity for t in first.query}) == ["person002", "person007"]
    assert all(t.camid == 0 for t in first.query) and all(t.camid == 1 for t in first.gallery)
    assert sorted({t.identity for t in first.train}) == ["person001", "person004"]
    assert len(first.train) == 4 and first.num_train_pids == 2
    assert [Path(f).name[-9:] for f in first.query[0].frames] == ["00001.png", "00002.png", "00003.png"]

    second = load_dataset("ilidsvid", tmp_path, split=3, test_half="second")
    assert sorted({t.identity for t in second.query}) == ["person001", "person004"]
