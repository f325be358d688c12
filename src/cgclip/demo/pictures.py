"""The demo's pictures: a CG-CLIP ranking grid, a t-SNE of CG-CLIP vs TF-CLIP features and TFE attention over frames."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgclip.registry import MODELS

log = logging.getLogger(__name__)


class RunFeatures:
    """A trained run loaded once (``checkpoint``: best by default; CPU) with its test features, extracted once per
    tracklet list."""

    def __init__(self, run_dir: Path, checkpoint: str = "best") -> None:
        from cgclip.train.inference import load_run_model
        from cgclip.train.run_dir import RunDir
        from cgclip.train.trainer import resolve_precision

        self.cfg = RunDir(run_dir).load_config()
        self.model, self.info = load_run_model(run_dir, checkpoint, "cpu")
        self.device = torch.device("cpu")
        self.precision = resolve_precision(self.cfg.train.precision, self.device)

    def features(self, tracklets: list) -> np.ndarray:
        """L2-normalised test features of ``tracklets`` (the run's own test settings)."""
        from cgclip.train.inference import extract_run_features

        feats = extract_run_features(
            self.model,
            self.info,
            tracklets,
            cfg=self.cfg,
            device=self.device,
            precision=self.precision,
            cache_dir=None,
            num_workers=0,
            desc="pictures",
        ).float()
        return torch.nn.functional.normalize(feats, dim=1).numpy()


def ranking_grid(dataset: Any, qf: np.ndarray, gf: np.ndarray, path: Path, num_queries: int = 6, topk: int = 5) -> Path:
    """Top-``topk`` gallery tracklets for the first ``num_queries`` queries (green border: same person)."""
    from cgclip.eval.plots import save_ranking_grid

    queries = dataset.query[:num_queries]
    dist = 1.0 - qf[:num_queries] @ gf.T
    # the protocol removes same-person same-camera gallery items; do the same for the picture
    q_pid, q_cam = np.array([q.pid for q in queries]), np.array([q.camid for q in queries])
    g_pid, g_cam = np.array([g.pid for g in dataset.gallery]), np.array([g.camid for g in dataset.gallery])
    dist[(q_pid[:, None] == g_pid[None]) & (q_cam[:, None] == g_cam[None])] = np.inf
    order = np.argsort(dist, axis=1)[:, :topk]
    return save_ranking_grid(
        path,
        [q.frames[0] for q in queries],
        [[dataset.gallery[j].frames[0] for j in row] for row in order],
        g_pid[order] == q_pid[:, None],
        np.take_along_axis(dist, order, axis=1),
        query_labels=[q.identity for q in queries],
        gallery_labels=[[dataset.gallery[j].identity for j in row] for row in order],
    )


def tsne_comparison(features: dict[str, np.ndarray], labels: np.ndarray, path: Path) -> Path:
    """Side-by-side t-SNE of the same tracklets, one panel per model (colour = identity)."""
    from cgclip.eval.plots import _pyplot, _save, tsne_embedding

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(features), figsize=(5 * len(features), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab20")
    n_ids = len(set(labels.tolist()))
    for ax, (name, feats) in zip(axes[0], features.items()):
        emb = tsne_embedding(feats, seed=0)
        ax.scatter(emb[:, 0], emb[:, 1], c=[cmap(i % 20) for i in labels], s=28, edgecolors="k", linewidths=0.3)
        ax.set_title(f"{name}: test tracklets of {n_ids} identities")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("t-SNE of retrieval features (colour = identity)")
    return _save(fig, path)


def attention_over_frames(
    run: RunFeatures,
    dataset: Any,
    path: Path,
    frames: int = 8,
    visibility: dict[tuple[str, int, int], float] | None = None,
) -> Path | None:
    """TFE per-frame attention of CG-CLIP on one query tracklet, drawn on ``frames`` evenly spaced frames.

    With ``visibility`` (the world's (sequence, track id, frame) → visibility, see
    :func:`cgclip.eval.frame_weighting.frame_visibility`) the tracklet is one whose drawn frames include both
    occluded and clear views, with the widest visibility range, and the title gives each frame's visibility;
    without it, or when no query tracklet qualifies, the query tracklet with the most frames.
    """
    from cgclip.data.image_io import read_rgb
    from cgclip.data.sampling import evenly_spaced_indices
    from cgclip.data.transforms import build_transform
    from cgclip.eval.frame_weighting import crop_key, pick_mixed_tracklet
    from cgclip.eval.plots import save_frame_weights

    def shown(t: Any) -> list[str]:
        return [t.frames[i] for i in evenly_spaced_indices(len(t), frames)]

    def shown_visibility(t: Any) -> list[float] | None:
        try:
            return [visibility[crop_key(p)] for p in shown(t)] if visibility else None
        except (KeyError, ValueError):
            return None

    vis = [shown_visibility(t) for t in dataset.query]
    pick = pick_mixed_tracklet(vis, [len(t) for t in dataset.query])
    tracklet = dataset.query[pick]
    paths = shown(tracklet)
    transform = build_transform(size=tuple(run.cfg.data.image_size), train=False)
    clip = transform([read_rgb(p) for p in paths]).unsqueeze(0)
    with torch.no_grad():
        weights = run.model.frame_weights(clip, torch.tensor([tracklet.camid]))
    if weights is None:
        return None
    title = f"CG-CLIP TFE attention over frames ({tracklet.identity})"
    if vis[pick] is not None:
        title += "\nvisibility of frames 1-{}: {}".format(len(paths), ", ".join(f"{v:.2f}" for v in vis[pick]))
    else:
        log.info("%s: no world visibility for the query tracklets; showing the longest one", path)
    return save_frame_weights(path, paths, weights[0].float().numpy(), title=title)


def draw_pictures(
    out: Path, datasets: dict[str, Path], say: Callable[[str], None], tsne_identities: int = 12
) -> dict[str, str]:
    """Draw every picture the finished runs allow into ``out/pictures``; returns name → path.

    Each run is loaded once and each tracklet extracted once: the t-SNE shows the test tracklets (query and gallery)
    of the first ``tsne_identities`` query identities, taken from the same query/gallery features as the grid.
    """
    from cgclip.data import load_dataset
    from cgclip.eval.frame_weighting import frame_visibility

    pics: dict[str, str] = {}
    folder = out / "pictures"
    names = {m: MODELS.meta(m, "label") for m in ("cgclip", "tfclip")}
    for kind, ds_dir in datasets.items():
        runs = {
            m: RunFeatures(out / "runs" / kind / m)
            for m in ("tfclip", "cgclip")
            if (out / "runs" / kind / m / "results.json").is_file()
        }
        if not runs:
            continue
        dataset = load_dataset("vreid", ds_dir)
        feats = {m: (run.features(dataset.query), run.features(dataset.gallery)) for m, run in runs.items()}
        if "cgclip" in runs:
            qf, gf = feats["cgclip"]
            pics[f"{kind}_ranking"] = str(ranking_grid(dataset, qf, gf, folder / f"{kind}_ranking.png"))
            attn = attention_over_frames(
                runs["cgclip"],
                dataset,
                folder / f"{kind}_tfe_attention.png",
                visibility=frame_visibility(out / "worlds" / kind),
            )
            if attn is not None:
                pics[f"{kind}_tfe_attention"] = str(attn)
        pids = sorted({t.pid for t in dataset.query})[:tsne_identities]
        chosen = set(pids)
        tracklets = dataset.query + dataset.gallery
        keep = np.array([t.pid in chosen for t in tracklets])
        labels = np.array([pids.index(t.pid) for t, k in zip(tracklets, keep) if k])
        panels = {names[m]: np.concatenate(feats[m])[keep] for m in sorted(runs, reverse=True)}
        pics[f"{kind}_tsne"] = str(tsne_comparison(panels, labels, folder / f"{kind}_tsne.png"))
    for name, p in pics.items():
        say(f"picture {name}: {p}")
    return pics
