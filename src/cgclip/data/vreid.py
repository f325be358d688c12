"""VReID dataset folders written by ``cgclip build-mot``: the construction rules and the loader.

The rules: :func:`clip_box` / :func:`box_drop_reason` (which crops are kept), :func:`cut_track` (how a track is cut
into tracklets) and :func:`select_queries` (which val tracklets are queries; :data:`QUERY_GALLERY_RULE` says it in
words). Each MOT sequence is one camera. A folder holds ``manifest.json`` (the truth: every tracklet with its frame
paths relative to the folder), ``crops/<split>/<sequence>/<track_id>_<segment>/<frame>.jpg`` and
``identities.csv``; :func:`load_vreid` reads it into a :class:`~cgclip.data.tracklet.TrackletDataset`.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cgclip.data.mot import MotBox
from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel
from cgclip.errors import CgclipError, DataError
from cgclip.io_utils import read_json

log = logging.getLogger(__name__)

FORMAT_NAME = "cgclip-vreid"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

QUERY_GALLERY_RULE = (
    "Val tracklets are split per identity. An identity seen in only one val sequence gets no query: its tracklets "
    "stay in the gallery as distractors. For an identity seen in two or more sequences, its sequences are visited "
    "from most to fewest tracklets (ties by name), and one tracklet of the sequence, picked with the build seed, "
    "becomes a query unless that would leave some query of the identity without a gallery tracklet of the identity "
    "in another sequence. Every other val tracklet is in the gallery; query tracklets are not. Each sequence is one "
    "camera and evaluation drops same-camera matches, so a query's positives are its identity's gallery tracklets "
    "in other sequences, and every query has at least one."
)


def clip_box(box: MotBox, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of a MOT box (``left, top, width, height``), clipped to
    the image; it may be empty (x1 <= x0 or y1 <= y0) when the box lies outside the image."""

    def rnd(v: float) -> int:
        return int(math.floor(v + 0.5))

    return (
        max(0, rnd(box.left)),
        max(0, rnd(box.top)),
        min(width, rnd(box.left + box.width)),
        min(height, rnd(box.top + box.height)),
    )


def box_drop_reason(
    box: MotBox, width: int, height: int, min_width: int, min_height: int, min_visibility: float
) -> str | None:
    """Why a box's crop is dropped (``"outside_image"``, ``"too_small"``, ``"low_visibility"``), or None to keep it.

    Sizes are measured after clipping to the ``width`` × ``height`` image.
    """
    x0, y0, x1, y1 = clip_box(box, width, height)
    if x1 <= x0 or y1 <= y0:
        return "outside_image"
    if x1 - x0 < min_width or y1 - y0 < min_height:
        return "too_small"
    if box.visibility < min_visibility:
        return "low_visibility"
    return None


def cut_track(frames: Sequence[int], max_len: int = 50, min_len: int = 2) -> list[list[int]]:
    """Cut a track's kept frame numbers into tracklets.

    A run of consecutive frame numbers is cut into pieces of ``max_len`` frames from its start (the last piece
    holds the rest); a missing frame number (a gap in the track, or a dropped crop) ends a run. Pieces shorter than
    ``min_len`` are dropped.
    """
    runs: list[list[int]] = []
    for f in sorted(frames):
        if runs and f == runs[-1][-1] + 1 and len(runs[-1]) < max_len:
            runs[-1].append(f)
        else:
            runs.append([f])
    return [r for r in runs if len(r) >= min_len]


def select_queries(tracklets: Sequence[Tracklet], seed: int = 0) -> tuple[list[int], list[int]]:
    """Split val tracklets into query and gallery by :data:`QUERY_GALLERY_RULE`.

    Tracklets are grouped by ``identity`` (or ``pid`` when empty) and by ``seqid`` (or ``camid`` when empty).
    The tracklet picked in a sequence depends only on ``seed``, the identity, the sequence and the tracklets of
    that identity there, not on the rest of the dataset.

    Returns:
        (query indices, gallery indices) into ``tracklets``, each ascending; together they cover every index once.
    """
    groups: dict[Any, dict[Any, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, t in enumerate(tracklets):
        groups[t.identity or t.pid][t.seqid or t.camid].append(i)
    queries: list[int] = []
    for ident, seqs in groups.items():
        if len(seqs) < 2:
            continue
        gallery_count = {s: len(idx) for s, idx in seqs.items()}
        chosen: list[Any] = []
        for seq in sorted(seqs, key=lambda s: (-len(seqs[s]), str(s))):
            trial = dict(gallery_count)
            trial[seq] -= 1
            total = sum(trial.values())
            if all(total - trial[s] > 0 for s in (*chosen, seq)):
                gallery_count = trial
                chosen.append(seq)
        for seq in chosen:
            members = sorted(seqs[seq], key=lambda i: tracklets[i].frames)
            rng = random.Random(f"{seed}|{ident}|{seq}")
            queries.append(members[rng.randrange(len(members))])
    query_set = set(queries)
    return sorted(query_set), [i for i in range(len(tracklets)) if i not in query_set]


def _tracklets(manifest: dict[str, Any], split: str, root: Path, path: Path) -> list[Tracklet]:
    items = manifest["splits"].get(split)
    if not isinstance(items, list):
        raise DataError(
            f"splits.{split} is missing or not a list; rebuild the dataset with cgclip build-mot", path=path
        )
    out = []
    for n, item in enumerate(items):
        try:
            t = Tracklet.from_dict(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"splits.{split}[{n}] is malformed ({exc!r}); rebuild the dataset with cgclip build-mot", path=path
            ) from exc
        if not t.frames:
            raise DataError(f"splits.{split}[{n}] has no frames; rebuild the dataset with cgclip build-mot", path=path)
        out.append(Tracklet(tuple(str(root / f) for f in t.frames), t.pid, t.camid, t.seqid, t.identity))
    return out


def _check_frames(tracklets: Sequence[Tracklet], every_frame: bool) -> None:
    for t in tracklets:
        for frame in t.frames if every_frame else t.frames[:1]:
            if not Path(frame).is_file():
                raise DataError(
                    "frame listed in manifest.json is missing; re-run cgclip build-mot on this folder", path=frame
                )


def load_vreid(root: str | Path, verify_frames: bool = False) -> TrackletDataset:
    """Load a dataset folder written by ``cgclip build-mot``.

    Args:
        root: the dataset folder (holds ``manifest.json``).
        verify_frames: check that every frame file exists (default: the first frame of every tracklet).

    Returns:
        A :class:`TrackletDataset` with absolute frame paths, train pids relabelled 0..N-1 (identity names kept),
        query/gallery pids as built (index in the dataset's identity order), and ``info`` holding the
        query/gallery rule, the build parameters, sources and camera list.

    Raises:
        DataError: no or malformed manifest, another format or a newer version, or missing frame files.
    """
    root = Path(root).resolve()
    path = root / MANIFEST
    if not path.is_file():
        raise DataError("no manifest.json; build the dataset with cgclip build-mot --mot DIR --out FOLDER", path=path)
    try:
        manifest = read_json(path)
    except CgclipError as exc:
        raise DataError(str(exc)) from exc
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT_NAME:
        raise DataError(f"not a {FORMAT_NAME} manifest (format={found!r}); rebuild with cgclip build-mot", path=path)
    version = manifest.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(
            f"manifest version {version!r} is not supported (this cgclip reads up to {FORMAT_VERSION}); "
            "upgrade cgclip or rebuild the dataset",
            path=path,
        )
    if not isinstance(manifest.get("splits"), dict):
        raise DataError("manifest has no 'splits' object; rebuild the dataset with cgclip build-mot", path=path)
    train, query, gallery = (_tracklets(manifest, s, root, path) for s in ("train", "query", "gallery"))
    for split in (train, query, gallery):
        _check_frames(split, verify_frames)
    train, _ = relabel(train)
    info = {
        "format": f"{FORMAT_NAME} v{version}",
        "query_gallery_rule": manifest.get("query_gallery_rule", QUERY_GALLERY_RULE),
        "parameters": manifest.get("parameters", {}),
        "sources": manifest.get("sources", {}),
        "cameras": manifest.get("cameras", []),
        "identities_csv": str(root / "identities.csv"),
    }
    log.info("loaded %s: %d train, %d query, %d gallery tracklets", root, len(train), len(query), len(gallery))
    return TrackletDataset("vreid", str(root), train, query, gallery, info)


def detect(root: Path) -> bool:
    """Whether ``root`` is a folder written by ``cgclip build-mot`` (it has a ``manifest.json``)."""
    return (root / "manifest.json").is_file()
