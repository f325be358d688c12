"""Reading frame images for the training and evaluation pipeline.

Frames are decoded with PIL and converted to RGB. :func:`read_rgb` forces the full decode (PIL opens lazily), so a
truncated or corrupt file is detected here and not later in a worker. :func:`read_tracklet_frames` reads several frames
of one tracklet and replaces an unreadable frame by the nearest readable frame of the same tracklet, reporting it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PIL import Image

from cgclip.errors import DataError

log = logging.getLogger(__name__)


class FrameReadError(Exception):
    """A single frame could not be read; ``reason`` says why (missing, unreadable, corrupt)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_rgb(path: str) -> Image.Image:
    """Read one image file fully and return it as an RGB PIL image; raise :class:`FrameReadError` on failure."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise FrameReadError(path, "file not found") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FrameReadError(path, f"cannot decode image ({type(exc).__name__}: {exc})") from exc


def _nearest_order(i: int, n: int) -> list[int]:
    """Indices of a tracklet of ``n`` frames ordered by distance to ``i`` (earlier frame first on ties)."""
    order = []
    for d in range(1, n):
        for j in (i - d, i + d):
            if 0 <= j < n:
                order.append(j)
    return order


def read_tracklet_frames(
    frames: Sequence[str],
    indices: Sequence[int],
    reader: Callable[[int], object],
    bad_frames: dict[str, str],
) -> dict[int, object]:
    """Read frames ``indices`` (positions in ``frames``) with ``reader(position)``, substituting unreadable ones.

    A frame whose reader raises :class:`FrameReadError` is recorded in ``bad_frames`` (path → reason; a warning is
    logged the first time a path goes bad) and replaced by the nearest readable frame of the same tracklet. Frames
    already listed in ``bad_frames`` are not tried again. Returns ``{position: image}`` for every requested position.

    Raises:
        DataError: no frame of the tracklet can be read (names the tracklet's first frame).
    """
    n = len(frames)
    loaded: dict[int, object] = {}

    def try_read(pos: int) -> object | None:
        if pos in loaded:
            return loaded[pos]
        path = frames[pos]
        if path in bad_frames:
            return None
        try:
            img = reader(pos)
        except FrameReadError as exc:
            bad_frames[path] = exc.reason
            log.warning("unreadable frame %s (%s); using the nearest readable frame of its tracklet", path, exc.reason)
            return None
        loaded[pos] = img
        return img

    out: dict[int, object] = {}
    for pos in indices:
        if pos in out:
            continue
        img = try_read(pos)
        if img is None:
            for alt in _nearest_order(pos, n):
                img = try_read(alt)
                if img is not None:
                    break
        if img is None:
            raise DataError(
                f"no frame of this tracklet ({n} frames) can be read; check or remove the tracklet", path=frames[0]
            )
        out[pos] = img
    return out
