"""The demo's pictures: a CG-CLIP ranking grid, a t-SNE of CG-CLIP vs TF-CLIP features and TFE attention over frames."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

log = logging.getLogger(__name__)


def _features(run_dir: Path, tracklets: list) -> tuple[np.ndarray, torch.nn.Module, Any]:
    """L2-normalised test features of ``tracklets`` from a trained run (its own test settings, CPU)."""
    from cgclip.train.inference import extract_run_features, load_run_model
    from cgclip.train.run_dir import RunDir
    from cgclip.train.trainer import resolve_precision

    cfg = RunDir(run_dir).load_config()
    model, info = load_run_model(run_dir, "best", "cpu")
    device = torch.device("cpu")
    feats = extract_run_features(model, info, tracklets, cfg=cfg, device=device,
                                 precision=resolve_precision(cfg.train.precision, device), cache_dir=None,
                                 num_workers=0, desc="pictures").float()
    feats = torch.nn.functional.normalize(feats, dim=1).numpy()
    return feats, model, cfg


def ranking_grid(run_dir: Path, dataset: Any, path: Path, num_queries: int = 6, topk: int = 5) -> Path:
    """Top-``topk`` gallery tracklets for the first ``num_queries`` queries (green border: same person)."""
    from cgclip.eval.plots import save_ranking_grid

    queries = dataset.query[:num_queries]
    qf, _, _ = _features(run_dir, queries)
    gf, _, _ = _features(run_dir, dataset.gallery)
    dist = 1.0 - qf @ gf.T
    # the protocol removes same-person same-camera gallery items; do the same for the picture
    for i, q in enumerate(queries):
        for j, g in enumerate(dataset.gallery):
            if g.pid == q.pid and g.camid == q.camid:
                dist[i, j] = np.inf
    order = np.argsort(dist, axis=1)[:, :topk]
    return save_ranking_grid(
        path, [q.frames[0] for q in queries], [[dataset.gallery[j].frames[0] for j in row] for row in order],
        np.array([[dataset.gallery[j].pid == q.pid for j in row] for q, row in zip(queries, order)]),
        np.take_along_axis(dist, order, axis=1), query_labels=[q.identity for q in queries],
        gallery_labels=[[dataset.gallery[j].identity for j in row] for row in order])


def tsne_comparison(runs: dict[str, Path], dataset: Any, path: Path, max_identities: int = 12) -> Path:
    """Side-by-side t-SNE of the test tracklets of ``max_identities`` identities, one panel per run."""
    from cgclip.eval.plots import _pyplot, _save, tsne_embedding

    pids = sorted({t.pid for t in dataset.query})[:max_identities]
    tracklets = [t for t in dataset.query + dataset.gallery if t.pid in set(pids)]
    labels = np.array([pids.index(t.pid) for t in tracklets])
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for ax, (name, run_dir) in zip(axes[0], runs.items()):
        emb = tsne_embedding(_features(run_dir, tracklets)[0], seed=0)
        ax.scatter(emb[:, 0], emb[:, 1], c=[cmap(i % 20) for i in labels], s=28, edgecolors="k", linewidths=0.3)
        ax.set_title(f"{name}: test tracklets of {len(pids)} identities")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("t-SNE of retrieval features (colour = identity)")
    return _save(fig, path)


def attention_over_frames(run_dir: Path, dataset: Any, path: Path, frames: int = 8) -> Path | None:
    """TFE per-frame attention of CG-CLIP on the query tracklet with the most frames."""
    from cgclip.data.image_io import read_rgb
    from cgclip.data.sampling import evenly_spaced_indices
    from cgclip.data.transforms import build_transform
    from cgclip.eval.plots import save_frame_weights

    _, model, cfg = _features(run_dir, dataset.query[:1])
    tracklet = max(dataset.query, key=len)
    idx = evenly_spaced_indices(len(tracklet), frames)
    paths = [tracklet.frames[i] for i in idx]
    transform = build_transform(size=tuple(cfg.data.image_size), train=False)
    clip = transform([read_rgb(p) for p in paths]).unsqueeze(0)
    with torch.no_grad():
        weights = model.frame_weights(clip, torch.tensor([tracklet.camid]))
    if weights is None:
        return None
    return save_frame_weights(path, paths, weights[0].float().numpy(),
                              title=f"CG-CLIP TFE attention over frames ({tracklet.identity})")


def draw_pictures(out: Path, datasets: dict[str, Path], say: Callable[[str], None]) -> dict[str, str]:
    """Draw every picture the finished runs allow into ``out/pictures``; returns name → path."""
    from cgclip.data import load_dataset

    pics: dict[str, str] = {}
    folder = out / "pictures"
    for kind, ds_dir in datasets.items():
        runs = {m: out / "runs" / kind / m for m in ("tfclip", "cgclip")
                if (out / "runs" / kind / m / "results.json").is_file()}
        dataset = load_dataset("vreid", ds_dir)
        if "cgclip" in runs:
            pics[f"{kind}_ranking"] = str(ranking_grid(runs["cgclip"], dataset, folder / f"{kind}_ranking.png"))
            attn = attention_over_frames(runs["cgclip"], dataset, folder / f"{kind}_tfe_attention.png")
            if attn is not None:
                pics[f"{kind}_tfe_attention"] = str(attn)
        if runs:
            named = {{"cgclip": "CG-CLIP", "tfclip": "TF-CLIP"}[m]: p for m, p in sorted(runs.items(), reverse=True)}
            pics[f"{kind}_tsne"] = str(tsne_comparison(named, dataset, folder / f"{kind}_tsne.png"))
    for name, p in pics.items():
        say(f"picture {name}: {p}")
    return pics
