"""TFE (Token-based Feature Extraction): shapes of every switch, per-frame weights, linear cost in T."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cgclip.errors import ConfigError
from cgclip.models.tfe import TokenFeatureExtractor
from fixtures_models import make_batch, tiny_models


@pytest.mark.parametrize("queries,blocks", [(1, 1), (15, 1), (50, 1), (15, 2), (4, 3)])
def test_tfe_module_shapes(queries, blocks):
    tfe = TokenFeatureExtractor(32, num_queries=queries, num_blocks=blocks, max_frames=8)
    tokens = torch.randn(3, 5, 9, 32)
    feat, weights = tfe(tokens)
    assert feat.shape == (3, 32) and weights is None
    assert tfe.queries.shape == (queries, 32) and len(tfe.blocks) == blocks
    feat2, weights = tfe(tokens, return_frame_weights=True)
    assert torch.allclose(feat, feat2, atol=1e-5)  # the explicit-attention path computes the same feature
    assert weights.shape == (3, 5)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3), atol=1e-5)


def test_tfe_feature_is_mean_of_query_outputs_and_depends_on_frame_order():
    torch.manual_seed(0)
    tfe = TokenFeatureExtractor(32, num_queries=3, max_frames=8)
    tokens = torch.randn(2, 4, 9, 32)
    feat, _ = tfe(tokens)
    # the temporal embedding makes the feature depend on which frame index a token comes from
    swapped, _ = tfe(tokens.flip(1))
    assert not torch.allclose(feat, swapped, atol=1e-6)
    assert feat.shape == (2, 32)


def test_tfe_too_many_frames_is_a_clear_error():
    tfe = TokenFeatureExtractor(32, max_frames=4)
    with pytest.raises(ConfigError, match="tfe_max_frames"):
        tfe(torch.randn(1, 5, 9, 32))


@pytest.mark.parametrize("output,dim_factor", [("concat", 2), ("tfe", 1), ("cls_mean", 1)])
def test_tfe_output_modes(output, dim_factor):
    model, enc, _ = tiny_models("cgclip", tfe_output=output, tfe_queries=5, tfe_blocks=2)
    images, pids, camids = make_batch(frames=3)
    assert model.feature_dim == dim_factor * enc.width
    assert (model.tfe is None) == (output == "cls_mean")
    model.train()
    out = model(images, camids, pids)
    assert out["feature"].shape == (images.shape[0], model.feature_dim)
    assert torch.isfinite(out["loss"])
    assert model.extract(images, camids).shape == (images.shape[0], model.feature_dim)
    weights = model.frame_weights(images, camids)
    if output == "cls_mean":
        assert weights is None
    else:
        assert weights.shape == (images.shape[0], 3)
        assert torch.allclose(weights.sum(1), torch.ones(images.shape[0]), atol=1e-5)
        assert bool((weights >= 0).all())


def test_frame_weights_follow_query_one_and_keep_mode():
    model, _, _ = tiny_models("cgclip", tfe_queries=4, tfe_blocks=2)
    images, _, camids = make_batch(frames=5)
    model.train()
    w = model.frame_weights(images, camids)
    assert model.training  # mode restored
    assert w.shape == (images.shape[0], 5) and w.dtype == torch.float32
    # recompute by hand: attention probabilities of query 0 in the last block
    model.eval()
    with torch.no_grad():
        tokens = model.encode_frames(images, camids)
        b, t, n, d = tokens.shape
        kv = (tokens + model.tfe.temporal_embed[:t].view(1, t, 1, d)).reshape(b, t * n, d)
        q = model.tfe.queries.unsqueeze(0)
        for blk in model.tfe.blocks[:-1]:
            q, _ = blk(q, kv)
        _, probs = model.tfe.blocks[-1].cross(q, kv, need_weights=True)
    expected = probs[:, :, 0].mean(1).reshape(b, t, n).sum(-1)
    assert torch.allclose(w, expected, atol=1e-6)


def test_tfe_cost_is_linear_in_frames():
    tfe = TokenFeatureExtractor(64, num_queries=15, num_blocks=2, max_frames=64)

    def flops(t: int) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            tfe(torch.randn(2, t, 33, 64))
        return counter.get_total_flops()

    f4, f8, f16, f32 = flops(4), flops(8), flops(16), flops(32)
    # affine in T (a constant part for the queries' own MLP/projections): equal increments per doubling step
    assert f8 - f4 > 0
    assert (f16 - f8) == pytest.approx(2 * (f8 - f4), rel=1e-6)
    assert (f32 - f16) == pytest.approx(2 * (f16 - f8), rel=1e-6)


def test_tfe_runs_under_bf16_autocast():
    model, _, _ = tiny_models("cgclip")
    images, pids, camids = make_batch(frames=4)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, camids, pids)
        w = model.frame_weights(images, camids)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    assert torch.allclose(w.sum(1), torch.ones(w.shape[0]), atol=1e-3)
