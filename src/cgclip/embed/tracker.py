"""A ReID backend for tracking toolkits: one appearance feature per detection box of a video frame.

BoxMOT's trackers (DeepOCSORT, BoT-SORT, StrongSORT, ...) call their ReID model as ``model.get_features(xyxys, img)``
with the frame as an OpenCV (BGR) ``H×W×3`` uint8 array and the boxes as ``[N, 4]`` ``x1, y1, x2, y2`` pixels, and
expect ``[N, F]`` L2-normalised features. :class:`BoxEmbedder` is that interface over an
:class:`~cgclip.embed.Embedder` (the per-crop path: each box a one-frame tracklet); it needs neither BoxMOT nor
OpenCV. Plug it in where the tracker keeps its ReID model, e.g. ``tracker.model = BoxEmbedder(...)``, or call it
from your own tracker loop (``examples/tracker_adapter.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cgclip.embed.crops import check_boxes, cut_boxes
from cgclip.embed.embedder import Embedder


class BoxEmbedder:
    """Features of detection boxes in a frame, for a tracker's appearance cue.

    Args:
        embedder: the model (a run, a tracklet ONNX file or a ``--per-frame`` one).
        bgr: frames arrive in OpenCV's BGR order (BoxMOT's convention); False for RGB frames.
        camid: the camera of the video, for a model trained with SIE (None: the unseen-camera rule).
    """

    def __init__(self, embedder: Embedder, bgr: bool = True, camid: int | None = None) -> None:
        self.embedder = embedder
        self.bgr = bool(bgr)
        self.camid = camid

    def get_features(self, xyxys: np.ndarray | Sequence[Sequence[float]], img: np.ndarray) -> np.ndarray:
        """``[N, F]`` L2-normalised features of the boxes ``xyxys`` (``[N, 4+]``) in frame ``img``
        (``[0, F]`` when there are no boxes)."""
        boxes = check_boxes(xyxys)
        if len(boxes) == 0:
            return np.zeros((0, self.embedder.feature_dim), dtype=np.float32)
        crops = cut_boxes(img, boxes, bgr=self.bgr)
        return self.embedder.embed_crops(crops, self.camid)

    def __call__(self, frame: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """``get_features(boxes, frame)``, in the (frame, boxes) order other toolkits use."""
        return self.get_features(boxes, frame)
