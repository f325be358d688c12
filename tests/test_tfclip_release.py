"""``tfclip`` against TF-CLIP's released code (AsuradaYuci/TF-CLIP): TMD and SSP against direct implementations of
the released equations, the released loss sum, the retrieval concatenations, the optimizer's lr rules, CLIP-Memory
over every clip, and SIE's defaults."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cgclip.config import ModelConfig, OptimConfig, resolve_model_defaults
from cgclip.models import build_model
from cgclip.models.tfclip_parts import SequenceSpecificPrompt, TemporalMemoryDiffusion
from cgclip.train.optim import build_optimizer, optimizer_from_config
from fixtures_models import TinyImageEncoder, make_batch, tiny_models


def _randomise_norms(module: nn.Module) -> None:
    """LayerNorm weights and biases away from 1 / 0, so a swapped or missing norm changes the output."""
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.1)


def _torch_mha(attn, dim: int, heads: int) -> nn.MultiheadAttention:
    """An ``nn.MultiheadAttention`` (as the release uses) holding the weights of our ``Attention``."""
    mha = nn.MultiheadAttention(dim, heads)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([attn.q.weight, attn.kv.weight]))
        mha.in_proj_bias.copy_(torch.cat([attn.q.bias, attn.kv.bias]))
        mha.out_proj.weight.copy_(attn.out.weight)
        mha.out_proj.bias.copy_(attn.out.bias)
    return mha


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def released_tmd(tmd: TemporalMemoryDiffusion, tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """``CrossFramelAttentionBlock.forward`` + ``cls_f_sp = f_sp2.mean(1)`` (make_model_clipreid.py 80–102, 273),
    sequence-first as released: ``x [l, B·T, D]``."""
    b, t, l, d = tokens.shape
    ln = lambda norm, x: F.layer_norm(x, (d,), norm.weight, norm.bias)  # noqa: E731
    message_attn, attn = _torch_mha(tmd.message_attn, d, heads), _torch_mha(tmd.attn, d, heads)
    x = tokens.reshape(b * t, l, d).permute(1, 0, 2).reshape(l, b, t, d)
    msg = tmd.message(x.mean(0))  # [b, T, d]
    msg = msg.view(b, t, 1, d).permute(1, 2, 0, 3).reshape(t, b, d)  # [T, b, d]
    h = ln(tmd.message_norm, msg)
    msg = msg + message_attn(h, h, h, need_weights=False)[0]
    msg = msg.view(t, 1, b, d).permute(1, 2, 0, 3)  # [1, b, T, d]
    x = torch.cat([x, msg], dim=0).reshape(l + 1, b * t, d)
    h = ln(tmd.norm1, x)
    x = x + attn(h, h, h, need_weights=False)[0]
    fc1, fc2 = tmd.mlp[0], tmd.mlp[-1]
    x = x + fc2(_quick_gelu(fc1(ln(tmd.norm2, x))))
    return x.permute(1, 0, 2).mean(1).reshape(b, t, d)


def _released_mha(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """``MulitHeadAttention.forward`` (make_model_clipreid.py 339–353): bias-free q/k/v, output projection."""
    c = q.shape[-1]
    wk, wv = attn.kv.weight[:c], attn.kv.weight[c:]
    split = lambda x: x.reshape(x.shape[0], x.shape[1], heads, c // heads).permute(0, 2, 1, 3)  # noqa: E731
    qh, kh, vh = split(q @ attn.q.weight.t()), split(k @ wk.t()), split(v @ wv.t())
    w = ((qh @ kh.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
    return attn.out((w @ vh).transpose(1, 2).reshape(q.shape[0], q.shape[1], c))


def released_ssp(ssp: SequenceSpecificPrompt, text: torch.Tensor, visual: torch.Tensor, heads: int) -> torch.Tensor:
    """``ImageSpecificPrompt.forward`` with ``PromptGeneratorLayer`` (make_model_clipreid.py 380–386, 420–428), eval
    mode; ``text`` is the memory expanded per tracklet ``[B, Y, d]`` as at line 284."""
    d = text.shape[-1]
    ln = lambda norm, x: F.layer_norm(x, (d,), norm.weight, norm.bias)  # noqa: E731
    vln1, vlin, vln2 = ssp.visual_proj
    visual = ln(vln2, vlin(ln(vln1, visual)))
    tln, tlin = ssp.memory_proj
    x = tlin(ln(tln, text))
    for layer in ssp.layers:
        q = ln(layer.norm1, x)
        x = x + _released_mha(layer.self_attn, q, q, q, heads)
        x = x + _released_mha(layer.cross_attn, ln(layer.norm2, x), visual, visual, heads)
        fc1, fc2 = layer.mlp[0], layer.mlp[-1]
        x = x + fc2(_quick_gelu(fc1(ln(layer.norm3, x))))
    oln, olin = ssp.out_proj
    return olin(ln(oln, x))


def test_tmd_equals_the_released_equations():
    torch.manual_seed(0)
    tmd = TemporalMemoryDiffusion(32, heads=4)
    _randomise_norms(tmd)
    tokens = torch.randn(2, 5, 9, 32)
    got = tmd(tokens)
    assert got.shape == (2, 5, 32)
    with torch.no_grad():
        assert torch.allclose(got, released_tmd(tmd, tokens, heads=4), atol=1e-5)
    # default (non-zero) initialisation: TMD is not the identity and not the CLS at the start
    fresh = TemporalMemoryDiffusion(32, heads=4)
    assert not torch.allclose(fresh(tokens), tokens.mean(2), atol=1e-3)
    assert all(float(w.detach().abs().sum()) > 0 for w in (fresh.mlp[-1].weight, fresh.attn.out.weight))


def test_ssp_equals_the_released_equations_and_is_not_zero_at_init():
    torch.manual_seed(0)
    ssp = SequenceSpecificPrompt(16, layers=2, heads=2)
    assert all(
        float(m.bias.detach().abs().max()) == 0.0
        for m in ssp.modules()
        if isinstance(m, nn.Linear) and m.bias is not None
    )
    weights = torch.cat([m.weight.detach().reshape(-1) for m in ssp.modules() if isinstance(m, nn.Linear)])
    assert 0.015 < float(weights.std()) < 0.025
    assert all(
        not (m.q.bias is not None or m.kv.bias is not None)
        for layer in ssp.layers
        for m in (layer.self_attn, layer.cross_attn)
    )
    memory, visual = torch.randn(7, 16), torch.randn(3, 9, 16)
    ssp.eval()
    with torch.no_grad():
        prompt = ssp(memory, visual)
        assert prompt.shape == (3, 7, 16) and float(prompt.abs().mean()) > 1e-3  # not zero at initialisation
        _randomise_norms(ssp)
        got = ssp(memory, visual)
        want = released_ssp(ssp, memory.unsqueeze(0).expand(3, -1, -1), visual, heads=2)
        assert torch.allclose(got, want, atol=1e-5)
    ssp.train()  # dropout 0.1 in training
    assert not torch.allclose(ssp(memory, visual), ssp(memory, visual))


def _released_ce(logits: torch.Tensor, targets: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """``CrossEntropyLabelSmooth`` (loss/softmax_loss.py)."""
    logp = logits.log_softmax(1)
    onehot = torch.zeros_like(logp).scatter_(1, targets.unsqueeze(1), 1)
    return (-((1 - eps) * onehot + eps / logits.shape[1]) * logp).mean(0).sum()


def _released_triplet(x: torch.Tensor, y: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """``TripletLoss`` (loss/triplet_loss.py): Euclidean distances, hardest positive / negative, margin ranking."""
    dist = ((x * x).sum(1, keepdim=True) + (x * x).sum(1) - 2 * x @ x.t()).clamp(min=1e-12).sqrt()
    same = y.unsqueeze(0) == y.unsqueeze(1)
    ap = dist.masked_fill(~same, float("-inf")).amax(1)
    an = dist.masked_fill(same, float("inf")).amin(1)
    return F.margin_ranking_loss(an, ap, torch.ones_like(an), margin=margin)


def _prepared(**options):
    model, enc, _ = tiny_models("tfclip", num_classes=3, **options)
    images, pids, camids = make_batch(num_ids=3, per_id=1, frames=3)
    model.prepare([{"images": images, "pid": pids, "camid": camids}])
    return model, enc


def test_loss_is_the_released_sum():
    torch.manual_seed(0)
    model, enc = _prepared()
    for m in model.ssp.modules():  # no dropout, so that the hand computation sees the same prompt
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    images, pids, camids = make_batch(num_ids=3, per_id=2, frames=3, seed=1)
    model.train()
    out = model(images, camids, pids)
    assert set(out["losses"]) == {"v2m", "tri", "ce", "frame"}
    with torch.no_grad():
        tokens = model.encode_frames(images, camids)
        b, t = tokens.shape[:2]
        img = tokens[:, :, 0].mean(1)
        proj = enc.project(tokens[:, :, 0]).mean(1)  # image_features_proj_raw[:, 0] averaged over T (line 264)
        frames = released_tmd(model.tmd, tokens, heads=1)
        video = frames.mean(1)
        bn = lambda x, norm: F.batch_norm(x, None, None, norm.weight, norm.bias, training=True)  # noqa: E731
        scores = [
            model.neck.classifier(bn(img, model.neck.bn)),
            model.neck_proj.classifier(bn(proj, model.neck_proj.bn)),
            model.neck_tmd.classifier(bn(video, model.neck_tmd.bn)),
        ]
        frame_score = model.neck_tmd.classifier(bn(frames.reshape(b * t, -1), model.frame_norm))
        memory = model.clip_memory
        refined = memory + model.ssp(memory, enc.project(tokens).mean(1))
        logits = torch.einsum("bd,bkd->bk", proj, refined)
        id_loss = sum(_released_ce(s, pids) for s in scores)
        tri_loss = sum(_released_triplet(f, pids) for f in (img, proj, video))
        frame_loss = _released_ce(frame_score, pids.unsqueeze(1).expand(b, t).reshape(-1))
        want = 0.25 * id_loss + 1.0 * tri_loss + 1.0 * _released_ce(logits, pids) + frame_loss / t
    assert float(out["loss"].detach()) == pytest.approx(float(want), rel=1e-5, abs=1e-5)
    assert out["losses"]["frame"] == pytest.approx(float(frame_loss), rel=1e-5)
    # every trainable parameter takes part (DDP with find_unused_parameters=False), and raw logits have no scale
    assert model.logit_scale is None and "logit_scale" not in dict(model.named_parameters())
    out["loss"].backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_loss_without_tmd_has_two_heads_and_no_frame_term():
    model, _ = _prepared(tmd=False)
    images, pids, camids = make_batch(num_ids=3, per_id=2, frames=3)
    model.train()
    out = model(images, camids, pids)
    assert set(out["losses"]) == {"v2m", "tri", "ce"}
    out["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert model.large_lr_parameter_names() == set()


@pytest.mark.parametrize("tmd", [True, False])
def test_neck_feat_selects_the_released_concatenations(tmd):
    model, enc = _prepared(tmd=tmd)
    big_d, small_d = enc.width, enc.embed_dim
    images, _, camids = make_batch(num_ids=3, per_id=2, frames=3)
    for neck in (model.neck, model.neck_proj):
        neck.bn.running_mean.fill_(0.5)
        neck.bn.running_var.fill_(4.0)
    model.eval()
    with torch.no_grad():
        tokens = model.encode_frames(images, camids)
        img = tokens[:, :, 0].mean(1)
        proj = enc.project(img)
        parts = [img, proj] + ([model.tmd(tokens).mean(1)] if tmd else [])
        before = torch.cat(parts, dim=1)
        after = torch.cat([model.neck.bn(img), model.neck_proj.bn(proj)], dim=1)
    feat = model.extract(images, camids)
    assert model.feature_dim == feat.shape[1] == (2 * big_d + small_d if tmd else big_d + small_d)
    assert torch.allclose(feat, before, atol=1e-5)
    model.neck_feat = "after"
    feat = model.extract(images, camids)
    assert model.feature_dim == feat.shape[1] == big_d + small_d
    assert torch.allclose(feat, after, atol=1e-5)


def test_bias_parameters_get_twice_the_lr_and_the_temporal_classifier_ten_times():
    model, _ = _prepared()
    cfg = OptimConfig(lr=1e-3, weight_decay=2e-4)
    assert (cfg.bias_lr_factor, cfg.large_fc_lr_mult, cfg.weight_decay_bias) == (2.0, 10.0, None)
    optimizer = optimizer_from_config(model, cfg)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # the plain group first (the logged lr)
    large = model.large_lr_parameter_names()
    assert large == {"neck_tmd.classifier.weight"}
    seen_bias = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert id(p) not in group_of  # the BNNecks' frozen biases
            continue
        group = group_of[id(p)]
        if name in large:
            want = 1e-2
        elif name.split(".")[-1].endswith("bias"):
            want, seen_bias = 2e-3, seen_bias + 1
        else:
            want = 1e-3
        assert group["lr"] == pytest.approx(want), name
        assert group["weight_decay"] == pytest.approx(2e-4), name  # WEIGHT_DECAY_BIAS = WEIGHT_DECAY
    assert seen_bias > 10
    # factors of 1 keep one plain group (the layout of runs saved before these settings existed)
    plain = build_optimizer(model, 1e-3, 2e-4)
    assert len(plain.param_groups) == 1
    separate = build_optimizer(model, 1e-3, 2e-4, weight_decay_bias=0.0)
    assert sorted(g["weight_decay"] for g in separate.param_groups) == [0.0, 2e-4]
    # cgclip: biases x2 as well, nothing x10
    cg, _, _ = tiny_models("cgclip", num_classes=3)
    lrs = sorted({g["lr"] for g in optimizer_from_config(cg, cfg).param_groups})
    assert lrs == pytest.approx([1e-3, 2e-3, 1e-2])  # plain, bias, logit scale (x10 by logit_scale_lr_mult)


def test_memory_averages_every_clip_of_each_tracklet_without_sie():
    torch.manual_seed(0)
    enc = TinyImageEncoder(num_cameras=2)
    model = build_model("tfclip", image_encoder=enc, num_classes=2, num_cameras=2)
    assert model.prepare_sampling == "dense"
    gen = torch.Generator().manual_seed(3)
    clips = [torch.randn(c, 4, 3, 32, 16, generator=gen) for c in (3, 1, 2, 2)]  # four tracklets
    loader = [
        {"images": [clips[0], clips[1]], "pid": torch.tensor([0, 1]), "camid": torch.tensor([1, 1])},
        {"images": torch.stack(clips[2:]), "pid": torch.tensor([0, 1]), "camid": torch.tensor([0, 1])},
    ]
    model.prepare(loader, max_clips=2)
    with torch.no_grad():
        per_track = [enc.proj(enc(c.flatten(0, 1))[:, 0]).reshape(c.shape[0], 4, -1).mean(1).mean(0) for c in clips]
        with_sie = enc.proj(enc(clips[0].flatten(0, 1), torch.ones(12, dtype=torch.long))[:, 0]).mean(0)
    want = torch.stack([(per_track[0] + per_track[2]) / 2, (per_track[1] + per_track[3]) / 2])
    assert torch.allclose(model.clip_memory, want, atol=1e-5)
    assert not torch.allclose(per_track[0], with_sie, atol=1e-4)  # the pass really leaves SIE out
    first = build_model("tfclip", image_encoder=enc, num_classes=2, num_cameras=2, memory_clips="first")
    assert first.prepare_sampling == "rrs_first"


def test_prepare_loader_gives_every_clip(tmp_path):
    from cgclip.config import load_config
    from cgclip.data.sampling import dense_clips
    from cgclip.train.distributed import DistInfo
    from cgclip.train.setup import prepare_loader
    from fixtures_train import write_tracklets

    tracklets = write_tracklets(tmp_path, pids=[0, 1], cams=1, tracklets_per_cam=1, frames=11, seed=0)
    cfg = load_config("tiny", ["data.seq_len=4", "data.image_size=[32,16]", "eval.batch_size=8"])
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    batch = next(iter(prepare_loader(tracklets, cfg, info, "dense")))
    images = batch["images"]
    assert images.shape[:3] == (2, len(dense_clips(11, 4)), 4)


def test_sie_is_on_for_tfclip_by_default_and_added_to_the_cls_token():
    assert resolve_model_defaults(ModelConfig(name="tfclip")).sie is True
    assert resolve_model_defaults(ModelConfig(name="tfclip")).sie_tokens == "cls"
    for name in ("cgclip", "tap"):
        cfg = resolve_model_defaults(ModelConfig(name=name))
        assert (cfg.sie, cfg.sie_tokens) == (False, "all")
    explicit = resolve_model_defaults(ModelConfig(name="tfclip", sie=False, sie_tokens="all"))
    assert (explicit.sie, explicit.sie_tokens) == (False, "all")
    assert dataclasses.replace(ModelConfig()).sie is None


def test_legacy_run_resumes_with_its_optimizer_layout(tmp_path):
    import yaml

    from cgclip.config import load_config
    from cgclip.train.run_dir import RunDir
    from cgclip.train.trainer import _apply_legacy_values

    run = RunDir(tmp_path / "run")
    run.create()
    run.save_config(load_config("tiny"))
    tree = yaml.safe_load(run.config_path.read_text())
    del tree["optim"]["bias_lr_factor"], tree["optim"]["large_fc_lr_mult"]
    run.config_path.write_text(yaml.safe_dump(tree))
    saved, cfg = run.load_config(), load_config("tiny")
    _apply_legacy_values(saved, cfg, run)
    assert (saved.optim.bias_lr_factor, cfg.optim.bias_lr_factor, saved.optim.large_fc_lr_mult) == (1.0, 1.0, 1.0)
