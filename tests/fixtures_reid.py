"""Helpers that write tiny MARS- and iLIDS-VID-format folders for tests (importable by any test module)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def write_image(path: Path, color: Sequence[int], size: tuple[int, int] = (8, 4)) -> None:
    """Write a ``size = (H, W)`` image of one colour (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[0], size[1], 3), dtype=np.uint8)
    arr[:] = np.asarray(color, dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _pid_str(pid: int) -> str:
    return "00-1" if pid == -1 else f"{pid:04d}"


def mars_names(tracks: Sequence[tuple[int, int, int]]) -> tuple[list[str], np.ndarray]:
    """Frame names and the [start, end, pid, camid] table (1-based) of tracks given as (pid, camid 1-based, frames)."""
    names: list[str] = []
    rows = []
    counter: dict[tuple[int, int], int] = {}
    for pid, cam, n in tracks:
        counter[(pid, cam)] = counter.get((pid, cam), 0) + 1
        start = len(names) + 1
        names += [f"{_pid_str(pid)}C{cam}T{counter[(pid, cam)]:04d}F{f:03d}.jpg" for f in range(1, n + 1)]
        rows.append([start, len(names), pid, cam])
    return names, np.asarray(rows, dtype=np.float64)


# Default fixture: (pid, camid 1-based, number of frames) per track row.
MARS_TRAIN = [(1, 1, 3), (1, 2, 2), (3, 6, 2), (-1, 3, 2), (5, 1, 4)]
MARS_TEST = [(2, 1, 3), (2, 2, 2), (4, 3, 2), (4, 1, 2), (0, 2, 2), (-1, 1, 2), (4, 5, 1)]
MARS_QUERY = [3, 1]  # 1-based rows of MARS_TEST, deliberately not sorted


def write_mars(
    root: Path,
    train: Sequence[tuple[int, int, int]] = MARS_TRAIN,
    test: Sequence[tuple[int, int, int]] = MARS_TEST,
    query: Sequence[int] = MARS_QUERY,
    keys: dict[str, str] | None = None,
    transpose: bool = False,
    images: bool = True,
) -> dict:
    """Write a MARS-format folder under ``root``; returns the names and tables written.

    ``keys`` overrides the .mat variable names (keys "train", "test", "query"); ``transpose`` stores 4×N tables.
    """
    keys = {"train": "track_train_info", "test": "track_test_info", "query": "query_IDX", **(keys or {})}
    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, tracks, home in (("train", train, "bbox_train"), ("test", test, "bbox_test")):
        names, table = mars_names(tracks)
        (info / f"{split}_name.txt").write_text("\n".join(names) + "\n")
        (root / home).mkdir(parents=True, exist_ok=True)
        if images:
            for i, name in enumerate(names):
                write_image(root / home / name[:4] / name, ((i * 37) % 256, 100, 50))
        scipy.io.savemat(info / f"tracks_{split}_info.mat", {keys[split]: table.T if transpose else table})
        out[split] = (names, table)
    scipy.io.savemat(info / "query_IDX.mat", {keys["query"]: np.asarray([query], dtype=np.float64)})
    return out


ILIDS_PERSONS = [1, 2, 3, 5, 7, 8]


def write_ilidsvid(
    root: Path,
    persons: Sequence[int] = ILIDS_PERSONS,
    frames: int = 3,
    seed: int = 0,
    key: str = "ls_set",
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Write an iLIDS-VID-format folder; returns the ``ls_set`` table written (10 random permutations by default).

    Frame ``f`` of person ``p`` in camera ``c`` is ``cam{c}_person{p:03d}_{frame:05d}.png`` with non-contiguous,
    zero-padded frame numbers, written in reverse order (so a loader must sort them).
    """
    seq = root / "i-LIDS-VID" / "sequences"
    for cam in (1, 2):
        for p in persons:
            for f in reversed(range(frames)):
                num = 100 * cam + 7 * f + p
                write_image(
                    seq / f"cam{cam}" / f"person{p:03d}" / f"cam{cam}_person{p:03d}_{num:05d}.png",
                    (p * 30 % 256, cam * 80, f * 40 % 256),
                )
    if rows is None:
        rng = np.random.default_rng(seed)
        rows = np.stack([rng.permutation(len(persons)) + 1 for _ in range(10)]).astype(np.float64)
    split_dir = root / "train-test people splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(split_dir / "train_test_splits_ilidsvid.mat", {key: rows})
    return rows
