"""CLIP loading: tokenizer building, positional-embedding resampling, image/text encoders, SIE and directory checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cgclip.clip.backbone import ClipImageEncoder, check_clip_dir, load_clip
from cgclip.clip.pos_embed import interpolate_pos_embed
from cgclip.clip.random_clip import save_random_clip
from cgclip.clip.tokenizer import BOS_TOKEN, EOS_TOKEN, build_clip_tokenizer
from cgclip.errors import CheckpointError


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_clip(tmp_path_factory.mktemp("clip") / "tiny", size="tiny-vit", seed=0)


# --- tokenizer ---------------------------------------------------------------------------------------------------


def test_tokenizer_round_trip(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, CLIPTokenizer, CLIPTokenizerFast

    corpus = [
        f"a player in a {c} jersey with number {n} and {h} hair."
        for c in ("red", "blue", "green")
        for n in range(30)
        for h in ("short", "long")
    ]
    vocab = build_clip_tokenizer(tmp_path, corpus, num_merges=300)
    assert max(vocab.values()) == vocab[EOS_TOKEN] == len(vocab) - 1 and vocab[BOS_TOKEN] == len(vocab) - 2
    for cls in (CLIPTokenizer, CLIPTokenizerFast, AutoTokenizer):
        tok = cls.from_pretrained(str(tmp_path), local_files_only=True)
        assert tok.bos_token_id == vocab[BOS_TOKEN] and tok.eos_token_id == vocab[EOS_TOKEN] == tok.pad_token_id
        ids = tok("A Player in a RED  jersey, number 17!")["input_ids"]
        assert ids[0] == vocab[BOS_TOKEN] and ids[-1] == vocab[EOS_TOKEN]
        tokens = tok.convert_ids_to_tokens(ids)
        assert "player</w>" in tokens and "red</w>" in tokens and "jersey</w>" in tokens  # learned whole words
        assert tok.decode(ids, skip_special_tokens=True) == "a player in a red jersey , number 1 7 !"
    # bytes outside the corpus still encode without an unknown token and decode back
    weird = "ünïcödé ☃ wörds"
    ids = tok(weird)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == weird
    assert len(tok("word " * 200, truncation=True, max_length=77)["input_ids"]) == 77


# --- positional embeddings -----------------------------------------------------------------------------------------


def test_pos_embed_identity_and_shapes() -> None:
    table = torch.randn(1 + 14 * 14, 32)
    assert interpolate_pos_embed(table, (14, 14)) is table
    out = interpolate_pos_embed(table, (16, 8))
    assert out.shape == (1 + 16 * 8, 32)
    assert torch.equal(out[0], table[0])  # class token untouched
    small = interpolate_pos_embed(torch.randn(1 + 64, 8), (8, 4))
    assert small.shape == (33, 8)
    # a constant field stays constant; a field that varies only along rows keeps doing so
    const = torch.cat([torch.zeros(1, 4), torch.full((49, 4), 3.0)])
    assert torch.allclose(interpolate_pos_embed(const, (16, 8))[1:], torch.full((128, 4), 3.0), atol=1e-5)
    rows = torch.arange(7.0).repeat_interleave(7).unsqueeze(1).expand(49, 2)
    grid = interpolate_pos_embed(torch.cat([torch.zeros(1, 2), rows]), (16, 8))[1:].reshape(16, 8, 2)
    assert torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-5)
    assert bool((grid[1:, 0, 0] >= grid[:-1, 0, 0] - 1e-5).all())  # still increasing down the rows
    # non-square source grids need src_grid
    with pytest.raises(ValueError):
        interpolate_pos_embed(torch.randn(1 + 32, 4), (16, 8))
    assert interpolate_pos_embed(torch.randn(1 + 32, 4), (16, 8), src_grid=(8, 4)).shape == (129, 4)


# --- loading and encoders --------------------------------------------------------------------------------------------


def test_load_tiny_shapes_text_and_freezing(tiny_dir: Path) -> None:
    clip = load_clip(tiny_dir, image_size=(128, 64))
    assert isinstance(clip.image, ClipImageEncoder)
    assert clip.embed_dim == clip.image.embed_dim == clip.text.embed_dim == 256
    assert clip.image.width == 192 and clip.image.grid == (8, 4) and clip.image.num_tokens == 33
    tokens = clip.image(torch.randn(3, 3, 128, 64))
    assert tokens.shape == (3, 33, 192)
    assert clip.image.project(tokens).shape == (3, 33, 256)
    feats = clip.text.encode(["a red shirt", "blue shoes", "number 7 " * 60], batch_size=2)
    assert feats.shape == (3, 256) and feats.dtype == torch.float32
    assert torch.allclose(feats.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert not feats.requires_grad
    assert not any(p.requires_grad for p in clip.text.parameters())
    holder = torch.nn.ModuleDict({"text": clip.text, "image": clip.image}).train()
    assert not clip.text.training and clip.image.training
    # the same text gives the same feature whatever the batch it is in (padding does not leak)
    alone = clip.text.encode(["blue shoes"])
    assert torch.allclose(alone[0], feats[1], atol=1e-5)
    del holder


def test_image_encoder_matches_hf_and_trains_pos_embed(tiny_dir: Path) -> None:
    from transformers import CLIPModel

    hf = CLIPModel.from_pretrained(str(tiny_dir), local_files_only=True, dtype=torch.float32).eval()
    clip = load_clip(tiny_dir, image_size=(128, 64))
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        ref = hf.vision_model(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state
        ref = hf.vision_model.post_layernorm(ref)
        assert torch.allclose(clip.image(x), ref, atol=1e-5)
        pooled = hf.get_image_features(pixel_values=x, interpolate_pos_encoding=True).pooler_output
        assert torch.allclose(clip.image.encode_image(x), pooled, atol=1e-5)
    out = clip.image(x)
    out.sum().backward()
    assert clip.image.pos_embed.grad is not None
    assert clip.image.vision_model.embeddings.position_embedding.weight.grad is None
    # another input size still works (positions resampled on the fly)
    assert clip.image(torch.randn(1, 3, 256, 128)).shape == (1, 129, 192)


def test_bf16_autocast_forward(tiny_dir: Path) -> None:
    clip = load_clip(tiny_dir, image_size=(128, 64), num_cameras=2)
    x = torch.randn(2, 3, 128, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = clip.image(x, torch.tensor([0, 1]))
        loss = clip.image.project(out[:, 0]).float().pow(2).mean()
    loss.backward()
    assert out.shape == (2, 33, 192) and torch.isfinite(out.float()).all()
    assert clip.image.sie_embed.grad is not None


def test_sie_on_off(tiny_dir: Path) -> None:
    plain = load_clip(tiny_dir, image_size=(128, 64))
    assert plain.image.sie_embed is None
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        base = plain.image(x)
        assert torch.equal(plain.image(x, torch.tensor([0, 1])), base)  # camids ignored without SIE
        sie = load_clip(tiny_dir, image_size=(128, 64), num_cameras=4, sie_coef=2.0)
        table = sie.image.sie_embed
        assert (
            table.shape == (4, 192) and 0.01 < float(table.std()) < 0.03 and float(table.abs().max()) > 0.04
        )  # not cut at 2σ
        assert torch.equal(sie.image(x), base)  # no camids: no SIE
        a, b = sie.image(x, torch.tensor([0, 0])), sie.image(x, torch.tensor([3, 3]))
        assert not torch.allclose(a, b)
        emb = sie.image.embed(x, torch.tensor([1, 2])) - sie.image.embed(x)
        assert torch.allclose(emb, 2.0 * table[[1, 2]].unsqueeze(1).expand_as(emb), atol=1e-6)
        with pytest.raises(ValueError):
            sie.image(x, torch.tensor([0, -1]))
        # TF-CLIP / CLIP-ReID: the embedding is added to the CLS token only
        cls_only = load_clip(tiny_dir, image_size=(128, 64), num_cameras=4, sie_coef=2.0, sie_tokens="cls")
        cls_only.image.sie_embed.copy_(table)
        emb = cls_only.image.embed(x, torch.tensor([1, 2])) - cls_only.image.embed(x)
        assert torch.allclose(emb[:, 0], 2.0 * table[[1, 2]], atol=1e-6) and float(emb[:, 1:].abs().max()) == 0.0


def test_unseen_cameras_get_the_mean_of_the_trained_rows(tiny_dir: Path) -> None:
    """The SIE unseen-camera rule: a camera training never saw (absent from the trained set, or beyond the table)
    gets the mean of the trained rows, so two unseen cameras give the same feature."""
    x = torch.randn(1, 3, 128, 64).expand(3, -1, -1, -1)
    for tokens in ("cls", "all"):
        sie = load_clip(
            tiny_dir, image_size=(128, 64), num_cameras=4, sie_coef=1.0, sie_tokens=tokens, trained_cameras=[0, 1, 3]
        ).image
        with torch.no_grad():
            table = sie.sie_embed
            rows = sie.camera_embedding(torch.tensor([2, 7, 1]))
            mean = table[[0, 1, 3]].mean(dim=0)
            assert torch.allclose(rows[0], mean) and torch.allclose(rows[1], mean) and torch.equal(rows[2], table[1])
            out = sie(x, torch.tensor([2, 9, 0]))
            assert torch.equal(out[0], out[1])  # two unseen cameras: the same tokens
            assert not torch.allclose(out[0], out[2])  # a trained camera keeps its own row
    with pytest.raises(ValueError, match="trained_cameras"):
        load_clip(tiny_dir, image_size=(128, 64), num_cameras=2, trained_cameras=[0, 2])


def test_vit_b16_layout_at_256x128(tmp_path: Path) -> None:
    from transformers import CLIPModel

    path = save_random_clip(tmp_path / "vitb", size="vit-b-16", seed=1, dtype=torch.float16)
    clip = load_clip(path)  # default 256x128
    assert clip.image.source_grid == (14, 14) and clip.image.grid == (16, 8) and clip.embed_dim == 512
    x = torch.randn(1, 3, 256, 128)
    with torch.no_grad():
        tokens = clip.image(x)
        assert tokens.shape == (1, 129, 768)
        hf = CLIPModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        ref = hf.vision_model.post_layernorm(
            hf.vision_model(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state
        )
    assert torch.allclose(tokens, ref, atol=1e-4)
    assert clip.text.encode(["a man in a white shirt"]).shape == (1, 512)


# --- random checkpoints and directory checks ---


def test_save_random_clip_is_deterministic(tiny_dir: Path, tmp_path: Path) -> None:
    again = save_random_clip(tmp_path / "again", size="tiny-vit", seed=0)
    a, b = load_file(tiny_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match="not empty"):
        save_random_clip(again, size="tiny-vit", seed=1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    with pytest.raises(ValueError):
        save_random_clip(tmp_path / "x", size="huge")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_bad_directories(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_clip(tmp_path / "nope")
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="import-clip"):
        load_clip(pt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_clip(empty)
    bert = _copy(tiny_dir, tmp_path / "bert")
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert'") as info:
        load_clip(bert)
    assert str(bert) in str(info.value) and "\n" not in str(info.value)
    noweights = _copy(tiny_dir, tmp_path / "noweights")
    (noweights / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_clip(noweights)
    (noweights / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickle"):
        load_clip(noweights)
    notok = _copy(tiny_dir, tmp_path / "notok")
    (notok / "vocab.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer"):
        check_clip_dir(notok)
    deeper = _copy(tiny_dir, tmp_path / "deeper")
    cfg = json.loads((deeper / "config.json").read_text())
    cfg["vision_config"]["num_hidden_layers"] = 6
    (deeper / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        load_clip(deeper)


# --- the conv-stem tower of the embedded tiny CLIP -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stem_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_clip(tmp_path_factory.mktemp("clip") / "stem", size="tiny", seed=0)


def test_conv_stem_checkpoint_round_trip(stem_dir: Path, tmp_path: Path) -> None:
    """The stem is declared in config.json, rebuilt by the loader, and gives the saved model's tokens; the ReID
    interface (129 tokens at 128x64, SIE, projection) is the same as a ViT's."""
    from transformers import CLIPModel

    from cgclip.clip.conv_stem import STEM_KEY, ConvStem, apply_stem
    from cgclip.train.modeling import image_encoder_from_config

    cfg = json.loads((stem_dir / "config.json").read_text())
    assert cfg["vision_config"][STEM_KEY] == {"type": "conv", "channels": [32, 64, 128, 192]}
    assert cfg["vision_config"]["patch_size"] == 8
    clip = load_clip(stem_dir, image_size=(128, 64), num_cameras=3)
    assert isinstance(clip.image.vision_model.embeddings.patch_embedding, ConvStem)
    assert clip.image.grid == (16, 8) and clip.image.num_tokens == 129
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = clip.image.eval()(x, torch.tensor([0, 2]))
    assert out.shape == (2, 129, 192) and torch.isfinite(out.float()).all()
    # the same weights, built by hand from the config, give the same tokens
    ref = CLIPModel(clip.config)
    apply_stem(ref.vision_model)
    ref.load_state_dict(load_file(stem_dir / "model.safetensors"), strict=False)
    twin = ClipImageEncoder(ref.vision_model, ref.visual_projection, image_size=(128, 64)).eval()
    with torch.no_grad():
        assert torch.allclose(twin(x), clip.image(x), atol=1e-4)
    # an inference rebuild from the run's copy of config.json has the stem too, with the same parameter names
    rebuilt = image_encoder_from_config(stem_dir, (128, 64), 0, 1.0)
    assert set(rebuilt.state_dict()) == set(load_clip(stem_dir, image_size=(128, 64)).image.state_dict())


def test_global_pool_stem_round_trip_and_reaches_the_cls_token(tmp_path: Path) -> None:
    """``tiny-cnn``: a stride-16 stem (33 tokens at 128x64, as the 16-px ViT) whose global max-pool is added to every
    token; declared in config.json and rebuilt by the loader; a detector firing in one corner moves the CLS input."""
    from cgclip.clip.conv_stem import STEM_KEY, ConvStem

    path = save_random_clip(tmp_path / "cnn", size="tiny-cnn", seed=0)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["vision_config"][STEM_KEY] == {"type": "conv", "channels": [16, 32, 64, 128, 192], "global_pool": True}
    clip = load_clip(path, image_size=(128, 64))
    clip.image.eval()  # BatchNorm with running statistics: no coupling through the batch
    stem = clip.image.vision_model.embeddings.patch_embedding
    assert isinstance(stem, ConvStem) and stem.global_proj is not None and clip.image.num_tokens == 33
    x = torch.zeros(1, 3, 128, 64)
    y = x.clone()
    y[..., :8, :8] = 3.0  # a bright patch in the top-left corner only
    with torch.no_grad():
        a, b = clip.image.embed(x), clip.image.embed(y)
        delta = (b - a).norm(dim=-1)[0]
    far = delta[1:].reshape(8, 4)[-1, -1]  # the bottom-right token, far from the patch
    assert float(far) > 1e-3  # the global term reaches tokens far from the patch
    with torch.no_grad():
        stem.global_proj.weight.zero_()
        stem.global_proj.bias.zero_()
        delta = (clip.image.embed(y) - clip.image.embed(x)).norm(dim=-1)[0]
    assert float(delta[1:].reshape(8, 4)[-1, -1]) < 1e-5  # without it, a local stem does not


def test_frozen_stem_keeps_weights_and_statistics_while_the_transformer_trains(stem_dir: Path) -> None:
    """``freeze_stem``: a training step leaves the conv stem's weights and BatchNorm statistics as loaded (eval mode
    whatever the parent asks) and still updates the transformer; without it the stem trains."""

    def step(freeze: bool) -> tuple[ClipImageEncoder, dict[str, torch.Tensor]]:
        image = load_clip(stem_dir, image_size=(128, 64), freeze_stem=freeze).image
        before = {k: v.clone() for k, v in image.state_dict().items()}
        image.train()
        params = [p for p in image.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.1)
        image.encode_image(torch.randn(4, 3, 128, 64)).square().mean().backward()
        opt.step()
        return image, before

    image, before = step(freeze=True)
    stem = image.vision_model.embeddings.patch_embedding
    assert not stem.training and image.training
    after = image.state_dict()
    stem_keys = [k for k in after if ".patch_embedding." in k]
    assert any("running_mean" in k for k in stem_keys)
    assert all(torch.equal(after[k], before[k]) for k in stem_keys)
    assert not torch.equal(after["vision_model.post_layernorm.weight"], before["vision_model.post_layernorm.weight"])
    image, before = step(freeze=False)
    assert image.vision_model.embeddings.patch_embedding.training
    after = image.state_dict()
    assert not all(torch.equal(after[k], before[k]) for k in after if ".patch_embedding." in k)


def test_conv_stem_checkpoint_errors(stem_dir: Path, tmp_path: Path) -> None:
    """Damaged or mismatching weights of a stem checkpoint give one line naming the file."""
    broken = _copy(stem_dir, tmp_path / "broken")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot load CLIP checkpoint") as info:
        load_clip(broken)
    assert "\n" not in str(info.value) and str(broken) in str(info.value)
    wider = _copy(stem_dir, tmp_path / "wider")
    cfg = json.loads((wider / "config.json").read_text())
    cfg["vision_config"]["cgclip_stem"]["channels"] = [16, 32, 64, 96]
    (wider / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="of another shape") as info:
        load_clip(wider)
    assert "\n" not in str(info.value)
