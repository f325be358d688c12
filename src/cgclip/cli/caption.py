"""``cgclip caption``: write and check the captions of CG-CLIP's Text Memory.

Subcommands: ``from-annotations`` (identity table → sentences + paraphrases), ``mllm`` (caption frames with a served or
local multimodal LLM; resumable), ``augment`` (paraphrase captions through a back-end), ``report`` (caption quality:
collisions between identities, missing identities) and ``attributes`` (CLIP zero-shot attribute captions).
Jobs that leave failed items exit with status 1; rerun the same command to retry only those.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cgclip.cli._caption_opts import (
    add_backend_options,
    add_frame_options,
    build_backend,
    check_identity_splits,
    dataset_identities,
    frame_items,
)
from cgclip.cli._options import add_deprecated_alias, add_runtime_options, add_word_list, command_help, in_range
from cgclip.config_sections import SEED_MAX

#: ``--identity-splits``: identities whose split (the identity table's ``split`` column, or for a dataset without
#: one the partitions it appears in) is one of these.
IDENTITY_SPLITS_HELP = (
    "identities of these splits: identities.csv's split column (train, val, ...) or, without a "
    "table, the dataset's partitions (train, query, gallery); 'all' = every identity; comma- or "
    "space-separated"
)


def register(subparsers: Any) -> None:
    """Add ``cgclip caption`` and its subcommands."""
    parser = subparsers.add_parser(
        "caption",
        help="write, augment and check captions",
        **command_help(
            (__doc__ or "").replace("``", ""),
            "cgclip caption from-annotations data/sports --out captions/sports.jsonl",
            "cgclip caption report --captions captions/sports.jsonl --dataset data/sports",
        ),
    )
    sub = parser.add_subparsers(dest="caption_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "from-annotations",
        help="captions from the identity table (templates + paraphrases)",
        **command_help(
            "Write captions of each identity from its identities.csv row: template "
            "sentences and rule-based (or LLM) paraphrases; optionally translate "
            "non-English annotations first.",
            "cgclip caption from-annotations data/sports --out captions/sports.jsonl",
            "cgclip caption from-annotations data/sports/identities.csv --out "
            "captions/train.jsonl --identity-splits train --num 5",
        ),
    )
    p.add_argument("table", type=Path, help="identities.csv, or a dataset folder holding one")
    p.add_argument("--out", type=Path, required=True, help="caption store to write (.jsonl; added to if it exists)")
    p.add_argument(
        "--num", type=in_range(int, 1), default=10, help="captions per identity (default 10, as in the paper)"
    )
    p.add_argument("--seed", type=in_range(int, 0, SEED_MAX), default=0)
    splits = add_word_list(p, "--identity-splits", None, IDENTITY_SPLITS_HELP + " (default all)")
    add_deprecated_alias(p, "--splits", splits)
    p.add_argument(
        "--paraphraser",
        choices=("rules", "llm"),
        default="rules",
        help="rule-based paraphrases (no model), or paraphrases through a back-end",
    )
    p.add_argument("--translate", action="store_true", help="translate non-English annotations through a back-end")
    p.add_argument("--language", default="English")
    add_backend_options(p)
    p.set_defaults(func=run_from_annotations)

    p = sub.add_parser(
        "mllm",
        help="caption frames with a multimodal LLM (resumable)",
        **command_help(
            "Caption the frames of a dataset (or an image folder) with a multimodal LLM "
            "served behind an OpenAI-compatible endpoint or loaded from a local model "
            "directory. A rerun fills only what is missing.",
            "cgclip caption mllm --dataset data/sports --frames 2 --endpoint "
            "http://127.0.0.1:8000/v1 --model Qwen2-VL-7B-Instruct --out captions/mllm.jsonl",
            "cgclip caption mllm --images crops --model-dir models/blip "
            "--prefix 'a photo of' "
            "--device cuda --out captions/blip.jsonl",
        ),
    )
    add_frame_options(p)
    p.add_argument("--out", type=Path, required=True, help="caption store (.jsonl); a rerun fills what is missing")
    p.add_argument("--prompt-file", type=Path, help="prompt text (default: the paper's few-shot prompt)")
    p.add_argument("--limit", type=in_range(int, 0), help="caption at most this many new frames")
    add_backend_options(p)
    p.set_defaults(func=run_mllm)

    p = sub.add_parser(
        "augment",
        help="paraphrase captions through a back-end (resumable)",
        **command_help(
            "Paraphrase the captions of a store through a back-end (an endpoint or a local "
            "text model) and add the paraphrases to the store. A rerun fills only what is "
            "missing.",
            "cgclip caption augment --captions captions/mllm.jsonl --model-dir models/qwen --per-caption 2",
        ),
    )
    p.add_argument("--captions", type=Path, required=True, help="caption store to read and add to")
    p.add_argument("--sources", default="mllm", help="paraphrase captions of these sources (default mllm)")
    p.add_argument("--per-caption", type=in_range(int, 1), default=1, help="paraphrases per caption (default 1)")
    p.add_argument("--limit", type=in_range(int, 0), help="at most this many new paraphrases")
    add_backend_options(p)
    p.set_defaults(func=run_augment)

    p = sub.add_parser(
        "report",
        help="caption quality: per-identity counts, collisions, missing identities",
        **command_help(
            "Check a caption store: captions per identity, identities whose captions "
            "collide (identical or near-identical, optionally by CLIP features), and "
            "identities of the dataset that have none.",
            "cgclip caption report --captions captions/sports.jsonl --dataset data/sports --out report.json",
        ),
    )
    p.add_argument("--captions", type=Path, required=True)
    p.add_argument("--dataset", type=Path, help="dataset folder or identities.csv to check the store against")
    splits = add_word_list(p, "--identity-splits", ["train"], IDENTITY_SPLITS_HELP + " (default train)")
    add_deprecated_alias(p, "--splits", splits)
    p.add_argument("--clip", type=Path, help="CLIP directory: also compare identities' mean caption features")
    p.add_argument(
        "--jaccard", type=in_range(float, 0, 1), default=0.9, help="near-identical token Jaccard (default 0.9)"
    )
    p.add_argument(
        "--cosine", type=in_range(float, -1, 1), default=0.95, help="near-identical CLIP cosine (default 0.95)"
    )
    add_runtime_options(p, precision=False)
    p.add_argument("--out", type=Path, help="write the JSON summary here")
    p.add_argument("--show", type=in_range(int, 0), default=10, help="collision groups to print (default 10)")
    p.set_defaults(func=run_report)

    p = sub.add_parser(
        "attributes",
        help="attribute captions by CLIP zero-shot scoring (no MLLM needed)",
        **command_help(
            "Caption identities with their attributes (gender, hair, clothes, shoes, "
            "number) picked by CLIP zero-shot scoring of a few frames each.",
            "cgclip caption attributes --dataset data/sports --out captions/attributes.jsonl",
            "cgclip caption attributes --images crops --clip clip/vit-b-16 --attributes "
            "gender,upper --out captions/attrs.jsonl",
        ),
    )
    add_frame_options(p, default_frames="4")
    p.add_argument("--clip", default="default", help="Hugging Face CLIP directory (default: the embedded tiny CLIP)")
    p.add_argument("--out", type=Path, required=True, help="caption store (.jsonl)")
    p.add_argument("--max-frames", type=in_range(int, 1), default=16, help="frames per identity at most (default 16)")
    p.add_argument("--attributes", help="comma-separated subset of gender,hair,upper,lower,shoes,number")
    add_runtime_options(p, precision=False)
    p.add_argument("--scores-out", type=Path, help="write each identity's attribute probabilities (JSON)")
    p.set_defaults(func=run_attributes)


def _summary_line(what: str, s: Any, store: Any) -> str:
    line = (
        f"{what}: {s.captioned} captioned, {s.failed} failed, {s.already_done} already done, of {s.requested} "
        f"({s.seconds:.1f} s, {s.rate:.1f}/s)"
    )
    if s.failed:
        line += f"; failures in {store.failures_path}; rerun the same command to retry them"
    return line


def run_from_annotations(args: argparse.Namespace) -> int:
    """cgclip caption from-annotations."""
    from cgclip.captions.augment import llm_paraphrase, translate_attributes
    from cgclip.captions.load import captions_from_rows, identity_table_path
    from cgclip.captions.store import open_output_store
    from cgclip.data.identity_table import read_identity_table, write_identity_table
    from cgclip.io_utils import check_output_file

    store = open_output_store(args.out)
    if args.translate:
        check_output_file(
            args.out.with_name(args.out.stem + ".identities.csv"),
            "--out (translated table)",
            ours=lambda _p: True,
            example="identities.csv",
        )
    table = identity_table_path(args.table) or args.table
    rows = read_identity_table(table)
    if args.identity_splits and "all" not in args.identity_splits:
        check_identity_splits(args.identity_splits, sorted({r.split for r in rows}), table)
        rows = [r for r in rows if r.split in args.identity_splits]
    backend = build_backend(args) if (args.translate or args.paraphraser == "llm") else None
    if args.translate:
        rows, failures = translate_attributes(rows, backend, args.language)
        translated = args.out.with_name(args.out.stem + ".identities.csv")
        write_identity_table(translated, rows)
        print(f"translated table written to {translated}")
        for f in failures:
            print(f"not translated (kept as is): {f}", file=sys.stderr)
    n_rules = 1 if args.paraphraser == "llm" else args.num
    records = captions_from_rows(rows, n_rules, args.seed)
    added = store.add(records)
    per = {}
    for r in records:
        per[r.identity] = per.get(r.identity, 0) + 1
    short = sorted(i for i, n in per.items() if n < n_rules)
    print(f"wrote {added} new captions ({len(records)} generated) for {len(per)} identities to {args.out}")
    if short:
        print(
            f"{len(short)} identities have fewer than {n_rules} distinct captions (sparse annotation), e.g. "
            f"{', '.join(short[:5])}"
        )
    if args.paraphraser == "llm":
        by_id = {row.identity_id: row for row in rows}
        descriptions = {
            r.identity: (r.text, [v for v in by_id[r.identity].attributes.values() if v])
            for r in records
            if r.source == "annotation"
        }
        s = llm_paraphrase(store, backend, descriptions, n=args.num - 1)
        print(_summary_line("LLM paraphrases", s, store))
        return 1 if s.failed else 0
    return 0


def run_mllm(args: argparse.Namespace) -> int:
    """cgclip caption mllm."""
    from cgclip.captions.mllm import caption_frames, load_prompt
    from cgclip.captions.store import open_output_store

    store = open_output_store(args.out)
    items = frame_items(args)
    prompt = load_prompt(args.prompt_file)
    backend = build_backend(args)
    s = caption_frames(items, backend, store, prompt, limit=args.limit)
    print(_summary_line(f"frames ({prompt.id})", s, store))
    return 1 if s.failed else 0


def run_augment(args: argparse.Namespace) -> int:
    """cgclip caption augment."""
    from cgclip.captions.augment import augment_captions
    from cgclip.captions.store import CaptionStore
    from cgclip.errors import CgclipError

    if not args.captions.is_file():
        raise CgclipError("caption store not found; write captions first (cgclip caption mllm)", path=args.captions)
    store = CaptionStore(args.captions)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    s = augment_captions(store, build_backend(args), sources=sources, per_caption=args.per_caption, limit=args.limit)
    print(_summary_line("augmentations", s, store))
    return 1 if s.failed else 0


#: Keys every ``caption report`` JSON holds (how a rerun recognises its own report file).
REPORT_KEYS = ("num_captions", "num_identities", "recommendation")


def run_report(args: argparse.Namespace) -> int:
    """cgclip caption report."""
    from cgclip.captions.report import caption_report
    from cgclip.captions.store import CaptionStore
    from cgclip.errors import CgclipError
    from cgclip.io_utils import check_output_file, write_json

    if not args.captions.is_file():
        raise CgclipError("caption store not found", path=args.captions)
    if args.out is not None:
        check_output_file(args.out, "--out", ours=REPORT_KEYS, example="report.json")
    expected = known = None
    if args.dataset is not None:
        expected, known = dataset_identities(args.dataset, args.identity_splits)
    encoder = None
    if args.clip is not None:
        from cgclip.clip.features import ClipFeatures

        encoder = ClipFeatures(args.clip, args.device)
    report = caption_report(
        CaptionStore(args.captions),
        expected=expected,
        known=known,
        text_encoder=encoder,
        jaccard_threshold=args.jaccard,
        cosine_threshold=args.cosine,
    )
    stats = report["captions_per_identity"]
    print(
        f"{report['num_captions']} caption records for {report['num_identities']} identities (distinct captions "
        f"per identity: min {stats['min']}, mean {stats['mean']}, max {stats['max']})"
    )
    print(
        f"identical caption sets: {sum(len(g) for g in report['identical_groups'])} identities in "
        f"{len(report['identical_groups'])} groups; near-identical pairs (Jaccard >= {args.jaccard}): "
        f"{report['near_identical_pairs']['num_pairs']}"
    )
    if report["clip"] is not None:
        print(f"CLIP pairs (cosine >= {args.cosine}): {report['clip']['num_pairs']}")
        if "context_tokens" in report["clip"]:
            print(
                f"captions over the {report['clip']['context_tokens']}-token context: "
                f"{report['clip']['captions_over_context']} alone, "
                f"{report['clip']['captions_over_context_with_id_text']} with the ID sentence (training shortens "
                "those so that the ID sentence survives)"
            )
    for group in report["collision_groups"][: args.show]:
        print("  colliding: " + ", ".join(group[:12]) + (f" (+{len(group) - 12})" if len(group) > 12 else ""))
    if len(report["collision_groups"]) > args.show:
        print(f"  ... {len(report['collision_groups']) - args.show} more groups")
    if args.dataset is not None:
        print(
            f"missing identities: {len(report['missing_identities'])}; unknown identities: "
            f"{len(report['unknown_identities'])}"
        )
    print(f"recommendation: {report['recommendation']}")
    if args.out is not None:
        write_json(args.out, report)
        print(f"report written to {args.out}")
    return 0


def run_attributes(args: argparse.Namespace) -> int:
    """cgclip caption attributes."""
    from cgclip.captions.attribute_captioner import caption_attributes, load_attribute_captioner
    from cgclip.captions.store import open_output_store
    from cgclip.io_utils import check_output_file, write_json

    store = open_output_store(args.out)
    if args.scores_out is not None:
        check_output_file(args.scores_out, "--scores-out", ours=(), example="scores.json")  # any JSON object
    items = frame_items(args)
    attrs = [a.strip() for a in args.attributes.split(",")] if args.attributes else None
    from cgclip.clip.features import ClipFeatures
    from cgclip.train.modeling import resolve_clip_path
    from cgclip.train.results_key import clip_fingerprint

    clip = resolve_clip_path(args.clip)
    captioner = load_attribute_captioner(ClipFeatures(clip, args.device), attrs)
    model_name = f"{clip.name}@{clip_fingerprint(clip)}"  # the content, so two CLIPs of one folder name differ
    result = caption_attributes(items, captioner, store, model_name=model_name, max_frames=args.max_frames)
    print(
        f"attribute captions: {result['captioned']} identities captioned, {result['failed']} failed, "
        f"{result['skipped']} already done; written to {args.out}"
    )
    if args.scores_out is not None:
        write_json(args.scores_out, result["scores"])
    return 1 if result["failed"] else 0
