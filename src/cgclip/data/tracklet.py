"""The tracklet data model: a tracklet is an ordered list of frame paths of one person seen by one camera.

A :class:`TrackletDataset` holds the ``train``, ``query`` and ``gallery`` lists. Train person ids are relabelled
to ``0..N-1`` (the classifier's targets); query/gallery pids keep the dataset's own ids, so that evaluation compares
like with like. Every tracklet also keeps ``identity``, the dataset's original identity name (what captions and
identity tables are keyed by).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The partitions of every :class:`TrackletDataset`, what ``--splits`` names on the command line.
DATASET_SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class Tracklet:
    """One tracklet.

    Attributes:
        frames: ordered frame image paths (absolute or relative to the dataset root, as the loader documents).
        pid: person id (relabelled 0..N-1 in a train split; the dataset's own id in query/gallery; 0 = distractor
            on MARS).
        camid: camera id (0-based).
        seqid: source sequence (video) name; "" when the dataset has none.
        identity: original identity name, as used by captions and identity tables.
    """

    frames: tuple[str, ...]
    pid: int
    camid: int
    seqid: str = ""
    identity: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.frames, tuple):
            object.__setattr__(self, "frames", tuple(self.frames))

    def __len__(self) -> int:
        return len(self.frames)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view of the tracklet."""
        return {
            "frames": list(self.frames),
            "pid": self.pid,
            "camid": self.camid,
            "seqid": self.seqid,
            "identity": self.identity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tracklet:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(d["frames"]), int(d["pid"]), int(d["camid"]), str(d.get("seqid", "")), str(d.get("identity", ""))
        )


def relabel(tracklets: Iterable[Tracklet]) -> tuple[list[Tracklet], dict[int, int]]:
    """Relabel pids to 0..N-1 in order of first sorted original pid; returns the new list and the old→new map."""
    tracklets = list(tracklets)
    mapping = {pid: i for i, pid in enumerate(sorted({t.pid for t in tracklets}))}
    out = [Tracklet(t.frames, mapping[t.pid], t.camid, t.seqid, t.identity or str(t.pid)) for t in tracklets]
    return out, mapping


def split_statistics(tracklets: Sequence[Tracklet]) -> dict[str, Any]:
    """Statistics of one split: identities, tracklets, cameras, sequences and frames per tracklet."""
    lengths = np.array([len(t) for t in tracklets], dtype=np.int64)
    return {
        "identities": len({t.pid for t in tracklets}),
        "tracklets": len(tracklets),
        "cameras": len({t.camid for t in tracklets}),
        "sequences": len({t.seqid for t in tracklets if t.seqid}),
        "frames": int(lengths.sum()) if len(lengths) else 0,
        "frames_per_tracklet": {
            "min": int(lengths.min()) if len(lengths) else 0,
            "mean": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "max": int(lengths.max()) if len(lengths) else 0,
        },
    }


@dataclass
class TrackletDataset:
    """A video ReID dataset: train / query / gallery tracklets plus a description of where it came from.

    Attributes:
        name: dataset name ("mars", "ilidsvid", "vreid", ...).
        root: folder the dataset was read from.
        train: training tracklets, pids relabelled 0..N-1.
        query: query tracklets (original pids).
        gallery: gallery tracklets (original pids).
        info: loader-specific facts worth recording next to results (split index, test half, ...).
    """

    name: str
    root: str
    train: list[Tracklet]
    query: list[Tracklet]
    gallery: list[Tracklet]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        """Number of training identities (the classifier's output size)."""
        return len({t.pid for t in self.train})

    @property
    def num_cameras(self) -> int:
        """Number of distinct cameras over all splits."""
        return len({t.camid for t in (*self.train, *self.query, *self.gallery)})

    def train_identities(self) -> list[str]:
        """Original identity name of each relabelled train pid, indexed by pid."""
        names: dict[int, str] = {}
        for t in self.train:
            names.setdefault(t.pid, t.identity or str(t.pid))
        return [names[i] for i in range(len(names))]

    def statistics(self) -> dict[str, Any]:
        """Per-split statistics (see :func:`split_statistics`) plus the loader's info."""
        return {
            "name": self.name,
            "root": self.root,
            "train": split_statistics(self.train),
            "query": split_statistics(self.query),
            "gallery": split_statistics(self.gallery),
            "info": dict(self.info),
        }
