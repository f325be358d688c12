"""Reading multi-object-tracking (MOT) sequences: ``SEQ/{seqinfo.ini, img1/, gt/gt.txt}``.

The reader accepts the variants found in the wild:

* ``gt.txt`` rows ``frame, id, left, top, width, height, conf, class, visibility`` separated by ``","`` or ``", "``
  (SportsMOT) or by whitespace; 6 to 10+ columns (a missing ``conf`` is 1, a missing or negative ``class`` means
  "not given", a missing or negative ``visibility`` is 1.0; columns after the ninth are ignored, as in MOT15's world
  coordinates).
* Track ids starting at 0 (SportsMOT) or 1 (MOT17, DanceTrack): ids are only labels.
* Frame files named by the zero-padded frame number with any width (``000001.jpg`` on MOT17, ``00000001.jpg`` on
  DanceTrack): the names are taken from the files in the image folder.
* ``seqinfo.ini`` may lack ``imWidth``/``imHeight`` (read from the first image) or be absent (``img1`` and the
  extension of the files found there are used).
* The frames may be one video file instead of an image folder (``SEQ/{match.mp4, gt/gt.txt}``, or ``imDir`` naming
  the video): see :mod:`cgclip.data.video`. ``gt.txt`` may then be any tracker's MOT-format output
  (``frame,id,x,y,w,h,score,-1,-1,-1``).
"""

from __future__ import annotations

import configparser
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cgclip.data.video import VIDEO_EXTS, find_video, probe_video
from cgclip.errors import DataError
from cgclip.io_utils import read_text

log = logging.getLogger(__name__)

GT_FORMAT = "frame, id, left, top, width, height[, conf[, class[, visibility]]] (',' or ', ' separated numbers)"
PEDESTRIAN_CLASS = 1
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class MotBox:
    """One ground-truth row of a MOT sequence.

    Attributes:
        frame: frame number as written in gt.txt (1-based in MOT data).
        track_id: track label (0- or 1-based; only a label).
        left, top, width, height: the box in pixels (may extend beyond the image).
        conf: the row's confidence / "consider" flag (0 = ignore).
        cls: object class, or None when the file does not give one.
        visibility: visible fraction in [0, 1] (1.0 when not given).
        line: line number of the row in gt.txt (1-based), for messages.
    """

    frame: int
    track_id: int
    left: float
    top: float
    width: float
    height: float
    conf: float = 1.0
    cls: int | None = None
    visibility: float = 1.0
    line: int = 0


@dataclass
class MotSequence:
    """A MOT sequence folder: its name, image folder (or video file), frame files and image size.

    Attributes:
        name: sequence name: the folder name (what track_mapping.csv refers to), not seqinfo.ini's ``name``.
        root: the sequence folder.
        image_dir: folder holding the frame images (for a video sequence: the folder holding the video).
        length: number of frames (``seqLength``, or the number of frame files, or the video's frame count).
        width, height: image size in pixels.
        frame_files: frame number → image file name inside ``image_dir`` (empty for a video sequence).
        frame_digits: zero-padded width of the frame names (0 when they are not padded consistently, or a video).
        video: the video file holding the frames, or None for an image folder.
    """

    name: str
    root: Path
    image_dir: Path
    length: int
    width: int
    height: int
    frame_files: dict[int, str] = field(default_factory=dict, repr=False)
    frame_digits: int = 0
    video: Path | None = None

    @property
    def gt_path(self) -> Path:
        """Path of the sequence's ground-truth file ``gt/gt.txt``."""
        return self.root / "gt" / "gt.txt"

    def frame_path(self, frame: int) -> Path | None:
        """Path of the image of ``frame``, or None when no such file exists.

        For a video sequence: the video file for frames ``1..length``, None for any other frame (so a gt row beyond
        the video's end counts as a missing image). The video may still turn out shorter than ``length`` when it is
        decoded; the builder counts those frames as missing too.
        """
        if self.video is not None:
            return self.video if 1 <= frame <= self.length else None
        name = self.frame_files.get(frame)
        return self.image_dir / name if name is not None else None


#: Largest absolute value accepted in a gt.txt column (frames, ids, pixels): guards against 1e308-style garbage.
MAX_COORDINATE = 1e7


def _parse_number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"column {column!r} is {text!r}, not a number; expected rows like {GT_FORMAT}", path=path, line=line
        ) from None
    if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
        raise DataError(
            f"column {column!r} is {text!r}, not a finite number of at most {MAX_COORDINATE:g}; fix or delete this row",
            path=path,
            line=line,
        )
    return value


def _parse_int(text: str, path: Path, line: int, column: str) -> int:
    value = _parse_number(text, path, line, column)
    if value != int(value):
        raise DataError(
            f"column {column!r} is {text!r}, not an integer; expected rows like {GT_FORMAT}", path=path, line=line
        )
    return int(value)


def parse_gt_line(text: str, path: Path, line: int) -> MotBox | None:
    """Parse one gt.txt line into a :class:`MotBox` (None for a blank or ``#`` comment line).

    Raises:
        DataError: the row is malformed; the message names ``path:line`` and the expected format.
    """
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    parts = [p.strip() for p in text.split(",")] if "," in text else text.split()
    if len(parts) < 6 or any(p == "" for p in parts):
        raise DataError(
            f"malformed row {text[:60]!r} ({len(parts)} fields); expected {GT_FORMAT}", path=path, line=line
        )
    frame = _parse_int(parts[0], path, line, "frame")
    track_id = _parse_int(parts[1], path, line, "id")
    left, top, width, height = (
        _parse_number(parts[i], path, line, c) for i, c in zip(range(2, 6), ("left", "top", "width", "height"))
    )
    conf = _parse_number(parts[6], path, line, "conf") if len(parts) > 6 else 1.0
    cls: int | None = None
    if len(parts) > 7:
        cls = _parse_int(parts[7], path, line, "class")
        cls = cls if cls >= 0 else None
    visibility = _parse_number(parts[8], path, line, "visibility") if len(parts) > 8 else 1.0
    if visibility < 0:
        visibility = 1.0
    return MotBox(frame, track_id, left, top, width, height, conf, cls, min(visibility, 1.0), line)


def read_gt(
    path: str | Path, classes: Sequence[int] | None = (PEDESTRIAN_CLASS,), keep_zero_conf: bool = False
) -> tuple[list[MotBox], int]:
    """Read a gt.txt file and keep the rows to use.

    Args:
        path: the gt.txt file.
        classes: class ids to keep (default pedestrians, class 1); rows without a class are always kept;
            None keeps every class.
        keep_zero_conf: keep rows whose ``conf`` is 0 (MOT's "ignore this box" flag); dropped by default.

    Returns:
        (kept rows in file order, number of rows left out by the conf/class filter).

    Raises:
        DataError: the file is missing or a row is malformed (names ``path:line``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("ground-truth file not found; a MOT sequence needs gt/gt.txt", path=path)
    keep = None if classes is None else set(classes)
    boxes: list[MotBox] = []
    ignored = 0
    for number, text in enumerate(read_text(path, "gt.txt").splitlines(), start=1):
        box = parse_gt_line(text, path, number)
        if box is None:
            continue
        if (box.conf == 0 and not keep_zero_conf) or (keep is not None and box.cls is not None and box.cls not in keep):
            ignored += 1
            continue
        boxes.append(box)
    return boxes, ignored


def group_tracks(boxes: Iterable[MotBox], path: str | Path = "gt.txt") -> dict[int, list[MotBox]]:
    """Group rows by track id (ids in ascending order), each track sorted by frame.

    Raises:
        DataError: a track has two rows for the same frame (names ``path`` and both lines).
    """
    tracks: dict[int, dict[int, MotBox]] = {}
    for box in boxes:
        frames = tracks.setdefault(box.track_id, {})
        if box.frame in frames:
            raise DataError(
                f"track {box.track_id} has a second row for frame {box.frame} (first at line "
                f"{frames[box.frame].line}); expected one row per track and frame",
                line=box.line,
                path=path,
            )
        frames[box.frame] = box
    return {tid: [frames[f] for f in sorted(frames)] for tid, frames in sorted(tracks.items())}


def _read_seqinfo(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep key case (imDir, seqLength, ...)
    try:
        parser.read_string(read_text(path, "seqinfo.ini"), source=str(path))
    except configparser.Error as exc:
        raise DataError(
            f"not a valid ini file ({type(exc).__name__}); expected a [Sequence] section with "
            "imDir, imExt, seqLength, imWidth, imHeight",
            path=path,
        ) from exc
    if not parser.has_section("Sequence"):
        raise DataError("no [Sequence] section; expected imDir, imExt, seqLength, imWidth, imHeight", path=path)
    return dict(parser.items("Sequence"))


def _int_field(info: dict[str, str], key: str, path: Path) -> int | None:
    if key not in info or not info[key].strip():
        return None
    try:
        return int(info[key])
    except ValueError:
        raise DataError(f"{key} is {info[key]!r}, expected an integer", path=path) from None


def _frame_index(image_dir: Path, ext: str | None) -> tuple[dict[int, str], int, str]:
    """Map frame numbers to file names in ``image_dir``; returns (map, padded digit width or 0, extension)."""
    files: dict[int, str] = {}
    widths: set[int] = set()
    exts: dict[str, int] = {}
    for entry in sorted(image_dir.iterdir()):
        stem, suffix = entry.stem, entry.suffix
        if not re.fullmatch(r"\d+", stem) or not entry.is_file():
            continue
        if ext is not None and suffix.lower() != ext.lower():
            continue
        if ext is None and suffix.lower() not in IMAGE_EXTS:
            continue
        exts[suffix] = exts.get(suffix, 0) + 1
        files.setdefault(int(stem), entry.name)
        widths.add(len(stem))
    found_ext = ext or (max(exts, key=exts.get) if exts else "")
    return files, (widths.pop() if len(widths) == 1 else 0), found_ext


def read_sequence(root: str | Path) -> MotSequence:
    """Read a MOT sequence folder (``seqinfo.ini``, the image folder and its frame names).

    When the image folder (``imDir``, default ``img1``) does not exist and the folder holds one video file (or
    ``imDir`` names one), the sequence is that video (:func:`cgclip.data.video.find_video`): ``seqLength``,
    ``imWidth`` and ``imHeight`` come from seqinfo.ini when given, else from the video
    (:func:`cgclip.data.video.probe_video`); the video's first frame is decoded in any case, so that a file PyAV
    cannot read is refused here, before anything is written.

    Raises:
        DataError: the image folder is missing (and there is no video) or empty, ``seqinfo.ini`` is malformed, the
            folder holds two videos, or the video cannot be decoded.
    """
    root = Path(root)
    ini = root / "seqinfo.ini"
    info = _read_seqinfo(ini) if ini.is_file() else {}
    if not info:
        log.info("%s: no seqinfo.ini; using img1/ and the image files found there", root)
    image_dir = root / info.get("imDir", "img1").strip()
    if not image_dir.is_dir():
        video = find_video(root, info.get("imDir"))
        if video is not None:
            return _video_sequence(root, video, info, ini)
        raise DataError(
            "image folder not found; expected the frames in img1/ (or seqinfo.ini's imDir) or one video file "
            f"({' '.join(VIDEO_EXTS)}) in the sequence folder",
            path=image_dir,
        )
    ext = info.get("imExt", "").strip() or None
    if ext is not None and not ext.startswith("."):
        ext = "." + ext
    files, digits, _ = _frame_index(image_dir, ext)
    if not files:
        raise DataError(f"no frame images named by frame number (like 000001{ext or '.jpg'}) found", path=image_dir)
    length = _int_field(info, "seqLength", ini) or max(files)
    width, height = _int_field(info, "imWidth", ini), _int_field(info, "imHeight", ini)
    if width is None or height is None:
        first = image_dir / files[min(files)]
        try:
            with Image.open(first) as img:
                width, height = img.size
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(
                f"cannot read the image size ({exc}); add imWidth/imHeight to seqinfo.ini", path=first
            ) from exc
    missing = sum(1 for f in range(1, length + 1) if f not in files)
    if missing:
        log.warning("%s: %d of %d frames have no image file", image_dir, missing, length)
    return MotSequence(root.name, root, image_dir, length, width, height, files, digits)


def _video_sequence(root: Path, video: Path, info: dict[str, str], ini: Path) -> MotSequence:
    """The :class:`MotSequence` of a sequence whose frames are the video file ``video``."""
    length = _int_field(info, "seqLength", ini)
    width, height = _int_field(info, "imWidth", ini), _int_field(info, "imHeight", ini)
    frames, video_width, video_height = probe_video(video, count_frames=not length)
    if length and frames and frames != length:
        log.warning(
            "%s: seqinfo.ini says seqLength=%d but the video has %d frames; frames beyond its end count as missing",
            video,
            length,
            frames,
        )
    if width is None or height is None:
        width, height = video_width, video_height
    length = length or frames
    log.info("%s: frames from the video %s (%d frames, %dx%d)", root, video.name, length, width, height)
    return MotSequence(root.name, root, video.parent, length, width, height, video=video)


def list_sequences(split_dir: str | Path) -> list[Path]:
    """Sequence folders of one split folder (sub-folders holding ``gt/`` or ``seqinfo.ini``), sorted by name.

    Raises:
        DataError: the split folder is missing or holds no sequence.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(
            "split folder not found; expected ROOT/<split>/<sequence>/{seqinfo.ini,img1/,gt/gt.txt}", path=split_dir
        )
    seqs = [
        p for p in sorted(split_dir.iterdir()) if p.is_dir() and ((p / "gt").is_dir() or (p / "seqinfo.ini").is_file())
    ]
    if not seqs:
        raise DataError("no MOT sequence found (sub-folders with seqinfo.ini and gt/gt.txt)", path=split_dir)
    return seqs
