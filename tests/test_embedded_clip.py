"""The shipped tiny CLIP: it is found, verified and used by default, reads attributes on crops rendered here, and a
missing or damaged copy gets one line that says how to rebuild it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cgclip.clip.embedded as embedded
from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json


def test_shipped_clip_is_verified_and_the_default() -> None:
    from cgclip.train.modeling import resolve_clip_path

    path = embedded.embedded_clip_dir()
    manifest = read_json(path / embedded.MANIFEST_NAME)
    assert manifest["command"].startswith("cgclip pretrain-clip --out ") and manifest["seed"] == 0
    assert f"--steps {read_json(path / 'pretrain_report.json')['steps']} " in manifest["command"]
    assert sum((path / n).stat().st_size for n in manifest["sha256"]) < 25 * 2**20
    assert resolve_clip_path(None) == resolve_clip_path("default") == path


def test_shipped_clip_reads_attributes_on_fresh_crops() -> None:
    """Zero-shot on held-out identities and crops this test renders (another seed than the report's): the uniform,
    socks and the jersey number on back views well above chance, as in its report (50 % / 56 % / 76 % against 4 % /
    5 % / 1.6 %; on these crops 56 / 57 / 84 % against 6 / 6 / 2 %)."""
    from cgclip.clip.backbone import load_clip
    from cgclip.pretrain.data import pretrain_identities, render_pool
    from cgclip.pretrain.zero_shot import zero_shot_attributes

    clip = load_clip(embedded.embedded_clip_dir(), image_size=(128, 64))
    clip.image.eval()
    idents = pretrain_identities(64, seed=11, part="heldout")
    crops, owner, legible = render_pool(idents, 4, seed=11)
    result = zero_shot_attributes(clip.image, clip.text, idents, crops, owner, legible)
    attrs = result["attributes"]
    assert attrs["uniform"]["accuracy"] > 5 * attrs["uniform"]["chance"], attrs["uniform"]
    assert attrs["socks"]["accuracy"] > 3 * attrs["socks"]["chance"], attrs["socks"]
    assert attrs["number"]["accuracy"] > 0.5 and attrs["number"]["crops"] == 64, attrs["number"]
    assert result["mean_accuracy"] > 5 * result["mean_chance"], result


def test_missing_or_damaged_copy_says_how_to_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / embedded.EMBEDDED_NAME
    shutil.copytree(embedded.embedded_clip_dir(), copy)
    monkeypatch.setattr(embedded, "packaged_dir", lambda: copy)
    assert embedded.embedded_clip_dir() == copy
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged") as info:
        embedded.embedded_clip_dir()
    assert "cgclip pretrain-clip --out NEW_DIR" in str(info.value) and "\n" not in str(info.value)
    weights.unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        embedded.embedded_clip_dir()
    shutil.rmtree(copy)
    with pytest.raises(CheckpointError, match="missing"):
        embedded.embedded_clip_dir()
