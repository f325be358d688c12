"""Model selection on a validation split carved from the training identities — never from the test set.

:func:`carve_validation` holds out ``n`` train identities (drawn reproducibly from the seed among those seen by at least
two cameras), relabels the remaining ones ``0..N'-1`` for the classifier and turns the held-out tracklets into a small
retrieval task: for every held-out identity and every camera it appears in, its first tracklet in that camera is a
query; all other held-out tracklets form the gallery. Same-identity-same-camera gallery items are ignored by the
evaluator (SPEC §4), so every query is matched against the identity's other cameras.

How the held-out identities are drawn decides whether validation predicts the test. ``random`` draws them from all
eligible identities: on sports and dance worlds they then mostly wear different uniforms, the uniform alone tells
them apart and validation mAP saturates (81–99 % where the test gave 42–55 %). ``cameras`` (the default) draws them
camera by camera — a random training camera (a sequence, in a dataset built from MOT data), then every eligible
identity seen in it, then the next camera — so the held-out people share scenes, uniforms and distractors the way
the test's people do (a test sequence shows teammates and opponents together).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgclip.data.tracklet import Tracklet, relabel
from cgclip.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ValidationSplit:
    """Train tracklets left for training (relabelled) and the validation query / gallery (train pids kept)."""

    train: list[Tracklet]
    query: list[Tracklet] = field(default_factory=list)
    gallery: list[Tracklet] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        """Whether there is a validation task."""
        return bool(self.query) and bool(self.gallery)

    def summary(self) -> dict[str, Any]:
        """Counts for the run's dataset record."""
        return {
            "identities": self.identities,
            "num_identities": len(self.identities),
            "query": len(self.query),
            "gallery": len(self.gallery),
            "train_identities": len({t.pid for t in self.train}),
            "train_tracklets": len(self.train),
        }


SELECTIONS = ("cameras", "random")


def _draw_identities(
    cams: dict[int, set[int]], eligible: list[int], n: int, selection: str, rng: np.random.Generator
) -> set[int]:
    """``n`` of the ``eligible`` pids: at random, or camera by camera (``cameras``; see the module docstring)."""
    if selection == "random":
        return {int(p) for p in rng.choice(eligible, size=n, replace=False)}
    held: list[int] = []
    for cam in rng.permutation(sorted({c for cs in cams.values() for c in cs})):
        seen_here = [p for p in eligible if int(cam) in cams[p] and p not in held]
        held += [int(p) for p in rng.permutation(seen_here)][: n - len(held)]
        if len(held) == n:
            break
    return set(held)


def carve_validation(
    train: Sequence[Tracklet], num_identities: int, seed: int = 0, selection: str = "cameras"
) -> ValidationSplit:
    """Hold out ``num_identities`` train identities as a validation retrieval task (see the module docstring).

    ``selection`` is ``cameras`` (held-out people share cameras, as test people do) or ``random``.

    With ``num_identities == 0`` the training set is returned unchanged. Raises DataError when the training set has
    fewer identities seen by two or more cameras than requested, or too few would remain to train on.
    """
    train = list(train)
    if selection not in SELECTIONS:
        raise DataError(f"data.val_selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if num_identities <= 0:
        return ValidationSplit(train)
    cams: dict[int, set[int]] = {}
    for t in train:
        cams.setdefault(t.pid, set()).add(t.camid)
    eligible = sorted(pid for pid, c in cams.items() if len(c) >= 2)
    if len(eligible) < num_identities:
        raise DataError(
            f"data.val_identities={num_identities} but only {len(eligible)} train identities appear in two "
            "or more cameras; lower data.val_identities (0 disables validation)"
        )
    if len(cams) - num_identities < 2:
        raise DataError(
            f"holding out {num_identities} of {len(cams)} train identities leaves too few to train on; "
            "lower data.val_identities"
        )
    rng = np.random.default_rng([int(seed), 7919])
    held = _draw_identities(cams, eligible, num_identities, selection, rng)
    kept = [t for t in train if t.pid not in held]
    out = [t for t in train if t.pid in held]
    relabelled, _ = relabel(kept)
    query: list[Tracklet] = []
    gallery: list[Tracklet] = []
    seen: set[tuple[int, int]] = set()
    for t in out:
        if (t.pid, t.camid) not in seen:
            seen.add((t.pid, t.camid))
            query.append(t)
        else:
            gallery.append(t)
    # A query needs a gallery item of its identity in another camera: the first tracklets of the other cameras are
    # queries themselves, so also put every query in the gallery (same-pid-same-camera matches are ignored).
    gallery = gallery + query
    names = sorted({t.identity or str(t.pid) for t in out})
    log.info(
        "validation: %d identities held out by %s (%d queries, %d gallery tracklets); %d identities left to train",
        num_identities,
        selection,
        len(query),
        len(gallery),
        len({t.pid for t in relabelled}),
    )
    return ValidationSplit(relabelled, query, gallery, names)
