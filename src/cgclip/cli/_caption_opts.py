"""Shared options of ``cgclip caption`` subcommands: back-end selection and which frames/identities to use."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_deprecated_alias, add_runtime_options, add_splits_option, in_range
from cgclip.config import DATASET_KINDS
from cgclip.errors import CgclipError


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """Options of the two MLLM back-ends (an OpenAI-compatible endpoint, or a local transformers model)."""
    g = p.add_argument_group("OpenAI-compatible endpoint (vLLM, Ollama, LM Studio, hosted API)")
    g.add_argument("--endpoint", help="base URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--model", help="model name the endpoint serves")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--concurrency", type=in_range(int, 1), default=8, help="parallel requests (default 8)")
    g.add_argument(
        "--timeout", type=in_range(float, 0, open_min=True), default=60.0, help="seconds per request (default 60)"
    )
    g.add_argument(
        "--retries", type=in_range(int, 0), default=3, help="retries per item on errors and rate limits (default 3)"
    )
    g.add_argument(
        "--backoff", type=in_range(float, 0), default=1.0, help="first retry delay in seconds, doubled each time"
    )
    g.add_argument("--temperature", type=in_range(float, 0, 2), default=0.2)
    g.add_argument("--max-tokens", type=in_range(int, 1), default=160, help="longest reply in tokens (default 160)")
    g = p.add_argument_group("local transformers model")
    g.add_argument(
        "--model-dir",
        help="local Hugging Face model directory (image-text-to-text, vision-encoder-"
        "decoder, or a text LM for augment/translate)",
    )
    _, precision = add_runtime_options(g)
    add_deprecated_alias(g, "--dtype", precision)
    g.add_argument("--batch-size", type=in_range(int, 1), default=8)
    g.add_argument("--prefix", help="text prefix for models without a chat template (e.g. <MORE_DETAILED_CAPTION>)")
    g.add_argument("--trust-remote-code", action="store_true", help="allow model code shipped in --model-dir")


def build_backend(args: argparse.Namespace) -> Any:
    """The back-end the options name: ``--endpoint`` + ``--model``, or ``--model-dir``."""
    if bool(args.endpoint) == bool(args.model_dir):
        raise CgclipError("choose one back-end: --endpoint URL --model NAME, or --model-dir DIR")
    if args.endpoint:
        from cgclip.captions.openai_backend import OpenAIBackend, OpenAIConfig

        if not args.model:
            raise CgclipError("--endpoint needs --model (the model name the server serves)")
        return OpenAIBackend(
            OpenAIConfig(
                base_url=args.endpoint,
                model=args.model,
                api_key=os.environ.get(args.api_key_env) or None,
                concurrency=args.concurrency,
                timeout=args.timeout,
                retries=args.retries,
                backoff=args.backoff,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
            )
        )
    from cgclip.captions.local_backend import LocalBackend

    return LocalBackend(
        args.model_dir,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        max_new_tokens=args.max_tokens,
        prefix=args.prefix,
        trust_remote_code=args.trust_remote_code,
    )


def add_frame_options(p: argparse.ArgumentParser, default_frames: str = "all") -> None:
    """Where frames come from and how many per tracklet."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", type=Path, help="dataset folder (cgclip build-mot output, MARS, iLIDS-VID)")
    src.add_argument("--images", type=Path, help="folder laid out <identity>/[<tracklet>/]*.jpg")
    kind = p.add_argument(
        "--dataset-kind", help=f"dataset format ({', '.join(DATASET_KINDS[1:])}); detected when left out"
    )
    add_deprecated_alias(p, "--kind", kind)
    add_splits_option(p, ("train",), "the dataset's tracklets to caption")
    p.add_argument(
        "--frames",
        default=default_frames,
        help=f"'all' frames, or K evenly spaced frames per tracklet (default {default_frames})",
    )


def frame_items(args: argparse.Namespace) -> list:
    """The frames the options select."""
    from cgclip.captions.mllm import frames_from_folder, select_frames

    if args.frames == "all":
        k = None
    else:
        try:
            k = int(args.frames)
        except ValueError:
            k = 0
        if k < 1:
            raise CgclipError(f"--frames {args.frames!r}: use 'all' or a positive number of frames per tracklet")
    if args.images is not None:
        return frames_from_folder(args.images, k)
    from cgclip.data import detect_dataset, load_dataset

    dataset = load_dataset(args.dataset_kind or detect_dataset(args.dataset), args.dataset)
    tracklets = [t for split in args.splits for t in getattr(dataset, split)]
    return select_frames(tracklets, k, args.dataset)


def check_identity_splits(wanted: Sequence[str], present: Sequence[str], path: Path) -> None:
    """Refuse ``--identity-splits`` names no identity has (``all`` is always fine): one line naming those there are."""
    from cgclip.errors import DataError

    unknown = [s for s in wanted if s != "all" and s not in present]
    if unknown:
        raise DataError(
            f"--identity-splits: no identity has split {', '.join(map(repr, unknown))}; the splits here are "
            f"{', '.join(sorted(present)) or 'none'} (or all)",
            path=path,
        )


def dataset_identities(folder: Path, splits: Sequence[str]) -> tuple[list[str], list[str]]:
    """(identities needing captions, all identities) of a dataset folder: from identities.csv when present
    (rows whose split is in ``splits``; ``all`` = every row), else from the dataset's tracklets (the identities of
    those partitions)."""
    wanted = {s.strip() for s in splits if s.strip()}
    table = folder / "identities.csv" if folder.is_dir() else folder
    if table.suffix == ".csv" and table.is_file():
        from cgclip.data.identity_table import read_identity_table

        rows = read_identity_table(table)
        check_identity_splits(sorted(wanted), sorted({r.split for r in rows}), table)
        known = [r.identity_id for r in rows]
        return [r.identity_id for r in rows if "all" in wanted or r.split in wanted], known
    from cgclip.data import detect_dataset, load_dataset

    ds = load_dataset(detect_dataset(folder), folder)
    per_split = {s: sorted({t.identity or str(t.pid) for t in getattr(ds, s)}) for s in ("train", "query", "gallery")}
    check_identity_splits(sorted(wanted), [s for s, ids in per_split.items() if ids], folder)
    known = sorted({i for ids in per_split.values() for i in ids})
    expected = known if "all" in wanted else sorted({i for s in wanted & set(per_split) for i in per_split[s]})
    return expected, known
