"""Pictures of results (matplotlib, Agg backend; written atomically as PNG).

* :func:`save_ranking_grid` — each query's first frame followed by its top-k gallery tracklets' first frames, with a
  green (same person) or red (other person) border and the distance under each (paper Fig. S.3).
* :func:`save_tsne` — a t-SNE map of features coloured by identity (Fig. S.4).
* :func:`save_frame_weights` — a tracklet's frames as thumbnails above bars of per-frame weights (Fig. S.5).

A frame that cannot be read is drawn as a grey placeholder (with a warning), so a moved dataset still gives a picture.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.errors import EvaluationError
from cgclip.io_utils import atomic_write_bytes

logger = logging.getLogger(__name__)

THUMB = (128, 64)  # height, width
GREEN, RED = "#1a9850", "#d73027"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def load_thumbnail(
    path: str | Path | None, size: tuple[int, int] = THUMB, root: str | Path | None = None
) -> np.ndarray:
    """An RGB uint8 thumbnail (height × width × 3) of an image; a grey placeholder if it cannot be read."""
    from PIL import Image

    h, w = size
    if path:
        full = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
        try:
            with Image.open(full) as img:
                return np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))
        except (OSError, ValueError) as exc:
            logger.warning("cannot read frame %s (%s); drawing a placeholder", full, exc)
    return np.full((h, w, 3), 160, dtype=np.uint8)


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _frame_axis(ax: Any, img: np.ndarray, color: str | None = None, label: str = "", width: float = 4.0) -> None:
    ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(color is not None)
        if color is not None:
            spine.set_edgecolor(color)
            spine.set_linewidth(width)
    if label:
        ax.set_xlabel(label, fontsize=8)


def save_ranking_grid(
    path: str | Path,
    query_frames: Sequence[str | None],
    gallery_frames: Sequence[Sequence[str | None]],
    same_pid: Any,
    distances: Any,
    query_labels: Sequence[str] | None = None,
    gallery_labels: Sequence[Sequence[str]] | None = None,
    root: str | Path | None = None,
    thumb: tuple[int, int] = THUMB,
) -> Path:
    """Write a ranking grid: one row per query (its first frame, then its top-k results).

    Args:
        path: output PNG.
        query_frames: first frame of each query tracklet.
        gallery_frames: for each query, the first frame of each ranked gallery tracklet (best first).
        same_pid: queries × k booleans, True where the result is the query's person (green border; red otherwise).
        distances: queries × k distances printed under each result.
        query_labels, gallery_labels: optional captions (e.g. identity) above the query / under each result.
        root: folder that relative frame paths are relative to.
    """
    same = np.asarray(same_pid, dtype=bool)
    dist = np.asarray(distances, dtype=np.float64)
    nq = len(query_frames)
    if nq == 0:
        raise EvaluationError("no query to draw in the ranking grid")
    if same.shape != dist.shape or same.shape[0] != nq or len(gallery_frames) != nq:
        raise EvaluationError(
            f"ranking grid inputs disagree: {nq} queries, same_pid {same.shape}, "
            f"distances {dist.shape}, {len(gallery_frames)} result rows"
        )
    k = same.shape[1]
    plt = _pyplot()
    fig, axes = plt.subplots(nq, k + 1, figsize=((k + 1) * 1.1, nq * 2.2), squeeze=False)
    for i in range(nq):
        _frame_axis(axes[i, 0], load_thumbnail(query_frames[i], thumb, root), color="#2166ac")
        axes[i, 0].set_title(query_labels[i] if query_labels else f"query {i}", fontsize=8)
        for r in range(k):
            ax = axes[i, r + 1]
            frame = gallery_frames[i][r] if r < len(gallery_frames[i]) else None
            label = f"{dist[i, r]:.3f}"
            if gallery_labels:
                label = f"{gallery_labels[i][r]}\n{label}"
            _frame_axis(ax, load_thumbnail(frame, thumb, root), GREEN if same[i, r] else RED, label)
            if i == 0:
                ax.set_title(f"#{r + 1}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def tsne_embedding(features: Any, perplexity: float | None = None, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of ``features`` (cosine metric); perplexity defaults to min(30, (N − 1) / 3)."""
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float32)
    n = len(x)
    if n < 4:
        raise EvaluationError(f"t-SNE needs at least 4 feature vectors, got {n}")
    if perplexity is None:
        perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    perplexity = float(min(perplexity, n - 1.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine", random_state=seed)
    return tsne.fit_transform(x)


def save_tsne(
    path: str | Path,
    features: Any,
    labels: Sequence[Any],
    perplexity: float | None = None,
    seed: int = 0,
    max_points: int = 5000,
    title: str = "t-SNE of features",
) -> Path:
    """Write a t-SNE scatter of ``features`` coloured by ``labels`` (identity); at most ``max_points`` are drawn
    (sampled evenly at random with ``seed``). A legend is added for up to 20 identities."""
    x = np.asarray(features, dtype=np.float32)
    lab = np.asarray([str(v) for v in labels])
    if len(lab) != len(x):
        raise EvaluationError(f"{len(x)} features but {len(lab)} labels for the t-SNE plot")
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
        x, lab = x[keep], lab[keep]
    xy = tsne_embedding(x, perplexity, seed)
    names, codes = np.unique(lab, return_inverse=True)
    plt = _pyplot()
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, name in enumerate(names):
        m = codes == c
        ax.scatter(xy[m, 0], xy[m, 1], s=14, color=cmap(c % 20), label=name if len(names) <= 20 else None)
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=1.2, loc="best", title="identity")
    ax.set_title(f"{title} ({len(x)} items, {len(names)} identities)")
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def save_frame_weights(
    path: str | Path,
    frames: Sequence[str | None],
    weights: Any,
    title: str = "per-frame weight",
    root: str | Path | None = None,
    thumb: tuple[int, int] = THUMB,
) -> Path:
    """Write a tracklet's frames as thumbnails above a bar chart of their weights (e.g. TFE attention)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if len(w) != len(frames) or len(w) == 0:
        raise EvaluationError(f"{len(frames)} frames but {len(w)} weights: pass one weight per frame")
    t = len(w)
    plt = _pyplot()
    fig, axes = plt.subplots(
        2, t, figsize=(max(t, 2) * 1.0, 3.6), squeeze=False, gridspec_kw={"height_ratios": [2, 1.3]}
    )
    gs = axes[1, 0].get_gridspec()
    for ax in axes[1, :]:
        ax.remove()
    bar_ax = fig.add_subplot(gs[1, :])
    for i in range(t):
        _frame_axis(axes[0, i], load_thumbnail(frames[i], thumb, root))
    bar_ax.bar(np.arange(t), w, color="#4575b4", width=0.7)
    bar_ax.set_xlim(-0.5, t - 0.5)
    bar_ax.set_xticks(np.arange(t))
    bar_ax.set_xticklabels([str(i + 1) for i in range(t)], fontsize=8)
    bar_ax.set_ylabel("weight", fontsize=8)
    bar_ax.set_xlabel("frame", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
