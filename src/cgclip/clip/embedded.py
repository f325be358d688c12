"""The embedded default CLIP: the tiny CLIP this project pretrained once, shipped inside the package.

It lives in ``cgclip/embedded/tiny-clip-v5/`` (package data): ``config.json``,
``model.safetensors`` (float16), the tokenizer files, ``pretrain_report.json`` (its zero-shot table, curve and
recipe) and ``manifest.json`` — the exact command and seed that made it and the SHA-256 of every file. Every use
(``cgclip demo``, ``cgclip train`` without ``--clip``, the attribute captioner, the benchmarks) goes through
:func:`embedded_clip_dir`, which checks the files against the manifest, so a missing or damaged copy gets one line
that says how to rebuild it instead of a loader traceback. Nothing is pretrained at run time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json, read_json_object, write_json

EMBEDDED_NAME = "tiny-clip-v5"
MANIFEST_NAME = "manifest.json"
#: The command that made the shipped checkpoint (``--out`` is where it was written, then copied here).
RECIPE_COMMAND = "cgclip pretrain-clip --out DIR --arch tiny-cnn --steps 3000 --seed 0 --joint-digit-weight 1"


def packaged_dir() -> Path:
    """Where the shipped checkpoint sits inside the installed package."""
    return Path(__file__).resolve().parent.parent / "embedded" / EMBEDDED_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(clip_dir: str | Path, command: str, seed: int, name: str | None = None) -> dict[str, Any]:
    """Record ``name`` (default: the folder's), ``command``, ``seed`` and the SHA-256 of every file of ``clip_dir``
    in its ``manifest.json``."""
    clip_dir = Path(clip_dir)
    files = sorted(p.name for p in clip_dir.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    manifest = {
        "name": name or clip_dir.name,
        "command": command,
        "seed": int(seed),
        "sha256": {name: _sha256(clip_dir / name) for name in files},
    }
    write_json(clip_dir / MANIFEST_NAME, manifest)
    return manifest


def _rebuild_hint(path: Path) -> str:
    return (
        f"reinstall cgclip, or rebuild it with `{RECIPE_COMMAND.replace('DIR', 'NEW_DIR')}` and pass "
        f"--clip NEW_DIR (or copy NEW_DIR to {path})"
    )


def verify_clip_dir(path: str | Path) -> dict[str, Any]:
    """Check a checkpoint folder against its ``manifest.json``; return the manifest or raise one line."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise CheckpointError(
            f"the embedded CLIP is missing ({MANIFEST_NAME} not found); {_rebuild_hint(path)}", path=path
        )
    manifest = read_json_object(
        manifest_path,
        {"sha256": dict},
        fix=f"the embedded CLIP's manifest is damaged: {_rebuild_hint(path)}",
        error=CheckpointError,
    )
    uncovered = [n for n in ("config.json", "model.safetensors") if n not in manifest["sha256"]]
    if uncovered:
        raise CheckpointError(
            f"the embedded CLIP's manifest has no checksum of {', '.join(uncovered)}; {_rebuild_hint(path)}",
            path=manifest_path,
        )
    for name, digest in manifest["sha256"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(
                f"the embedded CLIP is incomplete ({name} is missing); {_rebuild_hint(path)}", path=path
            )
        try:
            actual = _sha256(file)
        except OSError as exc:
            raise CheckpointError(
                f"the embedded CLIP cannot be read ({name}: {exc.strerror or exc}); {_rebuild_hint(path)}", path=file
            ) from None
        if actual != digest:
            raise CheckpointError(
                f"the embedded CLIP is damaged ({name} does not match its checksum); {_rebuild_hint(path)}", path=file
            )
    return manifest


def embedded_clip_dir() -> Path:
    """The verified folder of the shipped tiny CLIP (a one-line :class:`CheckpointError` when missing or damaged)."""
    path = packaged_dir()
    verify_clip_dir(path)
    return path


def embedded_report() -> dict[str, Any]:
    """The shipped checkpoint's ``pretrain_report.json``."""
    path = embedded_clip_dir()
    return read_json(path / "pretrain_report.json", _rebuild_hint(path), CheckpointError)
