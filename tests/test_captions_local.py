"""Local transformers back-end end to end on tiny randomly initialised models the tests build and save."""

from __future__ import annotations

import pytest

from captions_server import make_image_folder
from cgclip.captions.augment import augment_captions
from cgclip.captions.local_backend import LocalBackend
from cgclip.captions.mllm import GenerationTask, caption_frames, frames_from_folder
from cgclip.captions.store import CaptionRecord, CaptionStore
from cgclip.cli import main
from cgclip.errors import CgclipError
from fixtures_clip import WORDS, tiny_blip, tiny_text_lm, tiny_ved_captioner


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"ved": tiny_ved_captioner(root / "ved"), "blip": tiny_blip(root / "blip"), "lm": tiny_text_lm(root / "lm")}


def test_vision_encoder_decoder_captions_frames_and_resumes(models, tmp_path):
    items = frames_from_folder(make_image_folder(tmp_path / "img", identities=3, tracklets=2, frames=4), 2)
    assert len(items) == 12
    be = LocalBackend(models["ved"], device="cpu", batch_size=5, max_new_tokens=5)
    assert be.kind == "ved" and be.model_name == "ved"
    store = CaptionStore(tmp_path / "caps.jsonl")
    s = caption_frames(items, be, store, limit=7)
    assert (s.captioned, s.failed) == (7, 0)
    s = caption_frames(items, be, CaptionStore(tmp_path / "caps.jsonl"))
    assert (s.already_done, s.captioned, s.failed) == (7, 5, 0)
    records = CaptionStore(tmp_path / "caps.jsonl").captions
    assert sorted(r.frame for r in records) == sorted(it.frame for it in items)
    for r in records:
        words = r.text.split()
        assert 1 <= len(words) <= 5 and set(words) <= set(WORDS) and r.source == "mllm" and r.model == "ved"


def test_blip_processor_path_with_prefix_and_bad_image(models, tmp_path):
    img = make_image_folder(tmp_path / "img", identities=1, tracklets=1, frames=2)
    paths = sorted(str(p) for p in img.rglob("*.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    be = LocalBackend(models["blip"], batch_size=4, max_new_tokens=4, prefix="a person")
    assert be.kind == "vision" and not be.chat
    tasks = [GenerationTask(p, "ignored", p) for p in paths]
    tasks.append(GenerationTask("bad", "x", str(tmp_path / "broken.jpg")))
    results = {r.key: r for r in be.generate(tasks)}
    assert results["bad"].error.startswith("cannot read image")
    for p in paths:
        assert results[p].text.startswith("a person") and len(results[p].text.split()) > 2


def test_text_lm_augments_and_captioners_refuse_wrong_inputs(models, tmp_path):
    store = CaptionStore(tmp_path / "c.jsonl")
    store.add([CaptionRecord("a", "a man wearing red shorts", "mllm", frame="a/1.jpg", item="a/1.jpg")])
    lm = LocalBackend(models["lm"], max_new_tokens=6)
    assert lm.kind == "text" and lm.chat
    s = augment_captions(store, lm)
    assert (s.captioned, s.failed) == (1, 0)
    [aug] = [r for r in CaptionStore(store.path).captions if r.source == "augment"]
    assert aug.frame == "a/1.jpg" and aug.model == "lm" and aug.text
    ved = LocalBackend(models["ved"])
    with pytest.raises(CgclipError, match="cannot rewrite text"):
        list(ved.generate([GenerationTask("t", "paraphrase this")]))
    with pytest.raises(CgclipError, match="reads text only"):
        list(lm.generate([GenerationTask("i", "describe", image="x.jpg")]))
    with pytest.raises(CgclipError, match="no config.json"):
        LocalBackend(tmp_path)


def test_cli_mllm_with_local_model(models, tmp_path, capsys):
    img = make_image_folder(tmp_path / "img", identities=2, tracklets=1, frames=3)
    out = tmp_path / "caps.jsonl"
    args = [
        "caption",
        "mllm",
        "--images",
        str(img),
        "--out",
        str(out),
        "--model-dir",
        str(models["ved"]),
        "--max-tokens",
        "4",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    assert "6 captioned, 0 failed" in capsys.readouterr().out
    assert main(args) == 0 and "6 already done" in capsys.readouterr().out
    assert main(["caption", "mllm", "--images", str(img), "--out", str(out)]) == 2  # no back-end named


def test_pickle_weights_are_refused_before_loading(tmp_path):
    from cgclip.errors import CheckpointError

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "gpt2"}')
    (model_dir / "pytorch_model.bin").write_bytes(b"not loaded: a pickle could run code")
    with pytest.raises(CheckpointError, match=r"pickle format \(pytorch_model.bin\)"):
        LocalBackend(model_dir)
