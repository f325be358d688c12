#!/usr/bin/env python
"""Training-step throughput and peak memory of the cgclip models, through the trainer's own code path.

Builds each model exactly as ``cgclip train`` does (``load_clip`` + ``build_model`` + Adam + autocast/GradScaler +
:func:`cgclip.train.trainer.train_step`) on random input tensors of the configured shape (no data loading, so this
is the model's ceiling), runs ``--warmup`` untimed steps and then ``--steps`` timed ones, and prints tracklets/s,
frames/s, milliseconds per step and peak memory (CUDA allocator peak on a GPU, max resident set size on CPU).

Examples::

    # the paper's setting on a GPU: random ViT-B/16 weights, 256x128, 8 frames, batch 32 (8 x 4)
    python benchmarks/bench_train_step.py --random-clip vit-b-16 --device cuda
    # the same code path on this CPU with a smaller batch
    python benchmarks/bench_train_step.py --random-clip vit-b-16 --batch 4 --steps 2 --warmup 1
    # the embedded tiny CLIP at the tiny preset's size
    python benchmarks/bench_train_step.py --clip default --preset tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from cgclip.registry import MODELS

MODEL_NAMES = MODELS.names()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from cgclip.config import load_config  # noqa: E402
from cgclip.train.distributed import resolve_device  # noqa: E402
from cgclip.train.modeling import build_training_model, resolve_clip_path  # noqa: E402
from cgclip.train.optim import optimizer_from_config  # noqa: E402
from cgclip.train.trainer import peak_memory_mb, resolve_precision, train_step  # noqa: E402

WORDS = ["red", "blue", "white", "black", "green", "shirt", "shorts", "socks", "shoes", "hair", "number", "player"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--clip", help="Hugging Face CLIP directory, or 'default' for the embedded tiny CLIP")
    src.add_argument(
        "--random-clip",
        choices=("tiny", "vit-b-16"),
        default=None,
        help="benchmark a randomly initialised CLIP of this size (written to a temporary folder)",
    )
    p.add_argument("--preset", default="sports", help="configuration preset for the model options (default sports)")
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--image-size", nargs=2, type=int, metavar=("H", "W"), help="input size (default: the preset's)")
    p.add_argument("--seq-len", type=int, help="frames per tracklet (default: the preset's)")
    p.add_argument("--batch", type=int, help="tracklets per step (default: the preset's P x K, 32)")
    p.add_argument("--num-classes", type=int, default=300, help="training identities (memory rows; default 300)")
    p.add_argument("--num-cameras", type=int, default=6)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration override, e.g. model.tfe_queries=50",
    )
    return p.parse_args(argv)


def _captions(num_classes: int) -> list[list[str]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(num_classes):
        idx = torch.randint(len(WORDS), (2, 6), generator=g).tolist()
        out.append([" ".join(WORDS[i] for i in row) for row in idx])
    return out


def bench_model(name: str, clip_path: Path, args: argparse.Namespace) -> dict:
    cfg = load_config(args.preset, [f"model.name={name}", *args.overrides])
    size = args.image_size or cfg.data.image_size
    seq_len = args.seq_len or cfg.data.seq_len
    batch = args.batch or cfg.data.p * cfg.data.k
    k = cfg.data.k if batch % cfg.data.k == 0 else 1
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    identities = [f"id{i}" for i in range(args.num_classes)]
    model = build_training_model(
        cfg.model,
        clip_path=clip_path,
        image_size=size,
        num_classes=args.num_classes,
        num_cameras=args.num_cameras,
        identities=identities,
        captions=_captions(args.num_classes),
    ).to(device)
    optimizer = optimizer_from_config(model, cfg.optim)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    images = torch.randn(batch, seq_len, 3, size[0], size[1], device=device)
    pids = (torch.arange(batch, device=device) // k) % args.num_classes
    camids = torch.arange(batch, device=device) % args.num_cameras
    if hasattr(model, "prepare") and name == "tfclip":
        loader = [
            {"images": images, "pid": torch.arange(batch) % args.num_classes, "camid": camids.cpu()}
            for _ in range((args.num_classes + batch - 1) // batch)
        ]
        for i, b in enumerate(loader):
            b["pid"] = (torch.arange(batch) + i * batch) % args.num_classes
        model.prepare(loader)
    model.train()
    for _ in range(args.warmup):
        train_step(model, images, camids, pids, optimizer, scaler, device, precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        out = train_step(model, images, camids, pids, optimizer, scaler, device, precision)
    float(out["loss"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {
        "model": name,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "precision": precision,
        "image_size": list(size),
        "seq_len": seq_len,
        "batch": batch,
        "steps": args.steps,
        "step_ms": 1000 * elapsed / args.steps,
        "tracklets_per_s": batch * args.steps / elapsed,
        "frames_per_s": batch * seq_len * args.steps / elapsed,
        "peak_memory_mb": peak_memory_mb(device),
        "parameters_m": params / 1e6,
        "loss": float(out["loss"]),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cgclip-bench-") as tmp:
        if args.random_clip:
            from cgclip.clip.random_clip import save_random_clip

            clip_path = save_random_clip(Path(tmp) / f"clip-{args.random_clip}", size=args.random_clip)
        else:
            clip_path = resolve_clip_path(None if args.clip in (None, "default") else args.clip)
        rows = [bench_model(name, clip_path, args) for name in args.models]
    header = (
        f"{'model':8} {'device':8} {'prec':5} {'size':8} {'T':>3} {'batch':>5} {'ms/step':>9} "
        f"{'tracklets/s':>12} {'frames/s':>9} {'peak MB':>9} {'params M':>9}"
    )
    print(f"CLIP: {args.random_clip or args.clip or 'default'}")
    print(header)
    for r in rows:
        print(
            f"{r['model']:8} {r['device']:8} {r['precision']:5} {r['image_size'][0]}x{r['image_size'][1]:<4} "
            f"{r['seq_len']:>3} {r['batch']:>5} {r['step_ms']:>9.1f} {r['tracklets_per_s']:>12.2f} "
            f"{r['frames_per_s']:>9.1f} {r['peak_memory_mb']:>9.0f} {r['parameters_m']:>9.1f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"clip": args.random_clip or args.clip or "default", "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
