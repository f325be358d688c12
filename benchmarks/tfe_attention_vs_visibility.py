"""Does CG-CLIP's TFE give occluded frames less weight? TFE attention against the world's ground-truth visibility.

For every test tracklet (query and gallery) of a finished demo folder, the trained CG-CLIP run's TFE attention
(:meth:`cgclip.models.cgclip_model.CGCLIPModel.frame_weights`: query token 1, last block, mean over heads) is computed
on the test protocol's frames (the first frame of each RRS chunk) and set beside each frame's visibility from the
synthetic world's ``gt.txt`` (the visible fraction of the box; crops below 0.3 are not in the dataset). Printed per
world: how many tracklets have an occluded frame (visibility < ``--occluded``), the mean attention of occluded and
clear (visibility 1) frames in units of the uniform weight 1/T, the share of those tracklets in which the occluded
frames get less than the clear ones, the mean within-tracklet Pearson correlation of weight and visibility, and
two figures that say why the weights
can be flat: the entropy of query token 1's attention over all T×N keys as a share of the uniform entropy, and the
share of that attention on the frames' CLS tokens (uniform: 1/N).

    python benchmarks/tfe_attention_vs_visibility.py .bench_out/compare/seed-0 [--checkpoint final] [--json F]

The statistics, the visibility table and the crop-path parser live in :mod:`cgclip.eval.frame_weighting`; this
script only loads the runs and prints (and optionally saves) the figures.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from cgclip.data import load_dataset
from cgclip.data.image_io import read_rgb
from cgclip.data.sampling import rrs_first_indices
from cgclip.data.transforms import build_transform
from cgclip.demo.pictures import RunFeatures
from cgclip.eval.frame_weighting import OCCLUDED, crop_key, frame_visibility, summarise


def token_attention(weights: torch.Tensor, frames: int) -> tuple[float, float, float]:
    """Why frame weights can be flat, from query token 1's attention over all keys (last TFE block;
    ``weights [1, heads, NQ, T*N]``): the entropy of its mean over heads across the T×N keys as a share of the
    uniform one (1 = uniform), the share of that mass on the frames' CLS tokens (uniform: 1/N), and the spread of its
    attention logits (the standard deviation over keys of log-probability, mean over heads: the softmax's
    temperature at work; 0 = uniform)."""
    per_head = weights[0, :, 0].float()
    p = per_head.mean(dim=0)
    entropy = float(-(p * p.clamp_min(1e-12).log()).sum() / np.log(p.numel()))
    spread = float(per_head.clamp_min(1e-12).log().std(dim=-1).mean())
    return entropy, float(p.reshape(frames, -1)[:, 0].sum()), spread


def attention_and_visibility(
    demo: Path,
    kind: str,
    checkpoint: str = "best",
    tokens: list[tuple[float, float, float]] | None = None,
    run_name: str = "cgclip",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(TFE weights, visibilities) per test tracklet of ``kind``'s CG-CLIP run ``run_name`` in the demo folder
    ``demo``; with ``tokens`` also appends each tracklet's :func:`token_attention` figures to it."""
    run = RunFeatures(demo / "runs" / kind / run_name, checkpoint)
    seen: list[torch.Tensor] = []
    if tokens is not None and run.model.tfe is not None:
        run.model.tfe.blocks[-1].cross.register_forward_hook(
            lambda m, i, o: seen.append(o[1]) if o[1] is not None else None
        )
    dataset = load_dataset("vreid", demo / "datasets" / kind)
    vis = frame_visibility(demo / "worlds" / kind)
    if not vis:
        raise SystemExit(f"{demo / 'worlds' / kind}: no val/*/gt/gt.txt; is this a finished demo folder?")
    transform = build_transform(size=tuple(run.cfg.data.image_size), train=False)
    out = []
    for t in dataset.query + dataset.gallery:
        paths = [t.frames[i] for i in rrs_first_indices(len(t), run.cfg.data.seq_len)]
        clip = transform([read_rgb(p) for p in paths]).unsqueeze(0)
        with torch.no_grad():
            weights = run.model.frame_weights(clip, torch.tensor([t.camid]))
        if weights is None:
            raise SystemExit(f"{demo / 'runs' / kind / 'cgclip'}: this CG-CLIP run has no TFE (tfe_output)")
        out.append((weights[0].float().numpy(), np.array([vis[crop_key(p)] for p in paths])))
        if tokens is not None and seen:
            tokens.append(token_attention(seen.pop(), len(paths)))
    return out


def main() -> None:
    """Print the table for each world of each demo folder given."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demos", nargs="+", type=Path, help="finished demo folders (cgclip demo --out DIR)")
    ap.add_argument("--worlds", nargs="+", default=["sports", "dance"])
    ap.add_argument(
        "--occluded", type=float, default=OCCLUDED, help=f"visibility below this is 'occluded' (default {OCCLUDED})"
    )
    ap.add_argument("--run", default="cgclip", help="the run folder's name under runs/<world>/ (default cgclip)")
    ap.add_argument("--checkpoint", default="best", help="best (the selected epoch, default) or final")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file (NaN, inf as null)")
    args = ap.parse_args()
    rows = []
    print(
        f"| demo | world | test tracklets | with occluded (< {args.occluded}) and clear frames | "
        "weight × T, occluded | weight × T, clear | occluded get less | corr(weight, visibility) | "
        "median max/min weight | query-1 entropy / uniform | mass on CLS tokens | logit std |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for demo in args.demos:
        for kind in args.worlds:
            tokens: list[tuple[float, float, float]] = []
            s = summarise(attention_and_visibility(demo, kind, args.checkpoint, tokens, args.run), args.occluded)
            for i, name in enumerate(("token_entropy", "cls_share", "logit_std")):
                s[name] = float(np.mean([x[i] for x in tokens])) if tokens else float("nan")
            figures = {k: v if math.isfinite(v) else None for k, v in s.items()}
            rows.append({"demo": str(demo), "world": kind, **figures})
            print(
                f"| {demo} | {kind} | {s['tracklets']} | {s['mixed']} | {s['occluded_weight']:.3f} | "
                f"{s['clear_weight']:.3f} | {s['occluded_less']:.0f} % | {s['corr']:+.3f} | "
                f"{s['max_over_min']:.2f} | {s['token_entropy']:.4f} | {s['cls_share']:.3f} | "
                f"{s['logit_std']:.3f} |"
            )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"occluded": args.occluded, "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
