"""Per-frame weights (e.g. CG-CLIP's TFE attention) against the synthetic world's ground-truth visibility.

Pure pieces, no model and no config: :func:`summarise` reduces (weights, visibility) pairs, one per tracklet, to the
figures of ``benchmarks/tfe_attention_vs_visibility.py``; :func:`frame_visibility` reads a world's per-box visibility
from its ``gt/gt.txt`` files; :func:`crop_key` maps a VReID crop path to the key of that table;
:func:`pick_mixed_tracklet` chooses the tracklet the demo's attention picture shows.

Visibility is the visible fraction of a box, as written by :mod:`cgclip.synth.sequence` (1 = nobody in front).
The world records no per-frame blur: its camera blur is one Gaussian radius per sequence, not written to disk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cgclip.data.mot import read_gt

log = logging.getLogger(__name__)

#: Visibility below this is "occluded" (the benchmark's and the picture's default).
OCCLUDED = 0.8
#: Visibility at or above this is "clear".
CLEAR = 1.0
#: Keys of :func:`summarise`'s result, in the benchmark table's order.
SUMMARY_KEYS = ("tracklets", "mixed", "occluded_weight", "clear_weight", "occluded_less", "corr", "max_over_min")

VisibilityKey = tuple[str, int, int]


def _check_pair(i: int, weights: np.ndarray, visibility: np.ndarray) -> None:
    if weights.ndim != 1 or weights.shape != visibility.shape or len(weights) == 0:
        raise ValueError(
            f"pair {i}: weights {weights.shape} and visibility {visibility.shape} must be non-empty "
            "1-D arrays of the same length (one value per frame)"
        )


def summarise(pairs: Sequence[tuple[np.ndarray, np.ndarray]], occluded: float = OCCLUDED) -> dict[str, float]:
    """Summarise how per-frame weights follow visibility over tracklets.

    Args:
        pairs: one (weights, visibility) pair per tracklet, each a 1-D array with one value per frame; the weights
            of a tracklet are expected to sum to 1 (so that ``weight × T`` is 1 for a uniform weighting).
        occluded: visibility below this is "occluded"; "clear" is visibility ≥ 1.

    Returns:
        ``tracklets``: number of pairs; ``mixed``: pairs with both occluded and clear frames;
        ``occluded_weight`` / ``clear_weight``: over mixed pairs, the mean of the pair's mean weight of its occluded
        / clear frames times its length T (1 = uniform); ``occluded_less``: percentage of mixed pairs whose occluded
        frames get a lower mean weight than their clear ones (equal up to rounding is not lower); ``corr``: mean
        within-pair Pearson correlation of weight and visibility over the pairs where both vary; ``max_over_min``:
        median over pairs of the largest over the smallest weight (inf when a weight is 0). A figure with no pair
        to average over is NaN.

    Raises:
        ValueError: a pair's arrays are not non-empty 1-D arrays of the same length.
    """
    arrays = [(np.asarray(w, dtype=np.float64), np.asarray(v, dtype=np.float64)) for w, v in pairs]
    for i, (w, v) in enumerate(arrays):
        _check_pair(i, w, v)
    mixed = [(w, v) for w, v in arrays if (v < occluded).any() and (v >= CLEAR).any()]
    occ = np.array([w[v < occluded].mean() * len(w) for w, v in mixed])
    clear = np.array([w[v >= CLEAR].mean() * len(w) for w, v in mixed])
    corr = [float(np.corrcoef(w, v)[0, 1]) for w, v in arrays if w.std() > 0 and v.std() > 0]
    with np.errstate(divide="ignore"):
        spread = [float(w.max() / w.min()) for w, _ in arrays]
    nan = math.nan
    return {
        "tracklets": len(arrays),
        "mixed": len(mixed),
        "occluded_weight": float(occ.mean()) if len(mixed) else nan,
        "clear_weight": float(clear.mean()) if len(mixed) else nan,
        "occluded_less": float(((occ < clear) & ~np.isclose(occ, clear, rtol=1e-9, atol=0)).mean() * 100)
        if len(mixed)
        else nan,
        "corr": float(np.mean(corr)) if corr else nan,
        "max_over_min": float(np.median(spread)) if spread else nan,
    }


def frame_visibility(world: str | Path, splits: Sequence[str] = ("val",)) -> dict[VisibilityKey, float]:
    """Ground-truth visibility of every box of a MOT world.

    Args:
        world: a world folder (``cgclip synth``) holding ``<split>/<sequence>/gt/gt.txt``.
        splits: the split folders to read; the default ``val`` is where the test (query/gallery) tracklets come from.

    Returns:
        (sequence folder name, track id, frame number) → visibility in [0, 1]; empty when no gt.txt is found.

    Raises:
        cgclip.errors.DataError: a gt.txt row is malformed.
    """
    world = Path(world)
    table: dict[VisibilityKey, float] = {}
    files = [gt for split in splits for gt in sorted((world / split).glob("*/gt/gt.txt"))]
    for gt in files:
        boxes, _ = read_gt(gt)
        sequence = gt.parent.parent.name
        for b in boxes:
            table[(sequence, b.track_id, b.frame)] = b.visibility
    log.debug("%s: visibility of %d boxes from %d gt.txt files", world, len(table), len(files))
    return table


def crop_key(path: str | Path) -> VisibilityKey:
    """(sequence, track id, frame) of a VReID crop ``.../crops/<split>/<sequence>/<track>_<segment>/<frame>.jpg``.

    Raises:
        ValueError: the path does not end in ``<sequence>/<track>_<segment>/<frame>.<ext>`` with integer track,
            segment and frame.
    """
    p = Path(path)
    track, sep, segment = p.parent.name.rpartition("_")
    if not (sep and track.isdigit() and segment.isdigit() and p.stem.isdigit() and p.parent.parent.name):
        raise ValueError(f"{path}: not a crop path <sequence>/<track>_<segment>/<frame>.jpg (cgclip build-mot)")
    return p.parent.parent.name, int(track), int(p.stem)


def pick_mixed_tracklet(
    visibilities: Sequence[Sequence[float] | None], lengths: Sequence[int], occluded: float = OCCLUDED
) -> int:
    """Index of the tracklet whose shown frames best contrast occluded and clear views.

    Args:
        visibilities: per tracklet, the visibility of the frames that will be shown (None when unknown).
        lengths: per tracklet, its number of frames.
        occluded: visibility below this is "occluded"; "clear" is visibility ≥ 1.

    Returns:
        Among tracklets whose shown frames include both occluded and clear ones, the one with the largest
        visibility range (max − min), then the longest, then the first; when there is none, the longest (first on
        ties).

    Raises:
        ValueError: no tracklet, or ``visibilities`` and ``lengths`` differ in length.
    """
    if not lengths or len(visibilities) != len(lengths):
        raise ValueError(
            f"{len(visibilities)} visibility lists for {len(lengths)} tracklets: need one per tracklet, at least one"
        )
    best, best_key = None, None
    for i, vis in enumerate(visibilities):
        if vis is None or len(vis) == 0:
            continue
        v = np.asarray(vis, dtype=np.float64)
        if not ((v < occluded).any() and (v >= CLEAR).any()):
            continue
        key = (float(v.max() - v.min()), lengths[i])
        if best_key is None or key > best_key:
            best, best_key = i, key
    if best is not None:
        return best
    return max(range(len(lengths)), key=lambda i: lengths[i])
