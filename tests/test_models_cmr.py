"""CMR: Text Memory (init, momentum update, static, identity modes, DDP sync) and the fusion encoder variants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cgclip.models.cmr import FusionEncoder, TextMemory
from fixtures_models import TinyTextEncoder, make_batch, make_captions, tiny_models


def _memory(**kwargs) -> TextMemory:
    feats = torch.tensor(
        [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],  # identity 0: two captions
            [0.0, 0.0, 1.0],  # identity 1: one caption
            [1.0, 1.0, 0.0],
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 1.0],
        ]
    )  # identity 2: three captions
    owner = torch.tensor([0, 0, 1, 2, 2, 2])
    return TextMemory(feats, owner, 3, **kwargs)


def test_memory_init_is_normalised_mean_of_caption_features():
    mem = _memory()
    s = 2**-0.5
    expected = torch.tensor([[s, s, 0.0], [0.0, 0.0, 1.0], [1 / 3**0.5] * 3])
    assert torch.allclose(mem.memory, expected, atol=1e-6)
    assert mem.caption_offsets.tolist() == [0, 2, 3, 6]
    assert torch.allclose(mem.caption_feats.norm(dim=1), torch.ones(6))
    assert set(dict(mem.named_buffers())) == {"caption_feats", "caption_owner", "caption_offsets", "memory"}


def test_momentum_update_math_on_a_known_example():
    mem = _memory(momentum=0.2)
    before = mem.memory.clone()
    e = torch.tensor([[0.0, 0.0, 1.0]])
    mem.apply_update(torch.tensor([0]), e)
    raw = 0.2 * before[0] + 0.8 * e[0]  # 0.2·[s, s, 0] + 0.8·[0, 0, 1]
    assert torch.allclose(mem.memory[0], raw / raw.norm(), atol=1e-6)
    assert torch.allclose(mem.memory[1:], before[1:])  # other rows untouched
    # momentum 1 keeps the memory; momentum 0 replaces it by the caption
    for m, want in ((1.0, before[2]), (0.0, F.normalize(torch.tensor([1.0, 2.0, 3.0]), dim=0))):
        mem = _memory(momentum=m)
        mem.apply_update(torch.tensor([2]), torch.tensor([[1.0, 2.0, 3.0]]))
        assert torch.allclose(mem.memory[2], want, atol=1e-6)


def test_update_samples_one_caption_of_each_identity_in_the_batch():
    mem = _memory(momentum=0.0)  # memory row becomes exactly the sampled caption
    torch.manual_seed(0)
    seen = {0: set(), 2: set()}
    for _ in range(40):
        mem.update(torch.tensor([0, 0, 2, 2]))
        for pid in (0, 2):
            match = (mem.caption_feats @ mem.memory[pid]).argmax().item()
            assert mem.caption_owner[match].item() == pid
            seen[pid].add(match)
        assert torch.allclose(mem.memory[1], torch.tensor([0.0, 0.0, 1.0]))  # not in the batch
    assert seen == {0: {0, 1}, 2: {3, 4, 5}}  # every caption gets sampled
    # the global torch RNG drives the sampling: same seed, same memory
    a, b = _memory(momentum=0.2), _memory(momentum=0.2)
    for m in (a, b):
        torch.manual_seed(7)
        for _ in range(5):
            m.update(torch.tensor([0, 2, 1]))
    assert torch.equal(a.memory, b.memory)


def test_static_memory_never_changes_in_training():
    model, _, _ = tiny_models("cgclip", static_memory=True)
    images, pids, camids = make_batch()
    before = model.text_memory.memory.clone()
    model.train()
    model(images, camids, pids)["loss"].backward()
    assert torch.equal(model.text_memory.memory, before)


def test_training_forward_updates_only_batch_identities():
    model, _, _ = tiny_models("cgclip", num_classes=6)
    images, pids, camids = make_batch(num_ids=3)  # identities 0, 1, 2
    before = model.text_memory.memory.clone()
    model.train()
    model(images, camids, pids)
    changed = (model.text_memory.memory - before).abs().sum(1) > 0
    assert changed.tolist() == [True, True, True, False, False, False]
    assert torch.allclose(model.text_memory.memory.norm(dim=1), torch.ones(6), atol=1e-5)
    # eval forward / extract never touch the memory
    snapshot = model.text_memory.memory.clone()
    model.extract(images, camids)
    model.eval()
    model(images, camids, pids)
    assert torch.equal(model.text_memory.memory, snapshot)


@pytest.mark.parametrize("variant", ["a", "b", "c"])
@pytest.mark.parametrize("blocks", [1, 2, 3, 4])
def test_fusion_variants_and_blocks_shapes(variant, blocks):
    torch.manual_seed(0)
    fusion = FusionEncoder(variant, blocks, dim=16)
    memory = F.normalize(torch.randn(7, 16), dim=-1)
    tokens = torch.randn(3, 9, 16)
    refined = fusion(memory, tokens)
    assert refined.shape == (3, 7, 16)
    assert len(fusion.blocks) == blocks
    # zero-initialised output projection: M' = M at the start
    assert torch.allclose(refined, memory.expand(3, -1, -1))
    # after perturbing the output projection, each tracklet gets its own refined memory
    torch.nn.init.normal_(fusion.out.weight, std=0.1)
    refined = fusion(memory, tokens)
    assert not torch.allclose(refined[0], refined[1])
    # and each tracklet's refinement depends only on its own tokens
    alone = fusion(memory, tokens[1:2])
    assert torch.allclose(alone[0], refined[1], atol=1e-5)


@pytest.mark.parametrize("variant", ["a", "b", "c"])
def test_fusion_variant_models_train(variant):
    model, _, _ = tiny_models("cgclip", cmr_fusion=variant, cmr_blocks=1)
    images, pids, camids = make_batch()
    model.train()
    out = model(images, camids, pids)
    out["loss"].backward()
    assert model.fusion.variant == variant
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("fusion.out"))
    assert set(out["losses"]) == {"v2rm", "tri", "ce"}


def test_identity_modes():
    captions = make_captions(3, 2)
    names = ["P07", "P11", "P42"]
    text = TinyTextEncoder(16)
    plain, _, _ = tiny_models("cgclip", num_classes=3, captions_per_id=2, identity_mode="caption")
    idtext, _, _ = tiny_models(
        "cgclip", num_classes=3, captions_per_id=2, identity_mode="caption_idtext", identity_names=names
    )
    idemb, _, _ = tiny_models("cgclip", num_classes=3, captions_per_id=2, identity_mode="caption_idemb")
    # caption only: features of the captions themselves
    assert torch.allclose(plain.text_memory.caption_feats, text.encode([c for cs in captions for c in cs]), atol=1e-6)
    # ID text: "The person's ID is [ID]." appended to every caption, with the identity's name
    want = [f"{c} The person's ID is {names[pid]}." for pid, cs in enumerate(captions) for c in cs]
    assert torch.allclose(idtext.text_memory.caption_feats, text.encode(want), atol=1e-6)
    assert plain.text_memory.id_embed is None and idtext.text_memory.id_embed is None
    # ID emb: a learnable per-identity embedding (zero at start) added to the target rows, trained by L_v2rm
    emb = idemb.text_memory.id_embed
    assert emb.shape == (3, 16) and emb.requires_grad and torch.count_nonzero(emb) == 0
    assert "text_memory.id_embed" in dict(idemb.named_parameters())
    images, pids, camids = make_batch()
    idemb.train()
    idemb(images, camids, pids)["loss"].backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    with torch.no_grad():
        emb.add_(1.0)
    assert torch.allclose(idemb.text_memory.targets(), idemb.text_memory.memory + 1.0)


def test_id_text_defaults_to_pid_and_accepts_identities_without_captions():
    text = TinyTextEncoder(16)
    captions = [["A man in red."], []]
    from cgclip.models import build_model
    from fixtures_models import TinyImageEncoder

    model = build_model(
        "cgclip", image_encoder=TinyImageEncoder(), num_classes=2, num_cameras=1, captions=captions, text_encoder=text
    )
    want = text.encode(["A man in red. The person's ID is 0.", "The person's ID is 1."])
    assert torch.allclose(model.text_memory.caption_feats, want, atol=1e-6)


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # ranks sample with different RNG streams
    mem = _memory(momentum=0.2)
    for _step in range(4):
        mem.update(torch.tensor([0, 0]) if rank == 0 else torch.tensor([2, 1]))
    torch.save(mem.memory, f"{out}.{rank}")
    dist.destroy_process_group()


def test_memory_update_is_identical_across_ddp_ranks(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "mem")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    m0, m1 = torch.load(f"{out}.0", weights_only=True), torch.load(f"{out}.1", weights_only=True)
    assert torch.equal(m0, m1)
    fresh = _memory().memory
    # identity 0 (rank 0's batch) and identity 2 (rank 1's) were updated on both ranks (identity 1's only caption
    # equals its initial row)
    assert not torch.allclose(m0[0], fresh[0]) and not torch.allclose(m0[2], fresh[2])


def test_cpu_attention_path_equals_fused_kernel():
    # the CPU path (explicit softmax, broadcast batch-1 queries) computes what the GPU path's SDPA call computes
    from cgclip.models.fusion import Attention

    torch.manual_seed(0)
    attn = Attention(32, 4)
    x, ctx = torch.randn(1, 5, 32), torch.randn(3, 7, 32)
    out, _ = attn(x, ctx)
    q = attn._split(attn.q(x)).expand(3, -1, -1, -1)
    k, v = attn.kv(ctx).chunk(2, dim=-1)
    fused = F.scaled_dot_product_attention(q, attn._split(k), attn._split(v))
    fused = attn.out(fused.transpose(1, 2).reshape(3, 5, 32))
    assert torch.allclose(out, fused, atol=1e-5)
    out_w, weights = attn(x, ctx, need_weights=True)
    assert torch.allclose(out_w, fused, atol=1e-5) and weights.shape == (3, 4, 5, 7)
