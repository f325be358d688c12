"""Configuration: presets match Table S.7, YAML `_base_` chains, overrides, validation errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgclip.config import (
    Config,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    diff_configs,
    load_config,
    parse_override,
    preset_names,
)
from cgclip.errors import ConfigError
from cgclip.train.optim import WarmupStepSchedule, lr_factor

REPO = Path(__file__).resolve().parents[1]


def test_presets_exist_and_validate():
    assert {"mars", "ilidsvid", "sports", "dance", "tiny"} <= set(preset_names())
    for name in preset_names():
        cfg = load_config(name)
        assert isinstance(cfg, Config)


@pytest.mark.parametrize(
    "name,nq,epochs,wd,milestones",
    [
        ("mars", 50, 80, 1e-4, [30, 50, 70]),
        ("ilidsvid", 15, 60, 1e-4, [30, 50]),
        ("sports", 15, 60, 2.5e-4, [30, 50]),
        ("dance", 15, 60, 2.5e-4, [30, 50]),
    ],
)
def test_paper_presets_follow_table_s7(name, nq, epochs, wd, milestones):
    cfg = load_config(name)
    assert (cfg.data.p, cfg.data.k, cfg.data.seq_len) == (8, 4, 8)
    assert cfg.data.image_size == [256, 128]
    assert cfg.model.tfe_queries == nq
    assert cfg.train.epochs == epochs
    assert cfg.optim.lr == pytest.approx(5e-6)
    assert cfg.optim.weight_decay == pytest.approx(wd)
    assert cfg.optim.milestones == milestones and cfg.optim.gamma == pytest.approx(0.1)
    assert cfg.optim.warmup_epochs == 10
    assert cfg.optim.lr * cfg.optim.warmup_factor == pytest.approx(5e-7)
    assert cfg.data.flip_p > 0 and cfg.data.erase_p > 0
    # the method's defaults (SPEC §2.3)
    assert (cfg.model.cmr_fusion, cfg.model.cmr_blocks, cfg.model.memory_momentum) == ("c", 2, 0.2)
    assert (cfg.model.w_v2m, cfg.model.w_tri, cfg.model.w_ce) == (1.0, 1.0, 0.25)


def test_tiny_preset_is_small():
    cfg = load_config("tiny")
    assert cfg.data.image_size == [128, 64]
    assert (cfg.data.p, cfg.data.k) == (8, 4)
    assert 4 <= cfg.data.seq_len <= 8
    assert cfg.train.epochs <= 40  # about 80 s per model on the synthetic worlds (2 CPU cores)


def test_overrides_are_typed_and_win():
    cfg = load_config(
        "sports",
        [
            "optim.lr=1e-4",
            "optim.milestones=[5, 8]",
            "eval.rerank=true",
            "model.cmr_fusion=b",
            "data.image_size=[64, 32]",
            "model.clip_path=/x/clip",
        ],
    )
    assert cfg.optim.lr == 1e-4 and cfg.optim.milestones == [5, 8]
    assert cfg.eval.rerank is True and cfg.model.cmr_fusion == "b"
    assert cfg.data.image_size == [64, 32] and cfg.model.clip_path == "/x/clip"
    assert parse_override("train.seed=3") == ("train.seed", 3)
    assert load_config(None, ["optim.lr=5e-6"]).optim.lr == pytest.approx(5e-6)  # int/str coercion to float


@pytest.mark.parametrize(
    "override,needle",
    [
        ("optim.lrr=1", "optim.lr"),  # unknown key, with a suggestion
        ("model.cmr_fusion=d", "model.cmr_fusion"),  # not a choice
        ("data.p=0", "data.p"),  # out of range
        ("train.epochs=abc", "train.epochs"),  # wrong type
        ("train.seed=true", "train.seed"),  # bool is not an int
        ("optim.milestones=[50, 30]", "optim.milestones"),
        ("data.image_size=[256]", "data.image_size"),
        ("nosection.key=1", "nosection"),
        ("train.device=tpu", "train.device"),
    ],
)
def test_invalid_values_name_the_key(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config("tiny", [override])


def test_bad_override_syntax_and_unknown_preset():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config("tiny", ["optim.lr"])
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config("nope")


def test_yaml_base_chain(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("_base_: sports\noptim:\n  lr: 1.0e-5\ntrain:\n  epochs: 7\n")
    leaf = tmp_path / "sub" / "leaf.yaml"
    leaf.parent.mkdir()
    leaf.write_text("_base_: ../base.yaml\nmodel:\n  cmr_fusion: a\ntrain:\n  epochs: 9\n")
    cfg = load_config(yaml_path=leaf)
    assert cfg.optim.weight_decay == pytest.approx(2.5e-4)  # from the sports preset
    assert cfg.optim.lr == pytest.approx(1e-5)  # from base.yaml
    assert cfg.train.epochs == 9 and cfg.model.cmr_fusion == "a"  # leaf wins
    assert load_config(yaml_path=leaf, overrides=["train.epochs=2"]).train.epochs == 2


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  nope: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(yaml_path=bad)
    assert "bad.yaml" in str(info.value) and "model.nope" in str(info.value)
    loop = tmp_path / "loop.yaml"
    loop.write_text("_base_: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(yaml_path=loop)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(yaml_path=broken)


def test_shipped_example_configs_resolve():
    files = sorted((REPO / "configs").rglob("*.yaml"))
    assert files, "configs/ holds example leaf configurations"
    for path in files:
        load_config(yaml_path=path)
    fusion_a = load_config(yaml_path=REPO / "configs" / "ablations" / "fusion_a.yaml")
    assert fusion_a.model.cmr_fusion == "a"


def test_round_trip_through_dict_and_yaml():
    import yaml

    cfg = load_config("mars", ["model.sie=true"])
    again = config_from_dict(yaml.safe_load(config_to_yaml(cfg)))
    assert config_to_dict(again) == config_to_dict(cfg)
    assert diff_configs(cfg, again) == []
    other = load_config("mars", ["optim.lr=1e-5"])
    assert diff_configs(cfg, other) == ["model.sie", "optim.lr"]


def test_lr_schedule_warmup_and_steps():
    # Table S.7: warm-up 5e-7 -> 5e-6 over 10 epochs, x0.1 at 30 and 50
    f = lambda e: 5e-6 * lr_factor(e, 10, 0.1, [30, 50], 0.1)  # noqa: E731
    assert f(0) == pytest.approx(5e-7)
    assert f(5) == pytest.approx(5e-7 + 0.5 * 4.5e-6)
    assert f(10) == pytest.approx(5e-6) and f(29) == pytest.approx(5e-6)
    assert f(30) == pytest.approx(5e-7) and f(49) == pytest.approx(5e-7)
    assert f(50) == pytest.approx(5e-8)

    import torch

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    per_epoch = WarmupStepSchedule(opt, 2, 0.1, [3], 0.1, unit="epoch")
    assert per_epoch.step(0, 5, 10) == pytest.approx(0.1)  # constant within an epoch
    assert per_epoch.step(1, 0, 10) == pytest.approx(0.55)
    per_iter = WarmupStepSchedule(opt, 2, 0.1, [3], 0.1, unit="iteration")
    assert per_iter.step(0, 5, 10) == pytest.approx(0.1 + 0.9 * 0.25)
    assert per_iter.step(3, 0, 10) == pytest.approx(0.1)
    state = per_iter.state_dict()
    per_iter.step(0, 0, 10)
    per_iter.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_model_config_defaults_match_build_model_defaults():
    """ModelConfig and build_model's DEFAULT_OPTIONS state the same defaults (they must not drift apart)."""
    import dataclasses

    from cgclip.config import ModelConfig
    from cgclip.models.build import DEFAULT_OPTIONS

    config_defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    shared = set(config_defaults) & set(DEFAULT_OPTIONS)
    assert len(shared) == 25  # every ModelConfig field but name and clip_path
    assert {k: config_defaults[k] for k in shared} == {k: DEFAULT_OPTIONS[k] for k in shared}
