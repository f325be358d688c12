"""``cgclip import-clip``: convert an OpenAI CLIP ``.pt`` (state dict or TorchScript) into a Hugging Face CLIP
directory."""

from __future__ import annotations

import argparse

from cgclip.cli._options import command_help, precision_type

#: Weight dtypes the converted checkpoint may be stored in (precision names; float32/float16/bfloat16 also read).
STORED_DTYPES = ("fp32", "fp16", "bf16")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import-clip`` sub-command."""
    parser = subparsers.add_parser(
        "import-clip",
        help="convert an OpenAI CLIP .pt checkpoint into a Hugging Face CLIP directory",
        **command_help(
            "Convert an OpenAI CLIP checkpoint (ViT models; a state dict or the TorchScript archives "
            "OpenAI releases, read without running their code) into a Hugging Face CLIP directory that "
            "`--clip DIR` accepts. OpenAI's BPE vocabulary is not inside the .pt: pass --tokenizer, a "
            "folder with a Hugging Face CLIP tokenizer (vocab.json, merges.txt, tokenizer_config.json, "
            "special_tokens_map.json), e.g. the files of openai/clip-vit-base-patch16 (all OpenAI CLIP "
            "models share one vocabulary). The conversion runs on the CPU.",
            "cgclip import-clip ViT-B-16.pt --tokenizer clip-vit-base-patch16 --out clip/vit-b-16",
        ),
    )
    parser.add_argument("checkpoint", help="OpenAI CLIP .pt file, e.g. ViT-B-16.pt")
    parser.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    parser.add_argument("--tokenizer", help="Hugging Face CLIP tokenizer directory to copy into the output")
    parser.add_argument(
        "--dtype",
        type=precision_type,
        choices=STORED_DTYPES,
        default="fp32",
        help="stored weight dtype: fp32, fp16 or bf16 (float32, float16, bfloat16 also accepted; default fp32)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert the checkpoint and print where it went."""
    from cgclip.clip.openai_import import import_openai_clip
    from cgclip.runtime import precision_dtype

    path = import_openai_clip(
        args.checkpoint, args.out, args.tokenizer, dtype=precision_dtype(args.dtype), overwrite=args.overwrite
    )
    print(f"wrote Hugging Face CLIP checkpoint to {path}")
    return 0
