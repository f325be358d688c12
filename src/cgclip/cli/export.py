"""``cgclip export``: a run's model as an ONNX file, checked against PyTorch on the run's tracklets."""

from __future__ import annotations

import argparse
from typing import Any

from cgclip.cli._options import command_help, in_range


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    from cgclip.embed.settings import DEFAULT_OPSET, OPSET_RANGE, PARITY_TOLERANCE, PARITY_TRACKLETS

    p = subparsers.add_parser(
        "export",
        help="export a trained run as an ONNX file (checked against PyTorch)",
        **command_help(
            "Export a run's inference path to ONNX: frames [B, T, 3, H, W] (and camera ids [B] when the model "
            "uses SIE) -> the retrieval feature [B, F], with dynamic B and T; --per-frame exports crops "
            "[N, 3, H, W] -> per-crop features. The file is checked with onnxruntime against PyTorch fp32 on "
            "tracklets of the run's dataset and written only when the largest difference of the L2-normalised "
            "features is within --tolerance. Needs: pip install 'cgclip[export]'.",
            "cgclip export --run runs/sports-cgclip --out sports-cgclip.onnx",
            "cgclip export --run runs/sports-cgclip --out crops.onnx --per-frame --dataset worlds/sports-vreid",
        ),
    )
    p.add_argument("--run", required=True, metavar="RUN", help="run folder written by cgclip train")
    p.add_argument("--out", required=True, metavar="FILE", help="the ONNX file to write (e.g. model.onnx)")
    p.add_argument("--checkpoint", choices=("best", "last", "final"), default="best", help="weights (default best)")
    p.add_argument("--per-frame", action="store_true", help="export crops -> per-crop features instead of tracklets")
    lo, hi = OPSET_RANGE
    p.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, {lo} to {hi} (default {DEFAULT_OPSET})"
    )
    p.add_argument(
        "--tolerance",
        type=in_range(float, 0.0, open_min=True),
        default=PARITY_TOLERANCE,
        help=f"largest allowed difference from PyTorch fp32, L2-normalised features (default {PARITY_TOLERANCE:g})",
    )
    p.add_argument("--dataset", metavar="DIR", help="dataset whose tracklets the parity check embeds (default: run's)")
    p.add_argument(
        "--parity-tracklets",
        type=in_range(int, 1),
        default=PARITY_TRACKLETS,
        metavar="N",
        help=f"tracklets the parity check embeds (default {PARITY_TRACKLETS})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, check and report."""
    from cgclip.embed.export import export_run

    report = export_run(
        args.run,
        args.out,
        checkpoint=args.checkpoint,
        per_frame=args.per_frame,
        opset=args.opset,
        tolerance=args.tolerance,
        dataset_root=args.dataset,
        parity_tracklets=args.parity_tracklets,
    )
    kind = "crops [N, 3, H, W]" if report["per_frame"] else "tracklets [B, T, 3, H, W]"
    print(
        f"{report['path']}: {report['model']} {kind} -> {report['feature_dim']}-d feature, opset {report['opset']}, "
        f"{report['size_mb']} MB, exported in {report['export_s']} s"
    )
    print(
        f"parity on {report['tracklets']} tracklets: largest difference {report['max_abs_diff']:.2e} "
        f"(tolerance {report['tolerance']:g}) — passed"
    )
    return 0
