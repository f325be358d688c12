#!/usr/bin/env python
"""Inference speed of the cgclip models and the cost of the temporal modules against the number of frames.

Prints Markdown tables:

1. **Feature-extraction throughput** (tracklets/s, frames/s) of the bare image encoder (mean of the frames' CLS
   tokens: the ceiling), TAP, TF-CLIP and CG-CLIP through ``model.extract`` — in fp32 and under bf16 autocast — and
   each model's throughput as a percentage of the bare encoder's (SPEC goal: CG-CLIP within 5 % of it).
2. **Temporal-module cost vs frames T** (8 … 128): time and peak memory of TFE alone
   (:class:`cgclip.models.tfe.TokenFeatureExtractor`) and TF-CLIP's TMD alone as released
   (:class:`cgclip.models.tfclip_parts.TemporalMemoryDiffusion`: a full transformer block over each frame's 1+P
   tokens plus its message token) on random frame tokens ``[B, T, 1+P, D]`` (no encoder), forward without gradients
   (inference) and, with ``--backward``, forward + backward (training).

Examples::

    python benchmarks/bench_speed.py --quick                     # < 2 min on 2 CPU cores (tiny arch)
    python benchmarks/bench_speed.py                             # tiny arch, 128x64, 8 frames
    python benchmarks/bench_speed.py --arch vit-b-16 --device cuda --batch 32 --backward
    python benchmarks/bench_speed.py --clip path/to/hf-clip-dir --size 256x128

Method:

* Models are built with ``build_model(name, image_encoder=clip.image, inference_only=True)`` around one shared
  encoder (random weights unless ``--clip``; speed does not depend on the weights). The input is one random
  ``[B, T, 3, H, W]`` batch already on the device (no data loading: the model's ceiling).
* Throughput: after ``--warmup`` untimed calls of every variant, ``--batches`` rounds are timed with
  ``time.perf_counter`` (``torch.cuda.synchronize`` on a GPU); each round runs every variant once, in turn, so a change
  of machine load affects all of them alike. Reported: ``B / median(batch time)`` (``--stat min``: the best batch).
  On a CPU shared with other jobs use ``--threads 1``: with several OpenMP threads a descheduled thread stalls every
  parallel region, which makes timings erratic.
* Temporal modules: every point (module, T, pass) runs in a fresh subprocess. Time is the median of ``--repeats``
  calls after warm-up. Peak memory on CPU = the peak resident set size during the first measured call minus the RSS
  just before it: the peak mark (``VmHWM``) is reset with ``/proc/self/clear_refs`` (Linux) right before the call and
  read from ``/proc/self/status`` after it. (``getrusage().ru_maxrss`` is not usable as such: Linux carries it over
  from the parent process across ``exec``; it is the fallback off Linux, as growth over the earlier peak.) A warm-up
  call at T=1 comes first so one-off allocations (thread pools, kernels) are not counted. The figure includes the
  module's outputs and, for forward+backward, the gradients. On CUDA it is ``torch.cuda.max_memory_allocated``
  minus the memory allocated
  before the call. Tables also give time per frame and the ratio to T=8, which stay flat / grow as T if the cost is
  linear in T.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from cgclip.registry import MODELS as REGISTERED
from cgclip.runtime import resolve_device

ARCH_DIMS = {"tiny": (192, 16), "vit-b-16": (768, 16)}  # (vision width D, patch size) of save_random_clip's sizes
DEFAULT_SIZE = {"tiny": "128x64", "vit-b-16": "256x128"}
MODELS = ("encoder", *REGISTERED.names())
STATS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}
LABELS = {"encoder": "bare encoder (CLS mean)", **{m: REGISTERED.meta(m, "label") for m in REGISTERED.names()}}


# --------------------------------------------------------------------------------------------------- helpers
def parse_size(text: str) -> tuple[int, int]:
    """``"256x128"`` → ``(256, 128)`` (height × width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 256x128 (HxW), got {text!r}") from None
    return h, w


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: str) -> Any:
    """bf16 autocast context on ``device``, or a no-op for fp32."""
    if dtype == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def load_text() -> str:
    """Load averages as ``1.23, 1.10, 0.95`` (1, 5, 15 min)."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def proc_status_mb(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status`` in MB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (``VmHWM``) to the current RSS (Linux ``clear_refs``); True on success."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return proc_status_mb("VmHWM") is not None


def max_rss_mb() -> float:
    """Max resident set size so far (``getrusage``; note Linux carries it over from the parent across exec)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ 1. throughput
def clip_dims(clip_dir: Path) -> tuple[int, int]:
    """(vision width, patch size) from a Hugging Face CLIP ``config.json``."""
    cfg = json.loads((clip_dir / "config.json").read_text())
    vision = cfg.get("vision_config", {})
    return int(vision.get("hidden_size", 768)), int(vision.get("patch_size", 16))


def build_variants(
    clip_dir: Path, size: tuple[int, int], frames: int, device: torch.device, models: list[str]
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The feature extractors to time, by name, sharing one image encoder."""
    from cgclip.models import build_model, load_clip

    clip = load_clip(clip_dir, image_size=size)
    encoder = clip.image.to(device).eval()
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for name in models:
        if name == "encoder":

            def bare(images: torch.Tensor) -> torch.Tensor:
                b, t = images.shape[:2]
                with torch.no_grad():
                    return encoder(images.flatten(0, 1))[:, 0].reshape(b, t, -1).mean(dim=1)

            variants[name] = bare
        else:
            model = (
                build_model(
                    name,
                    image_encoder=encoder,
                    num_classes=100,
                    num_cameras=6,
                    inference_only=True,
                    tfe_max_frames=max(64, frames),
                )
                .to(device)
                .eval()
            )
            variants[name] = model.extract
    return variants


def run_throughput(args: argparse.Namespace, device: torch.device, clip_dir: Path) -> str:
    """Time every variant in every precision; return the Markdown table."""
    size = args.size
    models = [m for m in MODELS if m in args.models]
    variants = build_variants(clip_dir, size, args.frames, device, models)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, args.frames, 3, *size, generator=g).to(device)
    rows = []
    for dtype in args.dtypes:
        times: dict[str, list[float]] = {m: [] for m in models}
        with autocast(device, dtype):
            for _ in range(args.warmup):
                for fn in variants.values():
                    fn(images)
            sync(device)
            for _ in range(args.batches):
                for name, fn in variants.items():
                    sync(device)
                    t0 = time.perf_counter()
                    fn(images)
                    sync(device)
                    times[name].append(time.perf_counter() - t0)
        med = {m: STATS[args.stat](v) for m, v in times.items()}
        ref = med.get("encoder")
        for m in models:
            tps = args.batch / med[m]
            pct = f"{100.0 * ref / med[m]:.1f} %" if ref else "n/a"
            rows.append([LABELS[m], dtype, f"{tps:.2f}", f"{tps * args.frames:.1f}", f"{1e3 * med[m]:.1f}", pct])
    header = ["model", "precision", "tracklets/s", "frames/s", f"ms/batch ({args.stat})", "% of bare encoder"]
    return table(header, rows)


# ------------------------------------------------------------------------------- 2. temporal-module cost
def measure_point(spec: dict) -> dict:
    """Run one (module, T, pass) point in this process; return time (ms) and peak memory (MB)."""
    from cgclip.models.tfclip_parts import TemporalMemoryDiffusion
    from cgclip.models.tfe import TokenFeatureExtractor

    if spec["threads"] > 0:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    b, t, n, d = spec["batch"], spec["frames"], spec["tokens"], spec["dim"]
    if spec["module"] == "tfe":
        module = TokenFeatureExtractor(d, num_queries=spec["queries"], num_blocks=1, max_frames=max(t, 64))
    else:
        module = TemporalMemoryDiffusion(d)
    module = module.to(device)
    backward = spec["pass"] == "fwd+bwd"
    module.train(backward)
    tokens = torch.randn(b, t, n, d, device=device)
    small = tokens[:, :1].clone()
    if backward:
        tokens.requires_grad_(True)
        small.requires_grad_(True)

    def call(x: torch.Tensor) -> None:
        with autocast(device, spec["dtype"]):
            if backward:
                out = module(x)
                out = out[0] if isinstance(out, tuple) else out
                out.float().sum().backward()
                module.zero_grad(set_to_none=True)
                x.grad = None
            else:
                with torch.no_grad():
                    module(x)
        sync(device)

    call(small)  # one-off allocations (thread pools, kernels) before the memory baseline
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call(tokens)
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    elif reset_peak_rss():  # Linux: peak RSS of this call alone
        before = proc_status_mb("VmRSS") or 0.0
        call(tokens)
        peak = max(0.0, (proc_status_mb("VmHWM") or 0.0) - before)
    else:  # elsewhere: growth of the max RSS over the process's earlier peak (a lower bound)
        before = max_rss_mb()
        call(tokens)
        peak = max(0.0, max_rss_mb() - before)
    for _ in range(spec["warmup"]):
        call(tokens)
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        call(tokens)
        times.append(time.perf_counter() - t0)
    return {"ms": 1e3 * STATS[spec["stat"]](times), "peak_mb": peak}


def run_point_subprocess(spec: dict) -> dict:
    """Measure one point in a fresh Python process (clean peak-RSS accounting)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_point", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"point {spec['module']} T={spec['frames']} {spec['pass']} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_temporal(args: argparse.Namespace, device: torch.device, dim: int, tokens: int) -> str:
    """TFE and TMD time and memory against T; return the Markdown tables."""
    passes = ["forward"] + (["fwd+bwd"] if args.backward else [])
    out = []
    for pass_ in passes:
        results: dict[tuple[str, int], dict] = {}
        for module in ("tfe", "tmd"):
            for t in args.temporal_frames:
                spec = {
                    "module": module,
                    "frames": t,
                    "batch": args.temporal_batch,
                    "tokens": tokens,
                    "dim": dim,
                    "queries": args.tfe_queries,
                    "pass": pass_,
                    "device": str(device),
                    "dtype": args.temporal_dtype,
                    "repeats": args.repeats,
                    "warmup": 1,
                    "threads": args.threads,
                    "stat": args.stat,
                }
                results[(module, t)] = run_point_subprocess(spec)
        rows = []
        t0 = args.temporal_frames[0]
        for t in args.temporal_frames:
            row = [str(t)]
            for module in ("tfe", "tmd"):
                r, base = results[(module, t)], results[(module, t0)]
                row += [
                    f"{r['ms']:.2f}",
                    f"{1e3 * r['ms'] / t:.1f}",
                    f"{r['ms'] / base['ms']:.2f}×",
                    f"{r['peak_mb']:.1f}",
                ]
            rows.append(row)
        header = ["T"]
        for label in ("TFE", "TMD"):
            header += [f"{label} ms", f"{label} µs/frame", f"{label} time / T={t0}", f"{label} peak MB"]
        title = (
            f"**{pass_}** ({'no grad, eval mode' if pass_ == 'forward' else 'train mode, gradients for the tokens'}"
            f"), B={args.temporal_batch}, tokens/frame={tokens}, D={dim}, N^Q={args.tfe_queries}, "
            f"{args.temporal_dtype}"
        )
        out.append(title + "\n\n" + table(header, rows))
    return "\n\n".join(out)


# ----------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, help="Hugging Face CLIP directory (default: a random one of --arch)")
    p.add_argument("--arch", choices=tuple(ARCH_DIMS), default="tiny", help="random CLIP size (default tiny)")
    p.add_argument("--size", type=parse_size, help="input HxW (default 128x64 for tiny, 256x128 for vit-b-16)")
    p.add_argument("--frames", type=int, default=8, help="frames per tracklet for the throughput table (default 8)")
    p.add_argument("--batch", type=int, help="tracklets per batch (default 16; --quick 4)")
    p.add_argument("--batches", type=int, help="timed rounds (default 20; --quick 5)")
    p.add_argument("--warmup", type=int, help="untimed rounds first (default 3; --quick 1)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--dtypes", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = torch's default; 1 is steadier on a machine shared with other jobs)",
    )
    p.add_argument(
        "--stat",
        choices=tuple(STATS),
        default="median",
        help="statistic of the repeated timings: median (default) or min (best of, steadier under load)",
    )
    p.add_argument("--temporal-frames", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument("--temporal-batch", type=int, help="tracklets for the temporal table (default 8; --quick 4)")
    p.add_argument("--temporal-dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--tfe-queries", type=int, default=15, help="TFE N^Q (default 15)")
    p.add_argument("--repeats", type=int, help="timed calls per temporal point (default 10; --quick 3)")
    p.add_argument("--backward", action="store_true", help="also time forward+backward of the temporal modules")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-temporal", action="store_true")
    p.add_argument("--quick", action="store_true", help="small sizes: a check that runs in under ~2 minutes")
    p.add_argument("--_point", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, small in (
        ("batch", 16, 4),
        ("batches", 20, 5),
        ("warmup", 3, 1),
        ("temporal_batch", 8, 4),
        ("repeats", 10, 3),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.size is None:
        args.size = parse_size(DEFAULT_SIZE[args.arch])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._point:
        print(json.dumps(measure_point(json.loads(args._point))))
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    start = time.perf_counter()
    print(f"# cgclip speed benchmark\n\ncommand: `python benchmarks/bench_speed.py {' '.join(sys.argv[1:])}`  ")
    print(
        f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{platform.processor() or platform.machine()}"
        f"  \nload average at start: {load_text()}\n"
    )
    with tempfile.TemporaryDirectory(prefix="cgclip-bench-") as tmp:
        if args.clip is not None:
            clip_dir, source = args.clip, str(args.clip)
        elif args.skip_throughput:  # the temporal table needs only the widths
            clip_dir, source = None, f"random {args.arch}"
        else:
            from cgclip.models import save_random_clip

            clip_dir = save_random_clip(Path(tmp) / "clip", size=args.arch)
            source = f"random {args.arch}"
        dim, patch = clip_dims(Path(clip_dir)) if clip_dir is not None else ARCH_DIMS[args.arch]
        tokens = 1 + (args.size[0] // patch) * (args.size[1] // patch)
        if not args.skip_throughput:
            print(
                f"## Feature extraction (`model.extract`), CLIP {source}, {args.size[0]}x{args.size[1]}, "
                f"{args.frames} frames, batch {args.batch}, {args.batches} timed batches after {args.warmup} "
                "warm-up\n"
            )
            print(run_throughput(args, device, Path(clip_dir)) + "\n", flush=True)  # type: ignore[arg-type]
    if not args.skip_temporal:
        print(
            f"## Temporal module alone vs frames T (random tokens, {tokens} tokens/frame, D={dim}, {args.stat} "
            f"of {args.repeats})\n"
        )
        print(run_temporal(args, device, dim, tokens) + "\n")
    print(f"load average at end: {load_text()}; total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
