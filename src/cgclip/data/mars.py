"""MARS loader with torchreid's semantics.

Folder layout (as distributed)::

    ROOT/bbox_train/0001/0001C1T0001F001.jpg  (frames: pid, camera, tracklet, frame; folder = pid; junk folder 00-1)
    ROOT/bbox_test/NNNN/...
    ROOT/info/train_name.txt, test_name.txt     (one frame name per line; a track is a range of lines)
    ROOT/info/tracks_train_info.mat             key track_train_info: N×4 rows [start, end, pid, camid]
    ROOT/info/tracks_test_info.mat              key track_test_info
    ROOT/info/query_IDX.mat                     key query_IDX: 1-based rows of the test track table

Track rows use 1-based inclusive indices into the name list and 1-based camera ids (cgclip camids are 0-based).
Rows with pid −1 (junk) are dropped everywhere; pid 0 (distractors) stays in the gallery. Query = the test rows at
``query_IDX`` (in that order); gallery = the other test rows (torchreid: 1,980 queries, 9,330 gallery tracklets on the
real data). Every tracklet's frames must share one pid and one camera, matching its row. Frame paths are absolute.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import scipy.io

from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel
from cgclip.errors import DataError
from cgclip.io_utils import read_text

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4}|00-1)C(\d)T")
GALLERY_CONVENTION = "gallery = test tracks not in query_IDX (torchreid)"


def load_mat_variable(path: Path, key: str, expected: str) -> np.ndarray:
    """Variable ``key`` of MATLAB file ``path`` as a numpy array (shared by the MARS and iLIDS-VID loaders).

    Raises:
        DataError: the file is missing, unreadable (including MATLAB v7.3/HDF5 files) or has no variable ``key``;
            the message says what is ``expected``.
    """
    if not path.is_file():
        raise DataError(f"missing MATLAB file; expected {expected}", path=path)
    try:
        content = scipy.io.loadmat(str(path))
    except NotImplementedError as exc:
        raise DataError(
            "MATLAB v7.3 (HDF5) files are not supported; re-save it with save(..., '-v7')", path=path
        ) from exc
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, ... on corrupt files
        raise DataError(
            f"not a readable MATLAB file ({type(exc).__name__}: {exc}); expected {expected}", path=path
        ) from exc
    if key not in content:
        found = ", ".join(k for k in content if not k.startswith("__")) or "none"
        raise DataError(f"no variable '{key}' (found: {found}); expected {expected}", path=path)
    return np.asarray(content[key])


def _read_names(path: Path) -> tuple[list[str], list[int]]:
    """Frame names of a MARS name list and the file line of each."""
    if not path.is_file():
        raise DataError(f"missing MARS name list; expected info/{path.name} with one frame name per line", path=path)
    names, lines = [], []
    for lineno, raw in enumerate(read_text(path, "MARS name list").splitlines(), 1):
        name = raw.strip()
        if name:
            names.append(name)
            lines.append(lineno)
    if not names:
        raise DataError("empty MARS name list; expected one frame name (e.g. 0001C1T0001F001.jpg) per line", path=path)
    return names, lines


def _load_tracks(path: Path, key: str) -> np.ndarray:
    """The N×4 track table [start, end, pid, camid] of a MARS .mat file (4×N is transposed; 4×4 is read as rows)."""
    arr = load_mat_variable(path, key, f"an N×4 array [start, end, pid, camid] named '{key}'")
    if arr.ndim == 2 and arr.shape[1] != 4 and arr.shape[0] == 4:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
        raise DataError(f"'{key}' has shape {arr.shape}; expected an N×4 array [start, end, pid, camid]", path=path)
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise DataError(f"'{key}' holds non-integer values; expected integer [start, end, pid, camid] rows", path=path)
    return arr.astype(np.int64)


def _load_query_rows(path: Path, num_test_rows: int) -> list[int]:
    """0-based test-table rows of the queries, in file order."""
    arr = load_mat_variable(path, "query_IDX", "a vector of 1-based test-track rows named 'query_IDX'")
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) > 1) or arr.size == 0:
        raise DataError(f"'query_IDX' has shape {arr.shape}; expected a vector of 1-based test-track rows", path=path)
    flat = arr.reshape(-1)
    if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        raise DataError("'query_IDX' holds non-integer values; expected 1-based test-track rows", path=path)
    rows = flat.astype(np.int64)
    bad = rows[(rows < 1) | (rows > num_test_rows)]
    if bad.size:
        raise DataError(
            f"query_IDX value {int(bad[0])} is outside 1..{num_test_rows} (the rows of "
            "tracks_test_info.mat); the files do not belong together",
            path=path,
        )
    if len(np.unique(rows)) != len(rows):
        raise DataError("query_IDX lists a test row twice; expected distinct 1-based rows", path=path)
    return [int(r) - 1 for r in rows]


def _build(
    tracks: np.ndarray, names: list[str], lines: list[int], root: Path, home: str, mat_path: Path, names_path: Path
) -> tuple[list[Tracklet | None], int]:
    """One Tracklet per table row (None for junk rows) and the number of junk rows."""
    base = str(root / home)
    out: list[Tracklet | None] = []
    junk = 0
    for r, (start, end, pid, cam) in enumerate(tracks.tolist(), 1):
        if pid == -1:
            out.append(None)
            junk += 1
            continue
        if not 1 <= start <= end <= len(names):
            raise DataError(
                f"row {r}: frames {start}..{end} are outside 1..{len(names)} (the lines of "
                f"{names_path.name}) or start > end; the .mat and the name list do not match",
                path=mat_path,
            )
        if pid < 0 or cam < 1:
            raise DataError(
                f"row {r}: pid {pid} / camid {cam} invalid; expected pid >= -1 and a 1-based camid", path=mat_path
            )
        frame_names = names[start - 1 : end]
        pids, cams = set(), set()
        for i, name in enumerate(frame_names, start - 1):
            m = _NAME.match(name)
            if m is None:
                raise DataError(
                    f"frame name {name!r} does not look like 0001C1T0001F001.jpg", path=names_path, line=lines[i]
                )
            pids.add(m.group(1))
            cams.add(m.group(2))
        if len(pids) != 1 or len(cams) != 1:
            raise DataError(
                f"row {r}: frames {start}..{end} mix persons {sorted(pids)} / cameras {sorted(cams)}; "
                "a tracklet must hold one person seen by one camera",
                path=mat_path,
            )
        name_pid, name_cam = pids.pop(), int(cams.pop())
        if name_pid != f"{pid:04d}" or name_cam != cam:
            raise DataError(
                f"row {r}: says pid {pid} camera {cam} but its frames are {name_pid} camera {name_cam}; "
                "the .mat and the name list do not match",
                path=mat_path,
            )
        frames = tuple(os.path.join(base, n[:4], n) for n in frame_names)
        out.append(Tracklet(frames, int(pid), int(cam) - 1, "", name_pid))
    return out, junk


def _verify(tracklets: list[Tracklet], names_path: Path) -> None:
    missing = [f for t in tracklets for f in t.frames if not os.path.isfile(f)]
    if missing:
        raise DataError(
            f"frame listed in {names_path.name} is missing ({len(missing)} missing in all); restore the bbox folders",
            path=missing[0],
        )


def load_mars(root: str | Path, verify_frames: bool = False) -> TrackletDataset:
    """Load MARS from ``root`` (see the module docstring for the layout and conventions).

    Args:
        root: the MARS folder (holding ``bbox_train/``, ``bbox_test/`` and ``info/``).
        verify_frames: also check that every listed frame file exists (slow on the full dataset).

    Returns:
        A :class:`~cgclip.data.tracklet.TrackletDataset` with relabelled train pids; identity = the 4-digit pid.

    Raises:
        DataError: a missing folder or file, a wrong .mat key or shape, a row out of range, a tracklet mixing persons
            or cameras, or (with ``verify_frames``) a missing frame.
    """
    root = Path(root).absolute()
    info_dir = root / "info"
    for sub in ("bbox_train", "bbox_test", "info"):
        if not (root / sub).is_dir():
            raise DataError(f"missing MARS folder {sub}/; expected bbox_train/, bbox_test/ and info/", path=root / sub)
    tr_names_path, te_names_path = info_dir / "train_name.txt", info_dir / "test_name.txt"
    tr_names, tr_lines = _read_names(tr_names_path)
    te_names, te_lines = _read_names(te_names_path)
    tr_mat, te_mat = info_dir / "tracks_train_info.mat", info_dir / "tracks_test_info.mat"
    tr_tracks = _load_tracks(tr_mat, "track_train_info")
    te_tracks = _load_tracks(te_mat, "track_test_info")
    q_rows = _load_query_rows(info_dir / "query_IDX.mat", len(te_tracks))

    train_rows, train_junk = _build(tr_tracks, tr_names, tr_lines, root, "bbox_train", tr_mat, tr_names_path)
    test_rows, test_junk = _build(te_tracks, te_names, te_lines, root, "bbox_test", te_mat, te_names_path)
    train = [t for t in train_rows if t is not None]
    query = [test_rows[r] for r in q_rows if test_rows[r] is not None]
    q_set = set(q_rows)
    gallery = [t for r, t in enumerate(test_rows) if r not in q_set and t is not None]
    if len(query) != len(q_rows):
        log.warning("MARS: %d query rows are junk (pid -1) and were dropped", len(q_rows) - len(query))
    if not train:
        raise DataError("no training tracklet left after dropping junk rows; expected pid >= 0 rows", path=tr_mat)
    if verify_frames:
        _verify(train, tr_names_path)
        _verify([t for t in test_rows if t is not None], te_names_path)
    train, _ = relabel(train)
    info = {
        "gallery_convention": GALLERY_CONVENTION,
        "query_rows": len(q_rows),
        "junk_tracklets_dropped": {"train": train_junk, "test": test_junk},
        "distractor_tracklets": sum(1 for t in gallery if t.pid == 0),
        "camid": "0-based (file camid - 1)",
        "frame_paths": "absolute",
    }
    log.info(
        "MARS: %d train / %d query / %d gallery tracklets (%d junk dropped)",
        len(train),
        len(query),
        len(gallery),
        train_junk + test_junk,
    )
    return TrackletDataset("mars", str(root), train, query, gallery, info)


def detect(root: Path) -> bool:
    """Whether ``root`` holds MARS (``info/`` and ``bbox_test/`` folders, but not LS-VID's ``info/list_sequence/``)."""
    info = root / "info"
    return info.is_dir() and (root / "bbox_test").is_dir() and not (info / "list_sequence").is_dir()
