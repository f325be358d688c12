#!/usr/bin/env python
"""ONNX Runtime against PyTorch on CPU: tracklets/s and crops/s of exported models, at equal features.

For each CLIP layout — ``embedded`` (the shipped tiny CLIP, conv stem, 128x64) and ``vit-b-16`` (a random
ViT-B/16-layout CLIP, 256x128) — and each model, the script builds the inference model
(``build_model(..., inference_only=True)``), exports it with :func:`cgclip.embed.export_model` twice (tracklets
``[B, T, 3, H, W]`` and ``--per-frame`` crops ``[N, 3, H, W]``), and times on the same random input:

* ``torch fp32`` — ``model.extract``; ``torch bf16`` — the same under CPU bf16 autocast;
* ``onnxruntime fp32`` — the exported file (graph optimisation level ``ORT_ENABLE_ALL``);
* ``onnxruntime int8`` — the file after ``onnxruntime.quantization.quantize_dynamic`` (int8 weights of MatMul/Gemm,
  activations quantised on the fly).

Each engine's features are compared with PyTorch fp32 (largest absolute difference of the L2-normalised features
and the lowest cosine similarity), so speed is read at equal features: only engines within the export's parity
tolerance (:data:`cgclip.embed.settings.PARITY_TOLERANCE`) give the same features. Every round runs every engine
once, in turn, so machine load hits them alike; reported figures are medians over ``--rounds``. Torch and
onnxruntime use the same number of threads (``--threads``).

Examples::

    python benchmarks/bench_onnx.py --quick                       # ~1 min: embedded layout, few rounds
    python benchmarks/bench_onnx.py --threads 1 --out .bench_out/onnx.json
    python benchmarks/bench_onnx.py --layouts vit-b-16 --models tap cgclip --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

LAYOUTS = {"embedded": (128, 64), "vit-b-16": (256, 128)}
#: (tracklets per batch, crops per batch) by layout
BATCHES = {"embedded": (8, 64), "vit-b-16": (2, 16)}
ENGINES = ("torch fp32", "torch bf16", "onnxruntime fp32", "onnxruntime int8")


def load_text() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def clip_dir(layout: str, scratch: Path) -> Path:
    """The embedded CLIP's folder, or a random ViT-B/16-layout CLIP written to ``scratch``."""
    if layout == "embedded":
        from cgclip.clip.embedded import embedded_clip_dir

        return embedded_clip_dir()
    from cgclip.clip.random_clip import save_random_clip

    path = scratch / "vit-b-16"
    return path if path.is_dir() else save_random_clip(path, size="vit-b-16")


def build(layout: str, name: str, scratch: Path) -> torch.nn.Module:
    """The inference model ``name`` around the layout's CLIP (6 cameras with SIE, 100 identities)."""
    from cgclip.models import build_model, load_clip

    clip = load_clip(clip_dir(layout, scratch), image_size=LAYOUTS[layout], num_cameras=6)
    return build_model(name, image_encoder=clip.image, num_classes=100, num_cameras=6, inference_only=True).eval()


def sessions(model: torch.nn.Module, layout: str, scratch: Path, threads: int) -> dict[tuple[str, bool], Any]:
    """onnxruntime sessions (fp32, int8) of the tracklet and the per-frame exports."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from cgclip.embed import export_model

    info = {"model": "bench", "image_size": list(LAYOUTS[layout]), "seq_len": 8, "sampling": "rrs_first"}
    info.update(num_cameras=6, feature_dim=int(model.feature_dim))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    out = {}
    for per_frame in (False, True):
        path = scratch / f"{layout}-{'crops' if per_frame else 'tracklets'}.onnx"
        export_model(model, path, info, per_frame=per_frame)
        quant = path.with_suffix(".int8.onnx")
        root = logging.getLogger()
        level, root.level = root.level, logging.ERROR  # its advice to pre-process is printed for every file
        try:
            quantize_dynamic(str(path), str(quant), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        for engine, file in (("onnxruntime fp32", path), ("onnxruntime int8", quant)):
            out[engine, per_frame] = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    return out


def engines(model: torch.nn.Module, sess: dict[tuple[str, bool], Any], per_frame: bool) -> dict[str, Callable]:
    """name → function (images numpy, camids numpy) → features numpy."""

    def torch_run(bf16: bool) -> Callable:
        def run(images: np.ndarray, cams: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(images)
            x = x.unsqueeze(1) if per_frame else x
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model.extract(x, torch.from_numpy(cams)).float().numpy()

        return run

    def ort_run(session: Any) -> Callable:
        return lambda images, cams: session.run(None, {"images": images, "camids": cams})[0]

    return {
        "torch fp32": torch_run(False),
        "torch bf16": torch_run(True),
        "onnxruntime fp32": ort_run(sess["onnxruntime fp32", per_frame]),
        "onnxruntime int8": ort_run(sess["onnxruntime int8", per_frame]),
    }


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(fns: dict[str, Callable], images: np.ndarray, cams: np.ndarray, rounds: int) -> dict[str, dict]:
    """Median seconds per batch and the feature differences from torch fp32, per engine."""
    ref = normalise(fns["torch fp32"](images, cams))
    out: dict[str, dict] = {}
    for name, fn in fns.items():  # warm-up, and the features
        got = normalise(fn(images, cams))
        out[name] = {"max_abs_diff": float(np.abs(got - ref).max()), "min_cos": float((got * ref).sum(1).min())}
        out[name]["times"] = []
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(images, cams)
            out[name]["times"].append(time.perf_counter() - start)
    for v in out.values():
        v["seconds"] = statistics.median(v["times"])
    return out


def run_layout(layout: str, name: str, args: argparse.Namespace, scratch: Path) -> list[dict]:
    """Rows (one per engine and input kind) for one layout and model."""
    model = build(layout, name, scratch)
    sess = sessions(model, layout, scratch, args.threads)
    h, w = LAYOUTS[layout]
    tracklets, crops = BATCHES[layout] if not args.quick else (2, 8)
    rng = np.random.default_rng(0)
    rows = []
    for per_frame, n in ((False, tracklets), (True, crops)):
        shape = (n, 3, h, w) if per_frame else (n, args.frames, 3, h, w)
        images = rng.standard_normal(shape, dtype=np.float32)
        cams = rng.integers(0, 6, n).astype(np.int64)
        for engine, r in measure(engines(model, sess, per_frame), images, cams, args.rounds).items():
            unit = "crops/s" if per_frame else "tracklets/s"
            rows.append({"layout": layout, "model": name, "input": unit, "engine": engine, "batch": n, **r})
    return rows


def markdown(rows: list[dict], tolerance: float) -> str:
    """The table: per layout, model and input, each engine's rate, speed-up over torch fp32 and feature agreement."""
    lines = [
        "| layout | model | input | engine | rate | × torch fp32 | max abs diff | min cosine | same features |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["layout"], r["model"], r["input"]): r["seconds"] for r in rows if r["engine"] == "torch fp32"}
    for r in rows:
        rate = r["batch"] / r["seconds"]
        speedup = base[r["layout"], r["model"], r["input"]] / r["seconds"]
        same = "yes" if r["max_abs_diff"] <= tolerance else "no"
        lines.append(
            f"| {r['layout']} | {r['model']} | {r['input']} | {r['engine']} | {rate:.3g} | {speedup:.2f} | "
            f"{r['max_abs_diff']:.1e} | {r['min_cos']:.5f} | {same} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    from cgclip.embed.settings import PARITY_TOLERANCE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    p.add_argument("--models", nargs="+", default=["cgclip"], help="registered models (default cgclip)")
    p.add_argument("--frames", type=int, default=8, help="frames per tracklet (T)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (median reported)")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime alike")
    p.add_argument("--quick", action="store_true", help="embedded layout, small batches, 3 rounds")
    p.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.layouts, args.rounds = ["embedded"], 3
    torch.set_num_threads(args.threads)
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {cpu}")
    print(f"threads {args.threads}, T = {args.frames}, {args.rounds} rounds; load at start: {load_text()}")
    rows: list[dict] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cgclip-bench-onnx-") as tmp:
        for layout in args.layouts:
            for name in args.models:
                rows += run_layout(layout, name, args, Path(tmp))
                print(f"  {layout} {name} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    print(f"load at end: {load_text()}; {time.perf_counter() - start:.0f} s")
    print(markdown(rows, PARITY_TOLERANCE))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
