"""``cgclip pretrain-clip``: pretrain the embedded tiny CLIP on synthetic image–caption pairs and save it (HF format)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain-clip`` sub-command."""
    from cgclip.models.pretrain_clip import PretrainConfig

    d = PretrainConfig()
    parser = subparsers.add_parser(
        "pretrain-clip", help="pretrain the embedded tiny CLIP on synthetic image-caption pairs",
        description="Train a small CLIP (vision 192x4, text 256x4, d=256) contrastively on rendered crops of synthetic "
                    "sports players and dancers (identities disjoint from every ReID world) and their captions, "
                    "then save it as a Hugging Face CLIP directory with its tokenizer and a zero-shot attribute "
                    "report (pretrain_report.json). Without --out it fills the default location used by "
                    "`--clip default` ($CGCLIP_HOME/tiny-clip-v2, ~/.cache/cgclip by default).")
    parser.add_argument("--out", help="output directory (default: the embedded default's location)")
    parser.add_argument("--minutes", type=float, default=d.minutes, help="time budget when --steps is not given (%(default)s)")
    parser.add_argument("--steps", type=int, help="train exactly this many steps (ignores --minutes)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--caption-mix", type=float, nargs=4, default=list(d.caption_mix),
                        metavar=("LONG", "SENTENCE", "PHRASE", "NUMBER"),
                        help="relative frequency of each batch kind (default %(default)s); NUMBER batches pair "
                             "'number N' phrases with back-view crops wearing numbers drawn at random")
    parser.add_argument("--identities", type=int, default=d.train_identities_per_kind,
                        help="training identities per kind (sports, dance) (%(default)s)")
    parser.add_argument("--crops", type=int, default=d.crops_per_identity, help="rendered crops per identity")
    parser.add_argument("--heldout", type=int, default=d.heldout_identities_per_kind,
                        help="held-out identities per kind for the zero-shot report")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pretrain, save, and print the zero-shot attribute accuracies next to chance."""
    from cgclip.errors import ConfigError
    from cgclip.models.pretrain_clip import REPORT_NAME, PretrainConfig, default_clip_dir, pretrain_clip

    if args.steps is not None and args.steps < 1 or args.minutes <= 0 or args.batch_size < 2:
        raise ConfigError("--steps must be >= 1, --minutes > 0 and --batch-size >= 2")
    cfg = PretrainConfig(minutes=args.minutes, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                         lr=args.lr, train_identities_per_kind=args.identities, crops_per_identity=args.crops,
                         heldout_identities_per_kind=args.heldout, warmup_steps=args.warmup_steps,
                         caption_mix=tuple(args.caption_mix))
    out = args.out or default_clip_dir()
    report = pretrain_clip(out, cfg, overwrite=args.overwrite)
    sec = report["seconds"]
    print(f"trained {report['steps']} steps ({report['pairs_seen']} image-caption pairs) in {sec['train']:.0f} s "
          f"(+{sec['render']:.0f} s rendering); loss {report['loss_first10']:.3f} -> {report['loss_last10']:.3f}")
    print(f"zero-shot attribute retrieval on {report['heldout_crops']} held-out crops "
          f"({report['heldout_identities']} unseen identities; the number on back views only):")
    print(f"  {'attribute':<10} {'accuracy':>9} {'chance':>8} {'before':>8} {'values':>7} {'crops':>6}")
    before = report["zero_shot_before_training"]["attributes"]
    for attr, r in report["zero_shot"]["attributes"].items():
        b = before.get(attr, {}).get("accuracy", float("nan"))
        print(f"  {attr:<10} {r['accuracy']:>9.1%} {r['chance']:>8.1%} {b:>8.1%} {r['candidates']:>7d} "
              f"{r['crops']:>6d}")
    z = report["zero_shot"]
    print(f"  {'mean':<10} {z['mean_accuracy']:>9.1%} {z['mean_chance']:>8.1%}")
    if z.get("image_mean_cosine", 0.0) > 0.98:
        print(f"warning: image embeddings collapsed (mean cosine {z['image_mean_cosine']:.3f}); lower --lr")
    print(f"saved to {out} (report: {REPORT_NAME})")
    return 0
