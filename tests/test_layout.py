"""The package layout: CLIP plumbing and pretraining apart from the ReID models, old import paths kept for a release."""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cgclip"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["clip", "models"])
def test_clip_and_models_import_neither_synth_nor_pretraining(package):
    banned = ("cgclip.synth", "cgclip.pretrain", "cgclip.train", "cgclip.demo", "cgclip.cli")
    for path in sorted((SRC / package).glob("*.py")):
        bad = [m for m in _imported_modules(path) if any(m == b or m.startswith(b + ".") for b in banned)]
        assert not bad, f"{path.name} imports {bad}"


def test_clip_imports_no_captions():
    for path in sorted((SRC / "clip").glob("*.py")):
        mods = _imported_modules(path)
        assert not [m for m in mods if m == "cgclip.captions" or m.startswith("cgclip.captions.")], path.name


def test_old_module_path_is_the_moved_module_with_a_deprecation_warning():
    import cgclip.models  # noqa: F401 (installs the aliases)

    sys.modules.pop("cgclip.models.pretrain_state", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("cgclip.models.pretrain_state")
    new = importlib.import_module("cgclip.pretrain.state")
    assert old is new and old.__spec__.name == "cgclip.pretrain.state"
    assert any(issubclass(w.category, DeprecationWarning) and "cgclip.pretrain.state" in str(w.message) for w in caught)


def test_unknown_old_path_still_fails():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("cgclip.models.no_such_module")


def test_only_the_cli_uses_the_embed_room():
    """``embed`` sits after ``train``/``eval`` in the pipeline: nothing below it imports it."""
    for path in sorted(SRC.rglob("*.py")):
        room = path.relative_to(SRC).parts[0]
        if room in ("embed", "cli"):
            continue
        bad = [m for m in _imported_modules(path) if m == "cgclip.embed" or m.startswith("cgclip.embed.")]
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
    for path in sorted((SRC / "embed").glob("*.py")):
        bad = [m for m in _imported_modules(path) if m.split(".")[:2] in (["cgclip", "demo"], ["cgclip", "cli"])]
        assert not bad, f"embed/{path.name} imports {bad}"
