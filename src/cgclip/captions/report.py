"""Caption-quality report: are the caption sets identity-unique, as CMR's per-identity targets need?

Per identity the number of captions (by source); identities whose caption sets are identical or near-identical to
another identity's (normalised text: lower-case, punctuation removed, numbers kept; near-identical = token Jaccard of
the two sets' vocabularies ≥ a threshold); with a CLIP checkpoint, pairs whose mean caption features have cosine ≥ a
threshold; against a dataset, unknown identities and identities without captions. It ends with one recommendation.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from cgclip.captions.store import CaptionStore

logger = logging.getLogger(__name__)

MAX_LISTED = 500


def normalise(text: str) -> str:
    """Lower-case, punctuation removed (letters and digits kept), single spaces."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", text.lower()).split())


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for x in self.parent:
            out[self.find(x)].append(x)
        return sorted((sorted(g) for g in out.values() if len(g) > 1), key=lambda g: (-len(g), g))


def jaccard_pairs(token_sets: Sequence[set[str]], threshold: float, chunk: int = 2048) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose token-set Jaccard similarity is ≥ ``threshold`` (sparse products, chunked rows)."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, toks in enumerate(token_sets):
        for t in toks:
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    n = len(token_sets)
    if n < 2 or not vocab:
        return []
    mat = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
    sizes = np.asarray(mat.sum(axis=1)).ravel()
    out = []
    for start in range(0, n, chunk):
        inter = (mat[start : start + chunk] @ mat.T).toarray()
        union = sizes[start : start + chunk, None] + sizes[None, :] - inter
        jac = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        for a, b in zip(*np.nonzero(jac >= threshold)):
            i = start + int(a)
            if i < int(b):
                out.append((i, int(b), float(jac[a, b])))
    return out


def cosine_pairs(features: np.ndarray, threshold: float, chunk: int = 2048) -> list[tuple[int, int, float]]:
    """Pairs (i < j) of L2-normalised rows with cosine ≥ ``threshold``."""
    out = []
    for start in range(0, len(features), chunk):
        sims = features[start : start + chunk] @ features.T
        for a, b in zip(*np.nonzero(sims >= threshold)):
            i = start + int(a)
            if i < int(b):
                out.append((i, int(b), float(sims[a, b])))
    return out


def mean_caption_features(clip: Any, captions: Sequence[Sequence[str]]) -> np.ndarray:
    """Per identity the normalised mean of its captions' CLIP text features (``[Y, d]``); ``clip`` has
    ``encode_texts`` (:class:`cgclip.clip.features.ClipFeatures`)."""
    flat = [t for caps in captions for t in caps]
    feats = clip.encode_texts(flat).numpy()
    out, pos = [], 0
    for caps in captions:
        mean = feats[pos : pos + len(caps)].mean(axis=0)
        out.append(mean / max(np.linalg.norm(mean), 1e-12))
        pos += len(caps)
    return np.stack(out) if out else np.zeros((0, feats.shape[1] if feats.size else 1), np.float32)


def context_overflow(text_encoder: Any, store: CaptionStore) -> dict[str, Any]:
    """How many captions exceed the text tower's context, alone and with the ID sentence appended (training then
    shortens those bodies so that the sentence survives); empty when the encoder exposes no tokenizer."""
    from cgclip.captions.idtext import apply_id_text, over_context

    tokenizer, max_length = getattr(text_encoder, "tokenizer", None), getattr(text_encoder, "max_length", None)
    if tokenizer is None or not max_length:
        return {}
    texts = [rec.text for rec in store.captions]
    with_id = [t for rec in store.captions for t in apply_id_text([rec.text], rec.identity)]
    return {
        "context_tokens": int(max_length),
        "captions_over_context": over_context(texts, tokenizer, max_length),
        "captions_over_context_with_id_text": over_context(with_id, tokenizer, max_length),
    }


def recommendation(
    fraction: float, colliding: int, total: int, missing: int, unknown: int, warn_fraction: float = 0.05
) -> str:
    """The one-line advice of the report."""
    parts = []
    if total and fraction >= warn_fraction:
        parts.append(
            f"{100 * fraction:.0f}% of identities ({colliding} of {total}) have captions identical or "
            "near-identical to another identity's: turn on ID text (identity_mode=caption_idtext), or "
            "re-caption them with a more detailed prompt"
        )
    elif total:
        parts.append(
            f"captions are identity-unique enough ({colliding} of {total} identities collide); "
            "identity_mode=caption works, caption_idtext (the default) is still safe"
        )
    if missing:
        parts.append(
            f"{missing} dataset identities have no captions: caption them (cgclip caption mllm / "
            "from-annotations) before training"
        )
    if unknown:
        parts.append(f"{unknown} captioned identities are not in the dataset: check that the store belongs to it")
    return "; ".join(parts) if parts else "the caption store is empty: write captions first"


def caption_report(
    store: CaptionStore,
    *,
    expected: Iterable[str] | None = None,
    known: Iterable[str] | None = None,
    text_encoder: Any = None,
    jaccard_threshold: float = 0.9,
    cosine_threshold: float = 0.95,
    warn_fraction: float = 0.05,
) -> dict[str, Any]:
    """Build the report (a JSON-serialisable dict).

    ``text_encoder`` (optional; e.g. :class:`cgclip.clip.features.ClipFeatures`) also compares identities'
    mean caption features and reports the pairs above ``cosine_threshold``.

    ``expected``: the identities that need captions (e.g. the dataset's training identities), reported as
    ``missing_identities`` when they have none; ``known``: every identity of the dataset (default ``expected``),
    captioned identities outside it are ``unknown_identities``.
    """
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in store.captions:
        by_source[rec.identity][rec.source] += 1
    by_identity = store.by_identity()
    names = sorted(by_identity)
    norm_sets = [frozenset(normalise(t) for t in by_identity[n]) for n in names]
    uf = _UnionFind()

    identical: dict[frozenset[str], list[str]] = defaultdict(list)
    for name, s in zip(names, norm_sets):
        identical[s].append(name)
    identical_groups = sorted((sorted(g) for g in identical.values() if len(g) > 1), key=lambda g: (-len(g), g))
    for group in identical_groups:
        for other in group[1:]:
            uf.union(group[0], other)

    token_sets = [set(w for t in s for w in t.split()) for s in norm_sets]
    near = [
        (names[i], names[j], round(v, 4))
        for i, j, v in jaccard_pairs(token_sets, jaccard_threshold)
        if norm_sets[i] != norm_sets[j]
    ]
    for a, b, _ in near:
        uf.union(a, b)

    owners: dict[str, set[str]] = defaultdict(set)
    for name, s in zip(names, norm_sets):
        for t in s:
            owners[t].add(name)
    sharing = sorted({n for own in owners.values() if len(own) > 1 for n in own})

    clip = None
    if text_encoder is not None and names:
        feats = mean_caption_features(text_encoder, [by_identity[n] for n in names])
        pairs = [(names[i], names[j], round(v, 4)) for i, j, v in cosine_pairs(feats, cosine_threshold)]
        for a, b, _ in pairs:
            uf.union(a, b)
        clip = {
            "checkpoint": str(getattr(text_encoder, "clip_dir", "")),
            "threshold": cosine_threshold,
            "num_pairs": len(pairs),
            **context_overflow(text_encoder, store),
            "pairs": [{"a": a, "b": b, "cosine": v} for a, b, v in sorted(pairs, key=lambda p: -p[2])[:MAX_LISTED]],
        }

    groups = uf.groups()
    colliding = sorted({n for g in groups for n in g})
    fraction = len(colliding) / len(names) if names else 0.0
    have = set(names)
    expected_set = set(expected) if expected is not None else None
    known_set = set(known) if known is not None else expected_set
    validation = {
        "missing": sorted(expected_set - have) if expected_set is not None else [],
        "unknown": sorted(have - known_set) if known_set is not None else [],
    }
    counts = [len(by_identity[n]) for n in names]
    return {
        "captions_file": str(store.path),
        "num_identities": len(names),
        "num_captions": len(store.captions),
        "captions_per_identity": {
            "min": min(counts, default=0),
            "mean": round(float(np.mean(counts)), 2) if counts else 0.0,
            "max": max(counts, default=0),
        },
        "thresholds": {"jaccard": jaccard_threshold, "cosine": cosine_threshold if text_encoder is not None else None},
        "identical_groups": identical_groups,
        "near_identical_pairs": {
            "num_pairs": len(near),
            "pairs": [{"a": a, "b": b, "jaccard": v} for a, b, v in sorted(near, key=lambda p: -p[2])[:MAX_LISTED]],
        },
        "identities_sharing_a_caption": sharing,
        "clip": clip,
        "collision_groups": groups,
        "colliding_identities": colliding,
        "collision_fraction": round(fraction, 4),
        "unknown_identities": validation["unknown"],
        "missing_identities": validation["missing"],
        "failures_pending": len(store.failures),
        "per_identity": {n: {"captions": len(by_identity[n]), "by_source": dict(by_source[n])} for n in names},
        "recommendation": recommendation(
            fraction, len(colliding), len(names), len(validation["missing"]), len(validation["unknown"]), warn_fraction
        ),
    }
