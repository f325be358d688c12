"""Frames of a MOT sequence stored as one video file (``SEQ/match.mp4`` instead of ``SEQ/img1/``), decoded with PyAV.

MOT frame numbers are 1-based: frame 1 is the first frame the decoder returns (presentation order), frame ``n`` the
``n``-th. A video is decoded from its start in one pass; :func:`iter_frames` turns only the wanted frames into
images and stops after the last one. PyAV is imported when a function needs it, so image-folder datasets never
load it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from cgclip.errors import DataError

log = logging.getLogger(__name__)

#: File name endings (lower case) taken as a sequence's video.
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")

_FIX = "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4, or extract the frames into img1/"


def _decode_error(path: Path, exc: BaseException) -> DataError:
    """The one-line error for a video PyAV cannot open or decode."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    reason = " ".join(str(reason).split())
    return DataError(f"cannot decode video ({type(exc).__name__}: {reason}): {_FIX}", path=path)


def _errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError, EOFError)


def _open(path: Path) -> tuple[Any, Any]:
    """Open ``path`` with PyAV and return (container, its first video stream)."""
    import av

    if not path.is_file():
        raise DataError("video file not found; a video sequence needs its video file", path=path)
    try:
        container = av.open(str(path))
    except _errors() as exc:
        raise _decode_error(path, exc) from exc
    if not container.streams.video:
        container.close()
        raise DataError(f"no video stream in this file: {_FIX}", path=path)
    return container, container.streams.video[0]


def find_video(seq_dir: str | Path, im_dir: str | None = None) -> Path | None:
    """The video file holding the frames of sequence folder ``seq_dir``, or None when it has none.

    Args:
        seq_dir: the sequence folder.
        im_dir: seqinfo.ini's ``imDir``, if any. When it names a video file (by its ending, see :data:`VIDEO_EXTS`)
            that file is the video; when it names an existing folder, the sequence is an image folder (None).

    Returns:
        The video: ``imDir``'s file, or the only video file directly in ``seq_dir`` when there is no image folder
        (``imDir`` or ``img1/``); None when the sequence has an image folder or no video.

    Raises:
        DataError: ``imDir`` names a video file that does not exist, or ``seq_dir`` holds two or more videos.
    """
    seq_dir = Path(seq_dir)
    im_dir = (im_dir or "").strip() or None
    named = seq_dir / (im_dir or "img1")
    if im_dir is not None and named.suffix.lower() in VIDEO_EXTS:
        if not named.is_file():
            raise DataError("seqinfo.ini's imDir names this video file, but it does not exist; fix imDir", path=named)
        return named
    if named.is_dir() or not seq_dir.is_dir():
        return None
    videos = sorted(
        p.name
        for p in seq_dir.iterdir()
        if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith(".") and p.is_file()
    )
    if len(videos) > 1:
        raise DataError(
            f"{len(videos)} video files ({', '.join(videos)}); keep one video per sequence folder (one camera each) "
            "or name it in seqinfo.ini's imDir",
            path=seq_dir,
        )
    return seq_dir / videos[0] if videos else None


def probe_video(path: str | Path, count_frames: bool = True) -> tuple[int, int, int]:
    """Number of frames and frame size of a video; decodes its first frame to make sure it can be decoded.

    The frame count is the container's when it records one (MP4, MOV, AVI); otherwise (MKV, WebM) the video packets
    are counted by reading the file without decoding them (one packet per frame for the usual codecs), which is
    much cheaper than decoding.

    Args:
        path: the video file.
        count_frames: False: do not count packets when the container gives no count (the count is then 0).

    Returns:
        (num_frames, width, height).

    Raises:
        DataError: the file is missing, has no video stream, or cannot be opened or decoded (one line with the fix).
    """
    path = Path(path)
    container, stream = _open(path)
    with container:
        count = int(stream.frames or 0)
        packets, first = 0, None
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                if first is None:
                    frames = packet.decode()  # an empty packet at the end flushes the decoder
                    first = frames[0] if frames else None
                if first is not None and (count > 0 or not count_frames):
                    break
        except _errors() as exc:
            raise _decode_error(path, exc) from exc
        if first is None:
            raise DataError(f"no decodable video frame: {_FIX}", path=path)
        width, height = int(first.width), int(first.height)
    if count <= 0 and count_frames:
        count = packets
        log.debug("%s: the container gives no frame count; %d video packets counted", path, count)
    return count, width, height


def iter_frames(path: str | Path, wanted: Collection[int]) -> Iterator[tuple[int, Image.Image]]:
    """Decode ``path`` once and yield ``(frame, RGB image)`` for the 1-based frame numbers in ``wanted``, in order.

    Decoding stops after the largest wanted frame. Wanted frames the video does not have (beyond its end) are simply
    not yielded: the caller compares what it got with what it asked for.

    Raises:
        DataError: the file cannot be opened or a frame cannot be decoded (one line with the fix).
    """
    path = Path(path)
    if not wanted:
        return
    last = max(wanted)
    container, stream = _open(path)
    with container:
        stream.thread_type = "AUTO"
        frames = container.decode(stream)
        number = 0
        while number < last:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except _errors() as exc:
                raise _decode_error(path, exc) from exc
            number += 1
            if number in wanted:
                yield number, frame.to_image()
