"""build_model: names and options, the three models' forward/loss/extract contract, TF-CLIP, state dict, real CLIP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cgclip.errors import ConfigError
from cgclip.models import MODEL_NAMES, build_model
from cgclip.models.losses import batch_hard_triplet, cross_entropy_label_smooth, memory_logits
from fixtures_models import TinyImageEncoder, TinyTextEncoder, make_batch, make_captions, tiny_models


def _prepared(name: str, **options):
    model, enc, text = tiny_models(name, **options)
    if name == "tfclip":
        images, pids, camids = make_batch(num_ids=4, per_id=1, frames=3)
        model.prepare([{"images": images, "pid": pids, "camid": camids}])
    return model, enc, text


def test_model_names():
    assert set(MODEL_NAMES) == {"cgclip", "tfclip", "tap"}


def test_unknown_model_and_option_are_config_errors():
    enc = TinyImageEncoder()
    with pytest.raises(ConfigError, match="unknown model 'clipreid'"):
        build_model("clipreid", image_encoder=enc, num_classes=3, num_cameras=1)
    with pytest.raises(ConfigError, match="unknown model option 'tfe_querys'"):
        build_model("tap", image_encoder=enc, num_classes=3, num_cameras=1, tfe_querys=5)
    for bad in (
        dict(cmr_fusion="d"),
        dict(tfe_output="max"),
        dict(identity_mode="id"),
        dict(cmr_blocks=0),
        dict(memory_momentum=1.5),
        dict(tfe_queries=2.5),
        dict(label_smoothing=1.0),
        dict(tmd="yes"),
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_model("tap", image_encoder=enc, num_classes=3, num_cameras=1, **bad)


def test_all_modelconfig_fields_accepted_by_every_model():
    options = dict(
        tfe_queries=3,
        tfe_blocks=1,
        tfe_output="tfe",
        cmr_fusion="b",
        cmr_blocks=1,
        memory_momentum=0.5,
        static_memory=True,
        identity_mode="caption",
        ssp_blocks=1,
        tmd=False,
        w_v2m=0.5,
        w_tri=1.0,
        w_ce=0.25,
        triplet_margin=0.2,
        label_smoothing=0.0,
        sie=True,
        sie_coef=2.0,
    )
    for name in MODEL_NAMES:
        model, _, _ = tiny_models(name, **options)
        assert model.name == name


def test_cgclip_needs_captions_for_training_but_not_for_inference():
    enc = TinyImageEncoder()
    with pytest.raises(ConfigError, match="needs captions"):
        build_model("cgclip", image_encoder=enc, num_classes=3, num_cameras=1)
    with pytest.raises(ConfigError, match="text encoder"):
        build_model("cgclip", image_encoder=enc, num_classes=3, num_cameras=1, captions=make_captions(3))
    with pytest.raises(ConfigError, match="captions for 2 identities"):
        build_model(
            "cgclip",
            image_encoder=enc,
            num_classes=3,
            num_cameras=1,
            captions=make_captions(2),
            text_encoder=TinyTextEncoder(),
        )
    with pytest.raises(ConfigError, match="pid 1"):
        build_model(
            "cgclip",
            image_encoder=enc,
            num_classes=2,
            num_cameras=1,
            captions=[["a"], []],
            text_encoder=TinyTextEncoder(),
            identity_mode="caption",
        )


def test_extract_never_touches_captions_and_inference_only_model_loads_trained_weights():
    model, enc, text = tiny_models("cgclip", num_classes=4)
    images, pids, camids = make_batch()
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        model(images, camids, pids)["loss"].backward()
        opt.step()
    calls = list(text.calls)
    feats = model.extract(images, camids)
    assert text.calls == calls  # no caption encoded after build
    assert model.training  # mode restored
    # an inference-only cgclip (no captions, no text encoder) loads the checkpoint and extracts the same features
    fresh = build_model(
        "cgclip", image_encoder=TinyImageEncoder(seed=5), num_classes=4, num_cameras=2, inference_only=True
    )
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.extract(images, camids), feats, atol=1e-6)
    assert torch.equal(fresh.text_memory.memory, model.text_memory.memory)
    # a placeholder memory cannot train
    blank = build_model("cgclip", image_encoder=TinyImageEncoder(), num_classes=4, num_cameras=2, inference_only=True)
    blank.train()
    with pytest.raises(ConfigError, match="no captions"):
        blank(images, camids, pids)
    static = build_model(
        "cgclip",
        image_encoder=TinyImageEncoder(),
        num_classes=4,
        num_cameras=2,
        inference_only=True,
        static_memory=True,
    )
    static.train()
    with pytest.raises(ConfigError, match="inference_only"):
        static(images, camids, pids)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_contract(name):
    model, enc, _ = _prepared(name)
    images, pids, camids = make_batch(frames=3)
    b = images.shape[0]
    model.train()
    out = model(images, camids, pids)
    assert out["feature"].shape == (b, model.feature_dim)
    assert out["loss"].dim() == 0 and out["loss"].dtype == torch.float32
    assert all(isinstance(v, float) for v in out["losses"].values())
    assert "loss" not in model(images, camids)  # no pids: features only
    model.eval()
    eval_out = model(images, camids, pids)
    assert set(eval_out) == {"feature"}
    assert torch.allclose(model.extract(images, camids), eval_out["feature"], atol=1e-5)
    assert torch.allclose(model.extract(images), model.extract(images, None))
    expected_dim = {"cgclip": 2 * enc.width, "tfclip": 2 * enc.width + enc.embed_dim, "tap": enc.width}[name]
    assert model.feature_dim == expected_dim
    if name != "cgclip":
        assert model.frame_weights(images, camids) is None
    # the encoder is part of the model and fine-tuned
    assert any(n.startswith("image_encoder.") and p.requires_grad for n, p in model.named_parameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_finite_and_decreasing_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model, _, _ = _prepared(name)
    images, pids, camids = make_batch(num_ids=4, per_id=2, frames=3, seed=1)
    images = images * 0.3  # closer identities: the triplet term is active
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(12):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images, camids, pids)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


@pytest.mark.parametrize(
    "name,options",
    [
        ("cgclip", {}),
        ("cgclip", dict(identity_mode="caption_idemb", cmr_fusion="a")),
        ("tfclip", {}),
        ("tfclip", dict(tmd=False)),
        ("tap", {}),
    ],
)
def test_state_dict_round_trip_reproduces_outputs_and_training(name, options, tmp_path):
    torch.manual_seed(0)
    model, _, _ = _prepared(name, **options)
    images, pids, camids = make_batch(frames=3)
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    opt.zero_grad()
    model(images, camids, pids)["loss"].backward()
    opt.step()
    path = Path(tmp_path) / "model.pt"
    torch.save(model.state_dict(), path)
    clone, _, _ = tiny_models(name, seed=3, **options)  # different initial weights, captions identical
    clone.load_state_dict(torch.load(path, weights_only=True))
    assert torch.allclose(clone.extract(images, camids), model.extract(images, camids), atol=1e-6)
    # the same RNG state continues training identically (memory sampling included)
    clone.train()
    torch.manual_seed(11)
    a = model(images, camids, pids)
    torch.manual_seed(11)
    b = clone(images, camids, pids)
    assert torch.allclose(a["loss"], b["loss"], atol=1e-6)
    for key, value in model.state_dict().items():
        assert torch.equal(value, clone.state_dict()[key]), key


def test_tfclip_prepare_memory():
    model, enc, _ = tiny_models("tfclip", num_classes=3)
    images, pids, camids = make_batch(num_ids=3, per_id=2, frames=3)
    model.train()
    with pytest.raises(ConfigError, match="prepare"):
        model(images, camids, pids)
    with pytest.raises(ConfigError, match=r"identities \[2\]"):
        model.prepare([{"images": images[:4], "pid": pids[:4], "camid": camids[:4]}])
    loader = [{"images": images[:3], "pid": pids[:3], "camid": camids[:3]}, (images[3:], pids[3:], camids[3:])]
    model.prepare(loader)
    assert model.training
    with torch.no_grad():
        model.eval()
        proj = enc.project(model.encode_frames(images)[:, :, 0]).mean(1)
    want = torch.stack([proj[pids == y].mean(0) for y in range(3)])  # not normalised, as released
    assert torch.allclose(model.clip_memory, want, atol=1e-5)
    # prepare after the memory exists (e.g. loaded from a checkpoint) is a no-op
    model.prepare([])
    assert torch.allclose(model.clip_memory, want, atol=1e-5)
    no_tmd, _, _ = tiny_models("tfclip", num_classes=3, tmd=False)
    assert no_tmd.tmd is None and no_tmd.neck_tmd is None and model.tmd is not None
    assert len(model.ssp.layers) == 2


def test_losses_on_known_examples():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 4.0]])
    y = torch.tensor([0, 0, 1, 1])
    # hardest positive / negative: anchor 0: 1 / 3; anchor 1: 1 / √10; anchor 2: 1 / 3; anchor 3: 1 / 4
    assert float(batch_hard_triplet(x, y, 0.3)) == pytest.approx(0.0, abs=1e-6)
    want = (max(0.0, 1 - 3 + 2.5) + max(0.0, 1 - 10**0.5 + 2.5) + max(0.0, 1 - 3 + 2.5) + max(0.0, 1 - 4 + 2.5)) / 4
    assert float(batch_hard_triplet(x, y, 2.5)) == pytest.approx(want, rel=1e-5)
    # anchors without a negative are ignored; a batch of one identity gives 0
    assert float(batch_hard_triplet(x, torch.zeros(4, dtype=torch.long))) == 0.0
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    eps = 0.1
    logp = logits.log_softmax(1)
    want = -((1 - eps) * logp[0, 0] + eps / 3 * logp[0].sum())
    assert float(cross_entropy_label_smooth(logits, torch.tensor([0]), eps)) == pytest.approx(float(want), rel=1e-6)
    # memory logits: cosine × exp(logit scale), scale capped at 100
    v = torch.tensor([[3.0, 0.0]])
    m = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    assert memory_logits(v, m, torch.tensor(0.0)).tolist() == [[1.0, 0.0]]
    assert memory_logits(v, m[0], torch.tensor(10.0)).tolist() == [[100.0, 0.0]]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert batch_hard_triplet(x, y, 2.5).dtype == torch.float32


def test_real_clip_backbone_through_build_model(tmp_path):
    from cgclip.models import load_clip, save_random_clip

    save_random_clip(tmp_path / "clip", size="tiny")
    clip = load_clip(tmp_path / "clip", image_size=(64, 32), num_cameras=2)
    images = torch.randn(4, 2, 3, 64, 32)
    pids, camids = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    model = build_model(
        "cgclip",
        image_encoder=clip.image,
        num_classes=2,
        num_cameras=2,
        captions=make_captions(2, 2),
        text_encoder=clip.text,
    )
    assert model.text_memory.memory.shape == (2, clip.embed_dim)
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, camids, pids)
    out["loss"].backward()
    opt.step()
    assert torch.isfinite(out["loss"])
    assert model.extract(images, camids).shape == (4, 2 * clip.image.width)
    assert model.frame_weights(images, camids).shape == (4, 2)
    # the frozen text tower is not part of the model (its features are, as Text Memory buffers)
    assert not any("text_model" in n or "text_projection" in n for n in model.state_dict())
    for name in ("tfclip", "tap"):
        other = build_model(name, image_encoder=clip.image, num_classes=2, num_cameras=2)
        other.prepare([{"images": images, "pid": pids, "camid": camids}])
        other.train()
        assert torch.isfinite(other(images, camids, pids)["loss"])


def test_fusion_and_encoder_run_once_per_batch():
    # batched, not looped over tracklets or identities: one encoder call for all B·T frames, one call per fusion block
    model, enc, _ = tiny_models("cgclip", num_classes=50, captions_per_id=2, cmr_blocks=2)
    calls = {"enc": [], "fusion": 0}
    enc.register_forward_hook(lambda m, args, out: calls["enc"].append(args[0].shape[0]))

    def count(*_):
        calls["fusion"] += 1

    for block in model.fusion.blocks:
        block.register_forward_hook(count)
    images, pids, camids = make_batch(num_ids=3, per_id=2, frames=4)
    model.train()
    model(images, camids, pids)
    assert calls == {"enc": [24], "fusion": 2}
