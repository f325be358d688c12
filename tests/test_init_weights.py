"""`cgclip train --init RUN`: fine-tuning from a trained run loads what carries over and re-initialises the rest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cgclip.config import load_config  # noqa: E402
from cgclip.errors import CgclipError, CheckpointError, ConfigError  # noqa: E402
from fixtures_train import ONE_STEP, tiny_captions, tiny_dataset, write_tiny_clip  # noqa: E402

OPTIONS = ["data.image_size=[32,16]", *ONE_STEP]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A CG-CLIP run with SIE on 4 identities, and the CLIP and a 5-identity dataset to fine-tune on."""
    from cgclip.train.trainer import train

    root = tmp_path_factory.mktemp("init")
    clip = write_tiny_clip(root / "clip")
    first = tiny_dataset(root / "first", num_train=4, num_test=2)
    cfg = load_config("tiny", ["model.name=cgclip", "model.sie=true", f"model.clip_path={clip}", *OPTIONS])
    train(cfg, root / "run", dataset=first, captions=tiny_captions(first))
    second = tiny_dataset(root / "second", num_train=5, num_test=2, seed=3)
    return root, clip, second


def _model(clip: Path, dataset, name: str = "cgclip", size=(32, 16)):
    from cgclip.train.modeling import build_training_model
    from cgclip.train.training_data import training_data

    cfg = load_config("tiny", [f"model.name={name}", "model.sie=true", f"model.clip_path={clip}", *OPTIONS])
    data = training_data(cfg, dataset, tiny_captions(dataset) if name == "cgclip" else None)
    return build_training_model(
        cfg.model,
        clip_path=clip,
        image_size=size,
        num_classes=data.num_classes,
        num_cameras=data.num_cameras,
        identities=data.identities,
        captions=data.captions,
        trained_cameras=data.cameras,
    )


def test_loaded_tensors_equal_the_run_and_data_dependent_ones_do_not(source):
    from cgclip.train.inference import run_weights
    from cgclip.train.init_weights import init_from_run
    from cgclip.train.run_dir import RunDir

    root, clip, second = source
    model = _model(clip, second)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = init_from_run(model, root / "run")
    theirs, _ = run_weights(RunDir(root / "run"), "best")
    after = model.state_dict()
    assert report["loaded"] and report["reinitialised"]
    assert all(torch.equal(after[k], theirs[k]) for k in report["loaded"])
    assert "image_encoder.vision_model.encoder.layers.0.self_attn.q_proj.weight" in report["loaded"]
    assert any(k.startswith("tfe.") for k in report["loaded"])
    # data-dependent entries stay as built: the classifier (5 identities here, 4 in the run), the Text Memory, the
    # camera table
    assert {"neck.classifier.weight", "image_encoder.sie_embed", "text_memory.memory"} <= set(report["reinitialised"])
    assert all(torch.equal(after[k], before[k]) for k in report["reinitialised"])
    assert after["neck.classifier.weight"].shape[0] == 5 and theirs["neck.classifier.weight"].shape[0] == 4
    assert not torch.equal(after["image_encoder.sie_embed"], theirs["image_encoder.sie_embed"])


def test_cli_train_with_init_records_the_report(source, capsys):
    from cgclip.cli import main
    from cgclip.train.run_dir import RunDir
    from fixtures_reid import write_ilidsvid

    root, clip, _ = source
    data = root / "ilids"
    write_ilidsvid(data, persons=list(range(1, 9)), frames=4)
    base = ["train", "--preset", "tiny", "--dataset", str(data), "--clip", str(clip), "--model", "tap"]
    base += [x for o in OPTIONS for x in ("--set", o)]
    assert main([*base, "--out", str(root / "tap")]) == 0
    capsys.readouterr()
    assert main([*base, "--init", str(root / "tap"), "--out", str(root / "tuned")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "started from" in out and "tensors loaded" in out and "1 re-initialised" in out
    report = json.loads((root / "tuned" / "init.json").read_text())
    assert report["reinitialised"] == ["neck.classifier.weight"] and not report["skipped"]
    assert RunDir(root / "tuned").load_config().train.init == str(root / "tap")


def test_init_refuses_another_model_or_layout_before_writing(source, tmp_path):
    from cgclip.train.init_weights import init_from_run
    from cgclip.train.trainer import train

    root, clip, second = source
    with pytest.raises(ConfigError, match="this is a cgclip run; it can start a cgclip model only, not tap"):
        init_from_run(_model(clip, second, "tap"), root / "run")
    with pytest.raises(CheckpointError, match=r"pos_embed is .* in the run but .* here"):
        init_from_run(_model(clip, second, size=(64, 32)), root / "run")
    cfg = load_config("tiny", ["model.name=tap", f"model.clip_path={clip}", f"train.init={root / 'run'}", *OPTIONS])
    with pytest.raises(ConfigError):
        train(cfg, tmp_path / "tuned", dataset=second)
    assert not (tmp_path / "tuned").exists()
    with pytest.raises(CgclipError, match="not a cgclip run folder"):
        init_from_run(_model(clip, second), tmp_path / "not-a-run")
