"""Crops as the embedder takes them — numpy arrays, PIL images or image paths — and boxes cut out of video frames.

Every crop becomes an ``H×W×3`` uint8 RGB array resized to the model's input size with the evaluation transform's
resampling (:func:`cgclip.data.transforms.resize_frame`), so an embedded crop matches what ``cgclip extract`` feeds
the model. Bad crops are :class:`cgclip.errors.DataError` one-liners that name the crop and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cgclip.data.image_io import FrameReadError, read_rgb
from cgclip.data.transforms import resize_frame
from cgclip.errors import DataError

#: What a crop may be: an ``H×W×3`` uint8 RGB array, a PIL image, or the path of an image file.
CropLike = np.ndarray | Image.Image | str | Path


def _check_array(crop: np.ndarray, name: str) -> np.ndarray:
    if crop.ndim != 3 or crop.shape[2] != 3:
        fix = "drop the alpha channel (crop[..., :3])" if crop.ndim == 3 and crop.shape[2] == 4 else "give RGB pixels"
        raise DataError(f"{name} has shape {tuple(crop.shape)}: expected an H×W×3 RGB array; {fix}")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {tuple(crop.shape)}): give a crop of at least 1×1 pixels")
    if crop.dtype != np.uint8:
        raise DataError(f"{name} has dtype {crop.dtype}: expected uint8 pixels 0-255 (e.g. (x * 255).astype('uint8'))")
    return crop


def load_crop(crop: CropLike, name: str = "crop") -> np.ndarray | Image.Image:
    """A crop as an RGB uint8 array or RGB PIL image (paths are read); :class:`DataError` for anything else."""
    if isinstance(crop, (str, Path)):
        try:
            return read_rgb(str(crop))
        except FrameReadError as exc:
            raise DataError(f"{name}: {exc.reason}; give a readable image file", path=crop) from None
    if isinstance(crop, Image.Image):
        if crop.width == 0 or crop.height == 0:
            raise DataError(f"{name} is an empty image: give a crop of at least 1×1 pixels")
        return crop if crop.mode == "RGB" else crop.convert("RGB")
    if isinstance(crop, np.ndarray):
        return _check_array(crop, name)
    raise DataError(f"{name} is a {type(crop).__name__}: give a numpy array, a PIL image or an image path")


def resize_crops(crops: Sequence[CropLike], size: tuple[int, int], what: str = "crop") -> np.ndarray:
    """Crops → uint8 ``[N, H, W, 3]`` at ``size = (H, W)``."""
    if len(crops) == 0:
        return np.zeros((0, size[0], size[1], 3), dtype=np.uint8)
    return np.stack([resize_frame(load_crop(c, f"{what} {i}"), size) for i, c in enumerate(crops)])


def check_boxes(boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boxes as float ``[N, 4]`` ``(x1, y1, x2, y2)`` pixels (extra columns such as score and class are ignored)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise DataError(f"boxes have shape {tuple(arr.shape)}: expected [N, 4+] rows of x1, y1, x2, y2 pixels")
    if not np.isfinite(arr[:, :4]).all():
        raise DataError("boxes hold NaN or infinity: give finite x1, y1, x2, y2 pixels")
    return arr[:, :4]


def cut_boxes(frame: np.ndarray, boxes: np.ndarray, bgr: bool = False) -> list[np.ndarray]:
    """The RGB crops of ``boxes`` (``[N, 4]`` x1, y1, x2, y2) from an ``H×W×3`` uint8 ``frame``.

    Boxes are rounded and clipped to the frame; one that falls outside keeps at least one pixel at the nearest edge,
    as trackers ask for a feature of every detection. ``bgr=True`` for OpenCV frames (BoxMOT's convention).
    """
    frame = _check_array(np.asarray(frame), "frame")
    if bgr:
        frame = frame[..., ::-1]
    h, w = frame.shape[:2]
    out = []
    for x1, y1, x2, y2 in check_boxes(boxes):
        left = int(np.clip(np.floor(x1), 0, w - 1))
        top = int(np.clip(np.floor(y1), 0, h - 1))
        right = int(np.clip(np.ceil(x2), left + 1, w))
        bottom = int(np.clip(np.ceil(y2), top + 1, h))
        out.append(np.ascontiguousarray(frame[top:bottom, left:right]))
    return out
