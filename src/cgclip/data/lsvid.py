"""LS-VID loader with the semantics of TF-CLIP's released loader (AsuradaYuci/TF-CLIP, ``datasets/set/lsvid.py``).

Folder layout (as distributed, the paths TF-CLIP reads)::

    ROOT/info/list_sequence/list_seq_train.txt  one tracklet per line: "PATH-PREFIX PID" (prefix relative to ROOT)
    ROOT/info/list_sequence/list_seq_test.txt
    ROOT/info/data/info_test.mat                MATLAB v7.3 (HDF5) file; dataset 'query': 1-based lines of the test list
    ROOT/tracklet_train/..., ROOT/tracklet_test/...   the frames, wherever the prefixes point

A tracklet's frames are the files whose path starts with ``ROOT/PATH-PREFIX``, in name order (TF-CLIP:
``sorted(glob(ROOT/PATH-PREFIX + "*"))``; like that glob, names starting with ``.`` only match a prefix that does).
Its camera is the third ``_``-separated field of its first frame's name, 1..15 in the files, 0-based here.
Lines with pid −1 (junk) are dropped everywhere. Query = the test lines listed in ``query`` (file order; a repeated
line is kept, as TF-CLIP does); gallery = the other test lines; TF-CLIP then ranks each query against
query+gallery. Train pids are relabelled 0..N-1; query/gallery keep theirs; identity = the pid as a string.

Where this loader differs from TF-CLIP's code:

* TF-CLIP's ``LSVID`` defaults to ``sampling_step=48`` and trains on 48-frame chunks of each training tracklet
  (tracklets shorter than 48 frames give none); here each training line is one tracklet.
* TF-CLIP reads row 0 of the ``query`` array as h5py exposes it (the whole vector when it is (1, N), as a MATLAB
  column vector is stored); here any (1, N), (N, 1) or (N,) vector is read whole, and a matrix is refused.
* the prefix is matched literally against files only (glob would read ``[``, ``?``, ``*`` as patterns and match
  folders too), and junk lines are not looked up (TF-CLIP fails on a junk line that matches no frame).

Frame paths are absolute.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel
from cgclip.errors import DataError
from cgclip.io_utils import read_text

log = logging.getLogger(__name__)

TRAIN_LIST = "info/list_sequence/list_seq_train.txt"
TEST_LIST = "info/list_sequence/list_seq_test.txt"
QUERY_MAT = "info/data/info_test.mat"
NUM_CAMERAS = 15
GALLERY_CONVENTION = "gallery = test tracklets not in info_test.mat 'query' (TF-CLIP)"
_DIGITS = re.compile(r"[0-9]+")
_QUERY_EXPECTED = "a 'query' vector of 1-based lines of list_seq_test.txt"


@dataclass(frozen=True)
class _Line:
    """One tracklet line of a sequence list."""

    prefix: str
    pid: int
    lineno: int


def _read_list(path: Path) -> list[_Line]:
    """The tracklet lines of an LS-VID sequence list (blank lines skipped)."""
    if not path.is_file():
        raise DataError(
            "missing LS-VID sequence list; expected info/list_sequence/list_seq_{train,test}.txt "
            "with one 'PATH-PREFIX PID' line per tracklet",
            path=path,
        )
    out = []
    for lineno, raw in enumerate(read_text(path, "LS-VID sequence list").splitlines(), 1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2 or not re.fullmatch(r"-?[0-9]+", fields[1]) or int(fields[1]) < -1:
            raise DataError(
                f"expected 'PATH-PREFIX PID' (two fields, PID an integer >= -1), got {raw.strip()!r}",
                path=path,
                line=lineno,
            )
        out.append(_Line(fields[0], int(fields[1]), lineno))
    if not out:
        raise DataError("empty LS-VID sequence list; expected one 'PATH-PREFIX PID' line per tracklet", path=path)
    return out


class _FrameIndex:
    """Frame lookup by path prefix, listing each folder once (the real dataset has about three million frames)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._folders: dict[str, list[str]] = {}

    def _names(self, folder: str) -> list[str]:
        """The sorted file names of ``folder`` ([] when it does not exist)."""
        names = self._folders.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as it:
                    names = sorted(e.name for e in it if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                names = []
            except OSError as exc:
                raise DataError(
                    f"cannot list this frame folder ({exc.strerror or type(exc).__name__}); make it readable",
                    path=folder,
                ) from None
            self._folders[folder] = names
        return names

    def frames(self, prefix: str) -> list[str]:
        """Absolute paths of the files whose path starts with ``ROOT/prefix``, in name order."""
        folder, start = os.path.split(os.path.join(self.root, prefix))
        names = self._names(folder)
        out = []
        for i in range(bisect.bisect_left(names, start), len(names)):
            if not names[i].startswith(start):
                break
            if start or not names[i].startswith("."):
                out.append(os.path.join(folder, names[i]))
        return out


def _camera(frame: str, line: _Line, list_path: Path) -> int:
    """The 1-based camera of a frame file name (third '_'-separated field)."""
    name = os.path.basename(frame)
    parts = name.split("_")
    if len(parts) < 4 or not _DIGITS.fullmatch(parts[2]) or not 1 <= int(parts[2]) <= NUM_CAMERAS:
        raise DataError(
            f"frame {name!r} (first of prefix {line.prefix!r}): the third '_'-separated field of an LS-VID frame name "
            f"must be its camera number 1..{NUM_CAMERAS} (at least four fields); rename the frames or fix this line",
            path=list_path,
            line=line.lineno,
        )
    return int(parts[2])


def _build(lines: list[_Line], index: _FrameIndex, list_path: Path) -> tuple[list[Tracklet | None], int]:
    """One Tracklet per list line (None for junk lines) and the number of junk lines."""
    out: list[Tracklet | None] = []
    junk = 0
    for line in lines:
        if line.pid == -1:
            out.append(None)
            junk += 1
            continue
        frames = index.frames(line.prefix)
        if not frames:
            raise DataError(
                f"tracklet prefix {line.prefix!r} matches no frame file (looked for "
                f"{os.path.join(index.root, line.prefix)}*); restore the frame folders or fix this line",
                path=list_path,
                line=line.lineno,
            )
        cam = _camera(frames[0], line, list_path)
        out.append(Tracklet(tuple(frames), line.pid, cam - 1, "", str(line.pid)))
    return out, junk


def _load_query_rows(path: Path, num_test: int) -> list[int]:
    """0-based test-list rows of the queries, in file order (dataset ``query`` of the HDF5 file ``path``)."""
    if not path.is_file():
        raise DataError(
            f"missing LS-VID query file; expected {QUERY_MAT} (MATLAB v7.3) with {_QUERY_EXPECTED}", path=path
        )
    try:
        with h5py.File(path, "r") as f:
            if "query" not in f:
                found = ", ".join(f.keys()) or "none"
                raise DataError(f"no dataset 'query' (found: {found}); expected {_QUERY_EXPECTED}", path=path)
            ds = f["query"]
            if not isinstance(ds, h5py.Dataset):
                raise DataError(f"'query' is a group, not an array; expected {_QUERY_EXPECTED}", path=path)
            arr = np.asarray(ds[()])
    except OSError as exc:  # h5py raises OSError on files that are not HDF5
        try:
            with open(path, "rb") as fh:
                v5 = fh.read(10) == b"MATLAB 5.0"
        except OSError:  # unreadable: the message below says why
            v5 = False
        hint = "; it is a MATLAB v5/v7 file: re-save it with save(..., '-v7.3')" if v5 else ""
        raise DataError(
            f"not a readable MATLAB v7.3 (HDF5) file ({type(exc).__name__}: {exc}); expected {_QUERY_EXPECTED}{hint}",
            path=path,
        ) from exc
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) > 1) or arr.size == 0:
        raise DataError(f"'query' has shape {arr.shape}; expected {_QUERY_EXPECTED}", path=path)
    flat = arr.reshape(-1)
    if not np.issubdtype(flat.dtype, np.number) or not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        raise DataError(f"'query' holds non-integer values; expected {_QUERY_EXPECTED}", path=path)
    rows = flat.astype(np.int64)
    bad = rows[(rows < 1) | (rows > num_test)]
    if bad.size:
        raise DataError(
            f"query value {int(bad[0])} is outside 1..{num_test} (the tracklet lines of list_seq_test.txt); "
            "the files do not belong together",
            path=path,
        )
    if len(np.unique(rows)) != len(rows):
        log.warning("LS-VID: %s lists a test line more than once; kept as TF-CLIP does", path)
    return [int(r) - 1 for r in rows]


def load_lsvid(root: str | Path) -> TrackletDataset:
    """Load LS-VID from ``root`` (see the module docstring for the layout and conventions).

    Args:
        root: the LS-VID folder (holding ``info/`` and the frame folders the sequence lists point into).

    Returns:
        A :class:`~cgclip.data.tracklet.TrackletDataset` with relabelled train pids; identity = the listed pid.

    Raises:
        DataError: a missing or malformed sequence list (naming the line), a prefix that matches no frame, a frame
            name without a camera number 1..15, or a missing, unreadable or mismatched ``info_test.mat``.
    """
    root = Path(root).absolute()
    train_path, test_path = root / TRAIN_LIST, root / TEST_LIST
    train_lines, test_lines = _read_list(train_path), _read_list(test_path)
    q_rows = _load_query_rows(root / QUERY_MAT, len(test_lines))

    index = _FrameIndex(root)
    train_rows, train_junk = _build(train_lines, index, train_path)
    test_rows, test_junk = _build(test_lines, index, test_path)
    train = [t for t in train_rows if t is not None]
    query = [test_rows[r] for r in q_rows if test_rows[r] is not None]
    q_set = set(q_rows)
    gallery = [t for r, t in enumerate(test_rows) if r not in q_set and t is not None]
    if len(query) != len(q_rows):
        log.warning("LS-VID: %d query lines are junk (pid -1) and were dropped", len(q_rows) - len(query))
    if not train:
        raise DataError("no training tracklet left after dropping junk lines; expected pid >= 0 lines", path=train_path)
    train, _ = relabel(train)
    info = {
        "gallery_convention": GALLERY_CONVENTION,
        "query_rows": len(q_rows),
        "junk_tracklets_dropped": {"train": train_junk, "test": test_junk},
        "train_tracklets": "one per list line (TF-CLIP's released loader trains on 48-frame chunks)",
        "camid": "0-based (third '_' field of the first frame's name - 1)",
        "frame_paths": "absolute",
    }
    log.info(
        "LS-VID: %d train / %d query / %d gallery tracklets (%d junk dropped)",
        len(train),
        len(query),
        len(gallery),
        train_junk + test_junk,
    )
    return TrackletDataset("lsvid", str(root), train, query, gallery, info)


def detect(root: Path) -> bool:
    """Whether ``root`` holds LS-VID (an ``info/list_sequence/`` folder, which MARS does not have)."""
    return (root / "info" / "list_sequence").is_dir()
