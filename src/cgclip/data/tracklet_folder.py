"""A dataset of plain tracklet folders: the simplest way to train and test on one's own footage.

Folder layout::

    ROOT/train/PID/TRACKLET/*.jpg     frames of one tracklet (.jpg .jpeg .png .bmp .webp), in natural name order
    ROOT/query/PID/TRACKLET/...       optional, together with gallery/: the test split
    ROOT/gallery/PID/TRACKLET/...
    ROOT/cameras.csv                  optional: columns split,pid,tracklet,camera

``PID`` is a folder named by a non-negative integer (``7`` and ``0007`` are the same person, so both in one split
is an error); ``TRACKLET`` is any folder name. Frames are sorted by name with digit runs compared as numbers
(``f2.jpg`` before ``f10.jpg``; zero-padded names sort as plain text does). Names starting with ``.`` are ignored,
and so are non-image files; images directly in a ``PID`` folder are refused (a tracklet needs its own folder).
A folder with only ``train/`` is a training set; ``query/`` and ``gallery/`` share one pid numbering (a query's
matches are the gallery tracklets of its pid). Train pids are relabelled ``0..N-1``; query/gallery pids keep their
number; ``identity`` is the ``PID`` folder name. Frame sizes may differ within a tracklet (every frame is resized
to ``data.image_size``, and crops of a tracker's boxes grow and shrink); every frame must be a readable image
(the first and last of each tracklet are checked, every frame with ``verify_frames``).

Camera ids (``info["camera_ids"]``, one of :data:`CAMERA_IDS`):

* ``"csv"`` — ``ROOT/cameras.csv`` gives every tracklet's camera: one row per tracklet folder, ``split`` one of
  train/query/gallery, ``pid`` the person number, ``tracklet`` the folder name, ``camera`` a non-negative integer.
  It wins over folder names.
* ``"names"`` — every tracklet folder name holds one part ``cN`` or ``camN`` (parts split at ``_``, ``-``, ``.``,
  case ignored; e.g. ``c2_t001``, ``walk-cam0``): the camera id is ``N`` as written (0-based or 1-based, as you
  like: camera ids are only compared, nothing is subtracted).
* ``"none"`` — neither: every tracklet is camera 0. Evaluation must then keep same-camera matches
  (``eval.same_camera=keep``), or every positive would be dropped.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from cgclip.data.mot import IMAGE_EXTS
from cgclip.data.tracklet import DATASET_SPLITS, Tracklet, TrackletDataset, relabel
from cgclip.errors import DataError

log = logging.getLogger(__name__)

NAME = "folder"
CAMERAS_CSV = "cameras.csv"
CSV_COLUMNS = ("split", "pid", "tracklet", "camera")
#: Where the camera ids came from (``info["camera_ids"]``); ``"none"`` means every tracklet is camera 0.
CAMERA_IDS = ("csv", "names", "none")
LAYOUT = "ROOT/{train,query,gallery}/PID/TRACKLET/*.jpg"

_NUMBER = re.compile(r"^[0-9]+$")
_CAMERA_PART = re.compile(r"^(?:c|cam)([0-9]+)$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[_.\-]")

#: (split, pid, tracklet folder name) -> frame paths
Found = dict[tuple[str, int, str], tuple[str, ...]]


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key comparing digit runs as numbers (``f2`` before ``f10``), then the plain name (``01`` vs ``1``)."""
    parts: list[str | int] = [int(p) if i % 2 else p for i, p in enumerate(re.split(r"([0-9]+)", name))]
    return parts, name


def _visible(entries: Sequence[os.DirEntry[str]]) -> list[os.DirEntry[str]]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: natural_key(e.name))


def _is_image(entry: os.DirEntry[str]) -> bool:
    return entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTS


def _scan_split(split_dir: Path, split: str, found: Found, identities: dict[tuple[str, int], str]) -> None:
    """Add every tracklet of ``split_dir`` to ``found`` and each pid's folder name to ``identities``."""
    with os.scandir(split_dir) as it:
        entries = _visible(list(it))
    people = [e for e in entries if e.is_dir()]
    if not people:
        raise DataError(f"no person folder in {split}/; expected {LAYOUT}", path=split_dir)
    for person in people:
        if _NUMBER.match(person.name) is None:
            raise DataError(
                f"person folder {person.name!r} is not a number; name each person's folder by a non-negative "
                f"integer ({LAYOUT})",
                path=person.path,
            )
        pid = int(person.name)
        if (split, pid) in identities:
            raise DataError(
                f"person {pid} has two folders in {split}/ ({identities[(split, pid)]!r} and {person.name!r}); "
                "merge them",
                path=person.path,
            )
        identities[(split, pid)] = person.name
        with os.scandir(person.path) as it:
            inside = _visible(list(it))
        if any(_is_image(e) for e in inside):
            raise DataError(
                f"images directly in a person folder; put each tracklet's frames in its own subfolder ({LAYOUT})",
                path=person.path,
            )
        tracklets = [e for e in inside if e.is_dir()]
        if not tracklets:
            raise DataError(f"no tracklet folder in this person folder; expected {LAYOUT}", path=person.path)
        for tracklet in tracklets:
            with os.scandir(tracklet.path) as it:
                frames = tuple(e.path for e in _visible(list(it)) if _is_image(e))
            if not frames:
                raise DataError(
                    f"no frame ({', '.join(IMAGE_EXTS)}) in this tracklet folder; put the tracklet's images "
                    f"directly in it ({LAYOUT}) or remove it",
                    path=tracklet.path,
                )
            found[(split, pid, tracklet.name)] = frames


def read_cameras_csv(path: Path, found: Found) -> dict[tuple[str, int, str], int]:
    """The camera id of every tracklet in ``found`` from ``cameras.csv`` (columns ``split,pid,tracklet,camera``).

    Raises:
        DataError: a wrong header, a malformed, repeated or unknown row (named with its line), or a tracklet
            without a row.
    """
    fix = f"expected columns {','.join(CSV_COLUMNS)} with one row per tracklet folder"
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read cameras.csv ({type(exc).__name__}); {fix}", path=path) from exc
    header = [c.strip() for c in rows[0]] if rows else []
    if sorted(header) != sorted(CSV_COLUMNS):
        raise DataError(f"header is {','.join(header) or 'empty'}; {fix}", path=path, line=1)
    col = {name: header.index(name) for name in CSV_COLUMNS}
    cameras: dict[tuple[str, int, str], int] = {}
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            raise DataError(f"{len(row)} fields; {fix}", path=path, line=line)
        split, pid, tracklet, camera = (row[col[name]].strip() for name in CSV_COLUMNS)
        if split not in DATASET_SPLITS:
            raise DataError(f"split {split!r} is not one of {', '.join(DATASET_SPLITS)}", path=path, line=line)
        if _NUMBER.match(pid) is None or _NUMBER.match(camera) is None:
            raise DataError(
                f"pid {pid!r} / camera {camera!r}: both must be non-negative integers", path=path, line=line
            )
        key = (split, int(pid), tracklet)
        if key not in found:
            raise DataError(
                f"no tracklet folder {split}/{pid}/{tracklet}; fix the row or remove it", path=path, line=line
            )
        if key in cameras:
            raise DataError(f"tracklet {split}/{pid}/{tracklet} has a second row; keep one", path=path, line=line)
        cameras[key] = int(camera)
    missing = [k for k in found if k not in cameras]
    if missing:
        split, pid, tracklet = missing[0]
        raise DataError(
            f"tracklet {split}/{pid}/{tracklet} has no row ({len(missing)} tracklets lack one); every tracklet "
            "needs a camera",
            path=path,
        )
    return cameras


def camera_from_name(name: str) -> int | None:
    """The camera id written in a tracklet folder name (its one ``cN`` / ``camN`` part), or None when it has none.

    Raises:
        DataError: the name holds two camera parts.
    """
    cams = [m.group(1) for part in _SEPARATORS.split(name) if (m := _CAMERA_PART.match(part))]
    if len(cams) > 1:
        raise DataError(f"tracklet folder {name!r} names two cameras (c{cams[0]}, c{cams[1]}); keep one cN part")
    return int(cams[0]) if cams else None


def _cameras_from_names(
    root: Path, found: Found, identities: dict[tuple[str, int], str]
) -> dict[tuple[str, int, str], int] | None:
    """Camera ids from the tracklet folder names; None when no name holds one."""
    named = {}
    for key in found:
        split, pid, tracklet = key
        try:
            named[key] = camera_from_name(tracklet)
        except DataError as exc:
            raise DataError(exc.message, path=root / split / identities[(split, pid)] / tracklet) from None
    if all(cam is None for cam in named.values()):
        return None
    bare = [k for k, cam in named.items() if cam is None]
    if bare:
        split, pid, tracklet = bare[0]
        raise DataError(
            f"tracklet folder {tracklet!r} has no cN/camN part while others have one ({len(bare)} lack one); "
            f"name every tracklet folder with its camera, or none, or list them in {CAMERAS_CSV}",
            path=root / split / identities[(split, pid)] / tracklet,
        )
    return {k: int(cam) for k, cam in named.items() if cam is not None}


def _check_images(tracklets: Sequence[Tracklet], every_frame: bool) -> None:
    """Open the header of the first and last frame of each tracklet (every frame with ``every_frame``)."""
    for t in tracklets:
        for frame in t.frames if every_frame else dict.fromkeys((t.frames[0], t.frames[-1])):
            try:
                with Image.open(frame):  # reads the header only
                    pass
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                raise DataError(
                    f"not a readable image ({type(exc).__name__}); replace or remove the frame", path=frame
                ) from exc


def load_tracklet_folder(root: str | Path, verify_frames: bool = False) -> TrackletDataset:
    """Load a tracklet-folder dataset (see the module docstring for the layout and the camera rules).

    Args:
        root: the folder holding ``train/`` and/or ``query/`` + ``gallery/``.
        verify_frames: open every frame's header (default: the first and last frame of each tracklet).

    Returns:
        A :class:`~cgclip.data.tracklet.TrackletDataset` with absolute frame paths, relabelled train pids and
        ``info["camera_ids"]`` saying where the camera ids came from (``csv``, ``names`` or ``none``).

    Raises:
        DataError: no split folder, a split without persons, a person folder that is not a number or holds no
            tracklet folder, a tracklet folder without frames, an unreadable frame, ``query/`` without ``gallery/``
            (or the reverse), or a malformed ``cameras.csv`` or camera part of a folder name.
    """
    root = Path(root).absolute()
    present = [s for s in DATASET_SPLITS if (root / s).is_dir()]
    if not present:
        raise DataError(f"no train/, query/ or gallery/ folder; expected {LAYOUT}", path=root)
    if ("query" in present) != ("gallery" in present):
        have, lack = ("query", "gallery") if "query" in present else ("gallery", "query")
        raise DataError(f"{have}/ without {lack}/; a test split needs both (or neither, for training only)", path=root)
    found: Found = {}
    identities: dict[tuple[str, int], str] = {}
    for split in present:
        _scan_split(root / split, split, found, identities)
    csv_path = root / CAMERAS_CSV
    if csv_path.is_file():
        cameras, source = read_cameras_csv(csv_path, found), "csv"
    else:
        named = _cameras_from_names(root, found, identities)
        cameras, source = (named, "names") if named is not None else ({k: 0 for k in found}, "none")
    splits: dict[str, list[Tracklet]] = {s: [] for s in DATASET_SPLITS}
    for key, frames in found.items():
        split, pid, _ = key
        splits[split].append(Tracklet(frames, pid, cameras[key], "", identities[(split, pid)]))
    for tracklets in splits.values():
        _check_images(tracklets, verify_frames)
    train, _ = relabel(splits["train"])
    query, gallery = splits["query"], splits["gallery"]
    unmatched = {t.pid for t in query} - {t.pid for t in gallery}
    if unmatched:
        log.warning(
            "%d query persons have no gallery tracklet (e.g. %d): they are skipped", len(unmatched), min(unmatched)
        )
    if source == "none":
        log.warning(
            "%s: no camera ids (no %s, no cN part in tracklet names); every tracklet is camera 0", root, CAMERAS_CSV
        )
    info = {
        "format": f"tracklet folder ({LAYOUT})",
        "camera_ids": source,
        "frame_order": "natural name order (digit runs compared as numbers)",
        "frame_paths": "absolute",
    }
    log.info(
        "%s: %d train / %d query / %d gallery tracklets, cameras from %s",
        root,
        len(train),
        len(query),
        len(gallery),
        source,
    )
    return TrackletDataset(NAME, str(root), train, query, gallery, info)


def detect(root: Path) -> bool:
    """Whether ``root`` is a tracklet folder: its ``train/`` (or ``query/``) holds a folder named by a number."""
    for split in ("train", "query"):
        if (root / split).is_dir():
            with os.scandir(root / split) as it:
                if any(e.is_dir() and _NUMBER.match(e.name) for e in it):
                    return True
    return False
