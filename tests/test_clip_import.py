"""OpenAI CLIP .pt → Hugging Face directory: round trip from a random HF model, TorchScript archives, safe reading."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from cgclip.cli import main as cli_main
from cgclip.clip.backbone import load_clip
from cgclip.clip.openai_import import import_openai_clip, read_openai_checkpoint
from cgclip.clip.random_clip import save_random_clip
from cgclip.clip.torchscript_reader import read_torchscript_state_dict
from cgclip.errors import CheckpointError

_LAYER_PARTS = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def hf_to_openai(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse mapping (test-only): a transformers CLIPModel state dict in OpenAI's layout."""
    v, t = "vision_model.", "text_model."
    out = {
        "visual.conv1.weight": hf[v + "embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf[v + "embeddings.class_embedding"],
        "visual.positional_embedding": hf[v + "embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf[v + "pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf[v + "pre_layrnorm.bias"],
        "visual.ln_post.weight": hf[v + "post_layernorm.weight"],
        "visual.ln_post.bias": hf[v + "post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].t().contiguous(),
        "token_embedding.weight": hf[t + "embeddings.token_embedding.weight"],
        "positional_embedding": hf[t + "embeddings.position_embedding.weight"],
        "ln_final.weight": hf[t + "final_layer_norm.weight"],
        "ln_final.bias": hf[t + "final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].t().contiguous(),
        "logit_scale": hf["logit_scale"],
    }
    for tower, prefix in ((v, "visual.transformer"), (t, "transformer")):
        layer = 0
        while f"{tower}encoder.layers.{layer}.layer_norm1.weight" in hf:
            src, dst = f"{tower}encoder.layers.{layer}.", f"{prefix}.resblocks.{layer}."
            for kind in ("weight", "bias"):
                out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                    [hf[src + f"self_attn.{n}_proj.{kind}"] for n in ("q", "k", "v")], dim=0
                )
                for hf_part, oa_part in _LAYER_PARTS.items():
                    out[dst + f"{oa_part}.{kind}"] = hf[src + f"{hf_part}.{kind}"]
            layer += 1
    out["input_resolution"] = torch.tensor(128)  # extra scalars found in OpenAI's JIT state dicts
    out["context_length"] = torch.tensor(77)
    out["vocab_size"] = torch.tensor(hf[t + "embeddings.token_embedding.weight"].shape[0])
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    from transformers import CLIPModel

    path = save_random_clip(tmp_path_factory.mktemp("src") / "clip", size="tiny-vit", seed=3)
    hf = CLIPModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    return path, hf_to_openai(hf.state_dict())


def _assert_same_model(a: Path, b: Path) -> None:
    from transformers import CLIPModel, CLIPTokenizer

    ma = CLIPModel.from_pretrained(str(a), local_files_only=True, dtype=torch.float32).eval()
    mb = CLIPModel.from_pretrained(str(b), local_files_only=True, dtype=torch.float32).eval()
    assert ma.config.vision_config.image_size == mb.config.vision_config.image_size
    assert ma.config.text_config.eos_token_id == mb.config.text_config.eos_token_id
    tok = CLIPTokenizer.from_pretrained(str(b), local_files_only=True)
    text = tok(["a red jersey with number 12", "long hair"], padding=True, return_tensors="pt")
    pixels = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        out_a = ma(pixel_values=pixels, **text)
        out_b = mb(pixel_values=pixels, **text)
    assert torch.equal(out_a.image_embeds, out_b.image_embeds)
    assert torch.equal(out_a.text_embeds, out_b.text_embeds)
    assert torch.equal(out_a.logits_per_image, out_b.logits_per_image)


def test_state_dict_round_trip(source: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    src_dir, openai_state = source
    pt = tmp_path / "model.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in openai_state.items()}}, pt)
    out = import_openai_clip(pt, tmp_path / "hf", tokenizer_dir=src_dir)
    _assert_same_model(src_dir, out)
    clip = load_clip(out, image_size=(256, 128))
    assert clip.image(torch.randn(1, 3, 256, 128)).shape == (1, 129, 192)


def _as_module_tree(state: dict[str, torch.Tensor]) -> nn.Module:
    """A module whose attributes carry the tensors under OpenAI's dotted names (to script and save)."""

    class Root(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.logit_scale

    root: nn.Module = Root()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        node = root
        for name in parents:
            if not hasattr(node, name):
                node.add_module(name, nn.Module())
            node = getattr(node, name)
        if value.is_floating_point():
            node.register_parameter(leaf, nn.Parameter(value.clone().half(), requires_grad=False))
        else:
            node.register_buffer(leaf, value.clone())
    return root


def test_torchscript_archive_round_trip(source: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    src_dir, openai_state = source
    pt = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated, but OpenAI's released files are TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(_as_module_tree(openai_state), torch.ones(1, dtype=torch.float16))
        torch.jit.save(traced, str(pt))
    read = read_torchscript_state_dict(pt)
    assert set(read) == set(openai_state)
    assert all(
        torch.equal(read[k].float(), openai_state[k].half().float())
        if openai_state[k].is_floating_point()
        else torch.equal(read[k], openai_state[k])
        for k in read
    )
    out = tmp_path / "hf"
    assert cli_main(["import-clip", str(pt), "--out", str(out), "--tokenizer", str(src_dir), "--dtype", "float16"]) == 0
    from safetensors.torch import load_file

    tensors = load_file(out / "model.safetensors")
    assert tensors["visual_projection.weight"].dtype == torch.float16
    clip = load_clip(out, image_size=(128, 64))
    assert clip.text.encode(["white shoes"]).shape == (1, 256)


def test_import_errors(
    source: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src_dir, openai_state = source
    pt = tmp_path / "model.pt"
    torch.save(openai_state, pt)
    assert cli_main(["import-clip", str(pt), "--out", str(tmp_path / "x")]) == 2
    assert "--tokenizer" in capsys.readouterr().err
    resnet = dict(openai_state, **{"visual.layer1.0.conv1.weight": torch.zeros(1)})
    torch.save(resnet, tmp_path / "rn.pt")
    with pytest.raises(CheckpointError, match="ResNet"):
        import_openai_clip(tmp_path / "rn.pt", tmp_path / "y", src_dir)
    with pytest.raises(CheckpointError, match="not found"):
        read_openai_checkpoint(tmp_path / "missing.pt")
    # arbitrary pickled objects are refused (weights_only)
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"x": Path("/")}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="tensor-only"):
        read_openai_checkpoint(tmp_path / "evil.pt")
    # a TorchScript-looking archive whose pickle names a function outside the allow-list is refused, not called
    evil = tmp_path / "evil_ts.pt"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("m/data.pkl", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
        archive.writestr("m/constants.pkl", pickle.dumps(()))
        archive.writestr("m/code/__torch__.py", "")
    with pytest.raises(CheckpointError, match="os.system"):
        read_openai_checkpoint(evil)
    # the output directory is written atomically: nothing left on failure
    assert not (tmp_path / "y").exists()
