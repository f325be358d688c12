"""``cgclip pretrain-clip``: pretrain the embedded tiny CLIP on synthetic image–caption pairs, saved in HF format."""

from __future__ import annotations

import argparse

from cgclip.cli._options import add_runtime_options, command_help
from cgclip.clip.sizes import TINY_SIZES
from cgclip.pretrain.config import CROP_STYLES, PretrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain-clip`` sub-command."""
    d = PretrainConfig()
    parser = subparsers.add_parser(
        "pretrain-clip",
        help="pretrain the embedded tiny CLIP on synthetic image-caption pairs",
        **command_help(
            "Train a small CLIP (conv stem + vision transformer 192x4, text 256x4, d=256) on rendered "
            "crops of synthetic sports players and dancers (identities disjoint from every ReID world): "
            "contrastive image-caption batches plus attribute supervision (uniform, hair, shoes, socks, "
            "accessories, jersey number). Saves a Hugging Face CLIP directory with its tokenizer and a "
            "zero-shot attribute report (pretrain_report.json). The defaults are the recipe of the CLIP "
            "shipped with cgclip; a run with fixed --steps resumes when interrupted and rerun.",
            "cgclip pretrain-clip --out clip/tiny-clip",
            "cgclip pretrain-clip --out clip/tiny-short --steps 300 --device cuda --precision bf16",
        ),
    )
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--steps", type=int, default=d.steps, help="train exactly this many steps (%(default)s)")
    parser.add_argument("--minutes", type=float, help="train for a time budget instead of --steps (not resumable)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument(
        "--number-batch",
        type=int,
        default=d.number_batch,
        help="back-view crops wearing random numbers added to each step (%(default)s)",
    )
    parser.add_argument(
        "--caption-mix",
        type=float,
        nargs=3,
        default=list(d.caption_mix),
        metavar=("LONG", "SENTENCE", "PHRASE"),
        help="relative frequency of each caption kind (default %(default)s)",
    )
    parser.add_argument(
        "--attribute-weight",
        type=float,
        default=d.attribute_weight,
        help="weight of the attribute text-classifier loss (%(default)s; 0 = contrastive only)",
    )
    parser.add_argument(
        "--arch",
        default=d.architecture,
        choices=TINY_SIZES,
        help="image tower: tiny-vit (16-px patches), tiny (stride-8 conv stem) or tiny-cnn (stride-16 "
        "conv stem with a global max-pool) (%(default)s)",
    )
    parser.add_argument(
        "--stem-steps",
        type=int,
        default=d.stem_steps,
        help="steps that train the conv stem and its heads alone first (%(default)s)",
    )
    parser.add_argument(
        "--stem-weight",
        type=float,
        default=d.stem_weight,
        help="weight of the conv-stem attribute and digit heads (%(default)s)",
    )
    parser.add_argument(
        "--joint-digit-weight",
        type=float,
        default=d.joint_digit_weight,
        help="weight of the digit head shared by both towers' embeddings (%(default)s; 0 = off)",
    )
    parser.add_argument(
        "--identities",
        type=int,
        default=d.train_identities_per_kind,
        help="training identities per kind (sports, dance) (%(default)s)",
    )
    parser.add_argument(
        "--crop-style",
        default=d.crop_style,
        choices=CROP_STYLES,
        help="crops cut at the person's box in a world scene, as ReID crops (tight), or a small "
        "person on a plain background (loose, tiny-clip-v3's recipe) (%(default)s)",
    )
    parser.add_argument("--crops", type=int, default=d.crops_per_identity, help="rendered crops per identity")
    parser.add_argument(
        "--heldout",
        type=int,
        default=d.heldout_identities_per_kind,
        help="held-out identities per kind for the zero-shot report",
    )
    parser.add_argument(
        "--number-crops",
        type=int,
        default=d.number_crops,
        help="back-view crops in the random-number pool (%(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    add_runtime_options(parser)
    parser.set_defaults(func=run)


#: How the command line spells the :class:`PretrainConfig` fields it sets (for error messages).
FLAGS = {
    "architecture": "--arch",
    "train_identities_per_kind": "--identities",
    "crops_per_identity": "--crops",
    "heldout_identities_per_kind": "--heldout",
    **{
        f: "--" + f.replace("_", "-")
        for f in (
            "minutes steps seed batch_size number_batch lr warmup_steps caption_mix attribute_weight stem_steps "
            "stem_weight joint_digit_weight crop_style number_crops"
        ).split()
    },
}


def _command(args: argparse.Namespace) -> str:
    """The full command line of this run, every option spelled out (recorded in the checkpoint's manifest)."""
    import shlex

    parts = ["cgclip", "pretrain-clip"]
    for key in (
        "out",
        "arch",
        "steps",
        "minutes",
        "seed",
        "batch_size",
        "number_batch",
        "lr",
        "warmup_steps",
        "caption_mix",
        "attribute_weight",
        "stem_steps",
        "stem_weight",
        "joint_digit_weight",
        "identities",
        "crops",
        "crop_style",
        "heldout",
        "number_crops",
        "device",
        "precision",
    ):
        value = getattr(args, key)
        if value is None or key == "steps" and args.minutes is not None:
            continue
        values = value if isinstance(value, list) else [value]
        parts += [f"--{key.replace('_', '-')}", *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Pretrain, save, and print the zero-shot attribute accuracies next to chance."""
    from cgclip.pretrain.config import check_pretrain_config

    budget = {"steps": None, "minutes": args.minutes} if args.minutes is not None else {"steps": args.steps}
    cfg = PretrainConfig(
        seed=args.seed,
        batch_size=args.batch_size,
        number_batch=args.number_batch,
        lr=args.lr,
        train_identities_per_kind=args.identities,
        crops_per_identity=args.crops,
        crop_style=args.crop_style,
        number_crops=args.number_crops,
        heldout_identities_per_kind=args.heldout,
        warmup_steps=args.warmup_steps,
        caption_mix=tuple(args.caption_mix),
        attribute_weight=args.attribute_weight,
        stem_weight=args.stem_weight,
        joint_digit_weight=args.joint_digit_weight,
        stem_steps=args.stem_steps,
        architecture=args.arch,
        **budget,
    )
    check_pretrain_config(cfg, FLAGS)
    from cgclip.pretrain.run import REPORT_NAME, pretrain_clip

    out = args.out
    report = pretrain_clip(
        out, cfg, overwrite=args.overwrite, command=_command(args), device=args.device, precision=args.precision
    )
    sec = report["seconds"]
    print(
        f"trained {report['stem_steps']} stem steps + {report['steps']} steps ({report['crops_seen']} crops) in "
        f"{sec['train']:.0f} s "
        f"(+{sec['render']:.0f} s rendering); loss {report['loss_first10']:.3f} -> {report['loss_last10']:.3f}"
    )
    print(
        f"zero-shot attribute retrieval on {report['heldout_crops']} held-out crops "
        f"({report['heldout_identities']} unseen identities; the number on back views only):"
    )
    print(f"  {'attribute':<10} {'accuracy':>9} {'chance':>8} {'before':>8} {'values':>7} {'crops':>6}")
    before = report["zero_shot_before_training"]["attributes"]
    for attr, r in report["zero_shot"]["attributes"].items():
        b = before.get(attr, {}).get("accuracy", float("nan"))
        print(
            f"  {attr:<10} {r['accuracy']:>9.1%} {r['chance']:>8.1%} {b:>8.1%} {r['candidates']:>7d} {r['crops']:>6d}"
        )
    z = report["zero_shot"]
    print(f"  {'mean':<10} {z['mean_accuracy']:>9.1%} {z['mean_chance']:>8.1%}")
    if z.get("image_mean_cosine", 0.0) > 0.98:
        print(f"warning: image embeddings collapsed (mean cosine {z['image_mean_cosine']:.3f}); lower --lr")
    print(f"saved to {out} (report: {REPORT_NAME})")
    return 0
