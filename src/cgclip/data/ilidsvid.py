"""iLIDS-VID loader.

Folder layout (as distributed; the optical-flow archives are not needed)::

    ROOT/i-LIDS-VID/sequences/cam1/personNNN/*.png
    ROOT/i-LIDS-VID/sequences/cam2/personNNN/*.png
    ROOT/train-test people splits/train_test_splits_ilidsvid.mat    key ls_set: 10 rows of 1-based person indices

``ls_set`` indices point into the sorted list of person folders (cam1 and cam2 must hold the same 300 persons). Each
row is split in halves: one half of the persons is the test set, the other the training set. Which half is test is
the ``test_half`` option:

* ``"first"`` (default) — the first half is test, the second train. This is what torchreid (and the video ReID code
  bases derived from it, following Wang et al., ECCV'14) do.
* ``"second"`` — the second half is test, the first train.

Train = both cameras of the train persons (pids relabelled); query = cam1 tracklets of the test persons (camid 0),
gallery = their cam2 tracklets (camid 1). Frames are sorted by file name. pid = the person number; identity =
the folder name (``personNNN``). Report results as the mean over the 10 splits, naming the test half.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from cgclip.data.mars import load_mat_variable
from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel
from cgclip.errors import DataError

log = logging.getLogger(__name__)

SPLITS_FILE = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"
TEST_HALVES = ("first", "second")
_PERSON = re.compile(r"^person(\d+)$")


def _person_dirs(cam_dir: Path) -> list[str]:
    if not cam_dir.is_dir():
        raise DataError(
            "missing iLIDS-VID camera folder; expected i-LIDS-VID/sequences/cam1 and cam2 with personNNN folders",
            path=cam_dir,
        )
    names = sorted(d.name for d in os.scandir(cam_dir) if d.is_dir())
    if not names:
        raise DataError("no person folder (personNNN) in this camera folder", path=cam_dir)
    for name in names:
        if _PERSON.match(name) is None:
            raise DataError(f"unexpected folder {name!r}; expected person folders named personNNN", path=cam_dir / name)
    return names


def _frames(person_dir: Path) -> tuple[str, ...]:
    frames = sorted(f.name for f in os.scandir(person_dir) if f.is_file() and f.name.lower().endswith(".png"))
    if not frames:
        raise DataError("no .png frame in this person folder; expected the sequence's frames", path=person_dir)
    return tuple(str(person_dir / f) for f in frames)


def _load_split(path: Path, split: int, num_persons: int) -> np.ndarray:
    arr = load_mat_variable(path, "ls_set", "10 rows of 1-based person indices named 'ls_set'")
    if arr.ndim == 2 and arr.shape[0] != 10 and arr.shape[1] == 10:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[1] % 2:
        raise DataError(
            f"'ls_set' has shape {arr.shape}; expected 10 rows of an even number of person indices", path=path
        )
    if split >= arr.shape[0]:
        raise DataError(f"split {split} requested but 'ls_set' has only {arr.shape[0]} rows", path=path)
    row = arr[split]
    if not np.all(np.isfinite(row)) or not np.all(row == np.round(row)):
        raise DataError(
            f"'ls_set' row {split + 1} holds non-integer values; expected 1-based person indices", path=path
        )
    row = row.astype(np.int64)
    bad = row[(row < 1) | (row > num_persons)]
    if bad.size:
        raise DataError(
            f"'ls_set' row {split + 1} has index {int(bad[0])} outside 1..{num_persons} (the person "
            "folders found); the split file does not match the sequences",
            path=path,
        )
    if len(np.unique(row)) != len(row):
        raise DataError(f"'ls_set' row {split + 1} lists a person twice; expected distinct indices", path=path)
    return row


def load_ilidsvid(root: str | Path, split: int = 0, test_half: str = "first") -> TrackletDataset:
    """Load split ``split`` (0–9) of iLIDS-VID from ``root`` (see the module docstring for the conventions).

    Args:
        root: the folder holding ``i-LIDS-VID/`` and ``train-test people splits/``.
        split: which row of ``ls_set`` to use (0-based, 0–9).
        test_half: ``"first"`` (torchreid: first half of the row is test) or ``"second"``.

    Raises:
        DataError: a bad option, a missing folder or file, a wrong .mat key or shape, an index out of range, or a
            person folder without frames.
    """
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split <= 9:
        raise DataError(f"iLIDS-VID split must be an integer 0-9 (got {split!r})")
    if test_half not in TEST_HALVES:
        raise DataError(f"test_half must be 'first' or 'second' (got {test_half!r})")
    root = Path(root).absolute()
    seq = root / "i-LIDS-VID" / "sequences"
    cam1, cam2 = _person_dirs(seq / "cam1"), _person_dirs(seq / "cam2")
    only1, only2 = sorted(set(cam1) - set(cam2)), sorted(set(cam2) - set(cam1))
    if only1 or only2:
        cam, name = ("cam2", only1[0]) if only1 else ("cam1", only2[0])
        raise DataError(f"person {name} is missing in {cam}; both cameras must hold the same persons", path=seq / cam)
    split_path = root / SPLITS_FILE
    row = _load_split(split_path, int(split), len(cam1))
    half = len(row) // 2
    first, second = row[:half], row[half:]
    test_idx, train_idx = (first, second) if test_half == "first" else (second, first)
    train_names = sorted(cam1[i - 1] for i in train_idx)
    test_names = sorted(cam1[i - 1] for i in test_idx)

    def tracklet(name: str, cam: int) -> Tracklet:
        pid = int(_PERSON.match(name).group(1))  # type: ignore[union-attr]
        return Tracklet(_frames(seq / f"cam{cam + 1}" / name), pid, cam, "", name)

    train = [tracklet(name, cam) for name in train_names for cam in (0, 1)]
    query = [tracklet(name, 0) for name in test_names]
    gallery = [tracklet(name, 1) for name in test_names]
    train, _ = relabel(train)
    convention = (
        "first half of each ls_set row = test (torchreid, Wang et al. ECCV'14)"
        if test_half == "first"
        else "second half of each ls_set row = test"
    )
    info = {
        "split": int(split),
        "test_half": test_half,
        "test_half_convention": convention,
        "num_persons": len(cam1),
        "frame_paths": "absolute",
    }
    log.info(
        "iLIDS-VID split %d (%s): %d train / %d query / %d gallery tracklets",
        split,
        convention,
        len(train),
        len(query),
        len(gallery),
    )
    return TrackletDataset("ilidsvid", str(root), train, query, gallery, info)


def detect(root: Path) -> bool:
    """Whether ``root`` holds iLIDS-VID (``i-LIDS-VID/`` or ``train-test people splits/``)."""
    return (root / "i-LIDS-VID").is_dir() or (root / "train-test people splits").is_dir()
