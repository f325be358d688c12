"""Issue 12's fixed points: the v2m / v2rm logit scale learns (or stays fixed by configuration), and neck_feat
selects the retrieval feature it names."""

from __future__ import annotations

import math

import pytest
import torch

from cgclip.errors import ConfigError
from cgclip.train.optim import build_optimizer
from fixtures_models import make_batch, tiny_models


def _prepared(name: str, **options):
    model, _, _ = tiny_models(name, num_classes=3, **options)
    if name == "tfclip":
        images, pids, camids = make_batch(num_ids=3, per_id=1, frames=3)
        model.prepare([{"images": images, "pid": pids, "camid": camids}])
    return model


def _steps(model, optimizer, n: int = 3) -> None:
    images, pids, camids = make_batch(num_ids=3, per_id=2, frames=3)
    model.train()
    for _ in range(n):
        optimizer.zero_grad()
        model(images, camids, pids)["loss"].backward()
        optimizer.step()


# tfclip has a logit scale only with v2m_logits: cosine (released: raw inner products, no scale)
SCALED = [("cgclip", {}), ("tfclip", {"v2m_logits": "cosine"})]


@pytest.mark.parametrize("name,options", SCALED)
def test_logit_scale_starts_where_configured_and_learns_at_its_own_lr(name, options):
    model = _prepared(name, logit_scale_init=50.0, **options)
    assert math.isclose(float(model.logit_scale.detach().exp()), 50.0, rel_tol=1e-5)
    start = float(model.logit_scale.detach())
    optimizer = build_optimizer(model, lr=1e-5, weight_decay=1e-4, logit_scale_lr_mult=1000.0)
    scale_group = [g for g in optimizer.param_groups if any(p is model.logit_scale for p in g["params"])]
    assert len(scale_group) == 1 and scale_group[0]["lr"] == pytest.approx(1e-2)
    assert scale_group[0]["weight_decay"] == 0.0
    _steps(model, optimizer)
    assert abs(float(model.logit_scale.detach()) - start) > 1e-3  # at the backbone's 1e-5 Adam moves it by 3e-5 at most


@pytest.mark.parametrize("name,options", SCALED)
def test_logit_scale_is_fixed_with_multiplier_zero(name, options):
    model = _prepared(name, **options)
    assert math.isclose(float(model.logit_scale.detach().exp()), 1 / 0.07, rel_tol=1e-5)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=1e-4, logit_scale_lr_mult=0.0)
    before = float(model.logit_scale.detach())
    _steps(model, optimizer)
    assert float(model.logit_scale.detach()) == before
    assert not any(p is model.logit_scale for g in optimizer.param_groups for p in g["params"])


def test_logit_scale_option_is_checked():
    with pytest.raises(ConfigError, match="logit_scale_init"):
        tiny_models("cgclip", logit_scale_init=1000.0)


def test_training_model_starts_from_the_loaded_clips_scale(tmp_path):
    from cgclip.config import ModelConfig
    from cgclip.train.modeling import _start_scale

    assert _start_scale(ModelConfig(), 37.5) == 37.5
    assert _start_scale(ModelConfig(), 400.0) == 100.0
    assert _start_scale(ModelConfig(logit_scale_init=20.0), 37.5) == 20.0


@pytest.mark.parametrize("name", ["cgclip", "tap"])  # tfclip's concatenations: tests/test_tfclip_release.py
def test_neck_feat_selects_the_feature_it_names(name):
    model = _prepared(name)
    assert model.neck_feat == "before"
    images, _, camids = make_batch(num_ids=3, per_id=2, frames=3)
    model.neck.bn.running_mean.fill_(0.5)  # BN statistics away from the identity they start at
    model.neck.bn.running_var.fill_(4.0)
    seen = {}
    model.neck.bn.register_forward_hook(lambda mod, inp, out: seen.update(before=inp[0], after=out))
    before = model.extract(images, camids)
    assert torch.allclose(before, seen["before"].to(before.dtype))
    model.neck_feat = "after"
    after = model.extract(images, camids)
    assert torch.allclose(after, seen["after"].to(after.dtype)) and not torch.allclose(before, after)
    assert _prepared(name, neck_feat="after").neck_feat == "after"
    with pytest.raises(ConfigError, match="neck_feat"):
        _prepared(name, neck_feat="middle")


def test_tfe_norm_puts_a_layernorm_on_the_tfe_output():
    """``tfe_norm``: the TFE feature leaves through a LayerNorm (zero mean, unit variance per tracklet at init)."""
    from cgclip.models.tfe import TokenFeatureExtractor

    torch.manual_seed(0)
    tokens = torch.randn(3, 4, 5, 64)
    plain, normed = TokenFeatureExtractor(64), TokenFeatureExtractor(64, norm=True)
    normed.load_state_dict(plain.state_dict(), strict=False)
    a, b = plain(tokens)[0], normed(tokens)[0]
    assert torch.allclose(b, torch.nn.functional.layer_norm(a, (64,)), atol=1e-5)
    assert plain.norm is None and torch.allclose(b.mean(-1), torch.zeros(3), atol=1e-5)


def test_per_frame_erasing_gives_each_frame_its_own_rectangle():
    """``erase_mode="frame"`` (TF-CLIP): every frame draws its own rectangle, 2-20 % of the image."""
    import numpy as np

    from cgclip.data.transforms import build_transform

    frames = [np.full((64, 32, 3), 128, np.uint8)] * 6
    clip = build_transform((64, 32), erase_p=1.0, flip_p=0.0)(frames, rng=1)
    per_frame = build_transform((64, 32), erase_p=1.0, flip_p=0.0, erase_mode="frame")(frames, rng=1)
    base = build_transform((64, 32), train=False)(frames)
    masks = (per_frame != base).any(dim=1)
    areas = masks.float().mean(dim=(1, 2))
    assert ((areas > 0.015) & (areas <= 0.2 + 1e-6)).all()
    assert len({tuple(m.flatten().tolist()) for m in masks}) == 6  # six different rectangles
    clip_masks = (clip != base).any(dim=1)
    assert all(torch.equal(m, clip_masks[0]) for m in clip_masks)  # one rectangle for the whole clip
