"""Re-identifying tracks inside a tracker: a rolling window of each track's recent crops and its tracklet feature.

A tracker that loses a player (occlusion, leaving the frame) and later starts a new track asks which old track the
new one continues. :class:`TrackletMemory` keeps the last ``window`` crops of every track (resized to the model's
input, so memory stays bounded), embeds a track as a tracklet when asked (cached until the track gets a new crop)
and ranks the other tracks by cosine similarity.

>>> memory = TrackletMemory(Embedder.load("runs/sports-cgclip"), window=8)
>>> memory.add(track_id, crop)              # every frame, for every track
>>> memory.match(new_track, among=lost)     # [(old_track, similarity), ...], best first
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

import numpy as np

from cgclip.embed.crops import CropLike, resize_crops
from cgclip.embed.embedder import Embedder
from cgclip.errors import ConfigError


class TrackletMemory:
    """The recent crops of every track and their tracklet features.

    Args:
        embedder: the model (:class:`~cgclip.embed.Embedder`, a run or a tracklet ONNX file).
        window: crops kept per track (the most recent; the tracklet feature embeds these).
    """

    def __init__(self, embedder: Embedder, window: int = 8) -> None:
        if int(window) < 1:
            raise ConfigError(f"window must be at least 1, got {window}")
        if embedder.per_frame:
            raise ConfigError("TrackletMemory needs a tracklet model; export without --per-frame")
        self.embedder = embedder
        self.window = int(window)
        self._crops: dict[Hashable, deque[np.ndarray]] = {}
        self._camid: dict[Hashable, int | None] = {}
        self._features: dict[Hashable, np.ndarray] = {}

    def add(self, track_id: Hashable, crop: CropLike, camid: int | None = None) -> None:
        """Append ``crop`` to ``track_id``'s window (dropping its oldest crop when full)."""
        pixels = resize_crops([crop], self.embedder.image_size, what=f"track {track_id!r} crop")[0]
        self._crops.setdefault(track_id, deque(maxlen=self.window)).append(pixels)
        self._camid[track_id] = camid
        self._features.pop(track_id, None)

    @property
    def tracks(self) -> list[Hashable]:
        """The ids of the tracks held, in the order they first appeared."""
        return list(self._crops)

    def __len__(self) -> int:
        return len(self._crops)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._crops

    def forget(self, track_id: Hashable) -> None:
        """Drop a track (unknown ids are ignored)."""
        for store in (self._crops, self._camid, self._features):
            store.pop(track_id, None)  # type: ignore[attr-defined]

    def features(self, track_ids: Iterable[Hashable]) -> np.ndarray:
        """Tracklet features ``[N, F]`` (L2-normalised) of ``track_ids``; new crops are embedded in one batch."""
        ids = list(track_ids)
        unknown = [t for t in ids if t not in self._crops]
        if unknown:
            raise KeyError(f"no crops for track {unknown[0]!r}; add() some first")
        stale = [t for t in dict.fromkeys(ids) if t not in self._features]
        if stale:
            cams = [self._camid[t] for t in stale]
            feats = self.embedder.embed_tracklets(
                [list(self._crops[t]) for t in stale], None if any(c is None for c in cams) else cams
            )
            self._features.update(zip(stale, feats))
        if not ids:
            return np.zeros((0, self.embedder.feature_dim), dtype=np.float32)
        return np.stack([self._features[t] for t in ids])

    def feature(self, track_id: Hashable) -> np.ndarray:
        """The tracklet feature ``[F]`` of one track."""
        return self.features([track_id])[0]

    def match(self, track_id: Hashable, among: Iterable[Hashable] | None = None) -> list[tuple[Hashable, float]]:
        """The other tracks (``among``, default all held) ranked by cosine similarity to ``track_id``, best first."""
        candidates = [t for t in (self.tracks if among is None else among) if t != track_id]
        if not candidates:
            return []
        sims = self.features(candidates) @ self.feature(track_id)
        order = np.argsort(-sims, kind="stable")
        return [(candidates[i], float(sims[i])) for i in order]
