"""Evaluation and retrieval: torchreid-exact ranking metrics, chunked distances, k-reciprocal re-ranking,
feature files, gallery search and result pictures.

Main entry points: :func:`evaluate_rank` (from a distance matrix), :func:`evaluate_features` (from features, with
an explicit gallery convention), :class:`RankResult`; feature files in :mod:`cgclip.eval.features_io`; search in
:mod:`cgclip.eval.search`; pictures in :mod:`cgclip.eval.plots` (imported on demand: it needs matplotlib).
"""

from cgclip.eval.distance import pairwise_distance
from cgclip.eval.evaluate import GALLERY_MODES, evaluate_features
from cgclip.eval.rank import RankResult, evaluate_rank
from cgclip.eval.rerank import rerank_distmat, rerank_features

__all__ = [
    "GALLERY_MODES",
    "RankResult",
    "evaluate_features",
    "evaluate_rank",
    "pairwise_distance",
    "rerank_distmat",
    "rerank_features",
]
