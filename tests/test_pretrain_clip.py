"""Contrastive pretraining of the tiny CLIP: the loss, a colour-word learning check, the CLI and the default cache."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cgclip.cli import main as cli_main
from cgclip.clip.backbone import load_clip
from cgclip.clip.random_clip import save_random_clip
from cgclip.clip.tokenizer import build_clip_tokenizer
from cgclip.errors import CheckpointError
from cgclip.pretrain.run import PretrainConfig, build_optimizer, clip_train_step, contrastive_loss
from cgclip.pretrain.targets import digit_targets

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 220, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}


def test_contrastive_loss_targets() -> None:
    img = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(np.log(10.0))
    assert float(contrastive_loss(img, img, scale)) < float(contrastive_loss(img, img.flip(0), scale))
    # with two images sharing one text, only that text's column counts as positive for both
    txt = img[[0, 2, 3]]
    pos = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.bool)
    loss = contrastive_loss(img, txt, scale, pos)
    assert torch.isfinite(loss) and loss > 0


def test_text_tower_learns_colour_words(tmp_path: Path) -> None:
    """Coloured squares with colour-word captions: a few steps make colour retrieval near perfect with the trained
    wording and far above chance with another."""
    tok_dir = tmp_path / "tok"
    build_clip_tokenizer(
        tok_dir, [f"a {c} square" for c in COLOURS] * 3 + [f"a photo of something {c}" for c in COLOURS]
    )
    path = save_random_clip(tmp_path / "clip", size="tiny-vit", seed=0, tokenizer_dir=tok_dir)
    clip = load_clip(path, image_size=(32, 32), train_text=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    names = list(COLOURS)
    rgb = torch.tensor([COLOURS[n] for n in names], dtype=torch.float32) / 255.0

    def images(labels: np.ndarray) -> torch.Tensor:
        base = rgb[torch.as_tensor(labels)].view(-1, 3, 1, 1).expand(-1, 3, 32, 32)
        return (base + 0.08 * torch.randn(len(labels), 3, 32, 32) - 0.45) / 0.27

    logit_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
    params = torch.nn.ModuleDict({"image": clip.image, "text": clip.text})
    params.register_parameter("logit_scale", logit_scale)
    opt = build_optimizer(params, PretrainConfig(lr=5e-4, weight_decay=0.0))
    texts = [f"a {n} square" for n in names]
    tokens = clip.text.tokenize(texts)
    losses = []
    for _ in range(30):
        labels = rng.integers(len(names), size=18)
        present = sorted(set(labels.tolist()))
        pos = torch.tensor([[lab == p for p in present] for lab in labels])
        ids, mask = tokens["input_ids"][present], tokens["attention_mask"][present]
        losses.append(clip_train_step(clip.image, clip.text, logit_scale, opt, images(labels), ids, mask, pos))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    clip.image.eval()
    labels = np.arange(60) % len(names)
    with torch.no_grad():
        feats = torch.nn.functional.normalize(clip.image.encode_image(images(labels)), dim=-1)
    trained = clip.text.encode(texts)
    accuracy = float(((feats @ trained.T).argmax(1).numpy() == labels).mean())
    assert accuracy >= 0.9, accuracy
    # another wording than training: 4 of 6 colours in fp32 (all 6 under bf16 autocast), chance is 1 in 6
    prompts = clip.text.encode([f"a photo of something {n}" for n in names])
    accuracy = float(((feats @ prompts.T).argmax(1).numpy() == labels).mean())
    assert accuracy >= 0.5, accuracy


SMALL = [
    "--batch-size",
    "8",
    "--number-batch",
    "4",
    "--identities",
    "8",
    "--crops",
    "2",
    "--heldout",
    "8",
    "--number-crops",
    "16",
]


def test_pretrain_cli_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny-clip"
    argv = ["pretrain-clip", "--out", str(out), "--steps", "3", "--seed", "3", *SMALL]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "zero-shot attribute retrieval" in printed and "chance" in printed and "number" in printed
    report = json.loads((out / "pretrain_report.json").read_text())
    assert report["steps"] == 3 and report["train_identities"] == 16 and report["heldout_identities"] == 16
    assert report["stem_steps"] == 0 and report["crops_seen"] == 3 * 12 and report["config"]["number_batch"] == 4
    assert report["zero_shot"]["attributes"]["number"]["crops"] == 8  # 8 sports identities, one back view each
    assert [p["step"] for p in report["curve"]] == [3]
    with pytest.raises(SystemExit):
        cli_main(["pretrain-clip", "--out", str(tmp_path / "x"), "--caption-mix", "1", "1"])
    zs = report["zero_shot"]["attributes"]
    assert {"uniform", "hair", "shoes", "socks", "number"} <= set(zs)
    assert all(0.0 <= r["accuracy"] <= 1.0 and 0 < r["chance"] < 1 for r in zs.values())
    assert np.isfinite(report["loss_last10"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "tiny-clip" and manifest["seed"] == 3 and "model.safetensors" in manifest["sha256"]
    assert manifest["command"].startswith(
        f"cgclip pretrain-clip --out {out} --arch tiny-cnn --steps 3 --seed 3 --batch-size 8"
    )
    clip = load_clip(out, image_size=(128, 64))
    assert clip.image(torch.zeros(1, 3, 128, 64)).shape == (1, 33, 192)  # stride-16 stem: 8x4 tokens + CLS
    assert "--joint-digit-weight 1 " in manifest["command"]
    assert clip.text.encode(["a red jersey with the number 7"]).shape == (1, 256)
    # the same output again is refused unless --overwrite
    assert cli_main(argv) == 2
    assert "not empty" in capsys.readouterr().err


def test_interrupted_pretraining_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run (the conv-stem tower, with a stem phase) stopped after its first saved state continues from it and ends
    as an uninterrupted run of the same recipe would in steps and curve; the work folder is gone afterwards."""
    import cgclip.pretrain.run as pc

    cfg = PretrainConfig(
        architecture="tiny",
        steps=3,
        stem_steps=1,
        batch_size=8,
        number_batch=4,
        number_crops=8,
        train_identities_per_kind=8,
        crops_per_identity=2,
        heldout_identities_per_kind=4,
        checkpoint_every=2,
        joint_digit_weight=1.0,
    )
    real, calls = pc.supervised_step, []

    def stop_at_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pc, "supervised_step", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        pc.pretrain_clip(tmp_path / "out", cfg)
    assert (tmp_path / ".out.resume" / "state.pt").is_file() and not (tmp_path / "out").exists()
    monkeypatch.setattr(pc, "supervised_step", real)
    with pytest.raises(CheckpointError, match="another recipe"):
        pc.pretrain_clip(tmp_path / "out", dataclasses.replace(cfg, lr=1e-3))
    report = pc.pretrain_clip(tmp_path / "out", cfg)
    assert report["steps"] == 3 and report["stem_steps"] == 1 and [p["step"] for p in report["curve"]] == [2, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_time_budget_stops_training(tmp_path: Path, monkeypatch) -> None:
    """With a fake clock that advances 0.5 s per reading, a 1 s budget stops training after a few steps."""
    import time

    import cgclip.pretrain.run as pc

    class FakeClock:
        def __init__(self) -> None:
            self.now = 0.0

        def perf_counter(self) -> float:
            self.now += 0.5
            return self.now

        def __getattr__(self, name: str):
            return getattr(time, name)

    monkeypatch.setattr(pc, "time", FakeClock())
    cfg = PretrainConfig(
        minutes=0.01,
        steps=None,
        stem_steps=0,
        batch_size=8,
        number_batch=4,
        number_crops=8,
        train_identities_per_kind=8,
        crops_per_identity=1,
        heldout_identities_per_kind=4,
        heldout_crops_per_identity=1,
    )
    report = pc.pretrain_clip(tmp_path / "budget", cfg)
    assert 1 <= report["steps"] <= 4


def test_sample_batch_takes_whole_groups() -> None:
    from cgclip.pretrain.data import group_index, pretrain_identities, sample_batch

    ids = pretrain_identities(40, seed=0, part="train")
    groups = group_index(ids)
    assert sum(len(g) for g in groups) == len(ids) and all(len({ids[k].uniform for k in g}) == 1 for g in groups)
    rng = np.random.default_rng(0)
    for fraction in (0.0, 0.5, 1.0):
        chosen = sample_batch(rng, groups, len(ids), 32, fraction)
        assert len(chosen) == len(set(chosen.tolist())) == 32
        full = [g for g in groups if set(g.tolist()) <= set(chosen.tolist())]
        assert sum(len(g) for g in full) >= int(32 * fraction) - 8


def test_pool_views_and_number_phrases() -> None:
    """Crops cycle through the four views (back views count as showing the number); numbers are trained on a pool of
    back views wearing random numbers, not through identity phrases."""
    from cgclip.pretrain.data import (
        identity_captions,
        number_phrases,
        pretrain_identities,
        render_number_pool,
        render_pool,
    )

    idents = pretrain_identities(3, 0, "heldout")
    crops, owner, legible = render_pool(idents, 4, 0)
    assert crops.shape == (len(idents) * 4, 128, 64, 3) and owner.tolist() == np.repeat(np.arange(6), 4).tolist()
    assert [int(legible[owner == k].sum()) for k in range(len(idents))] == [1] * len(idents)  # one back view each
    sports = [i for i in idents if i.number][0]
    assert not any(f"number {sports.number}" in c for c in identity_captions(sports, 3, seed=0)["phrase"])
    assert all("23" in p for p in number_phrases("23"))
    crops, numbers, shown = render_number_pool(idents, 5, seed=0)
    assert crops.shape == (5, 128, 64, 3) and all(1 <= int(n) <= 99 for n in numbers)
    assert all(idents[int(k)].number for k in shown)  # each crop shows a numbered person (who keeps their look)
    assert render_number_pool([i for i in idents if not i.number], 5, seed=0)[0].shape[0] == 0


def test_zero_shot_scores_number_on_legible_crops_only() -> None:
    """With a legibility mask the number is scored on those crops only; other attributes on every crop."""
    from cgclip.pretrain.data import pretrain_identities, render_pool
    from cgclip.pretrain.zero_shot import zero_shot_attributes

    idents = pretrain_identities(4, 0, "heldout")
    crops, owner, legible = render_pool(idents, 4, 0)

    class Fixed(torch.nn.Module):
        embed_dim = 8

        def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
            return torch.ones(len(pixels), 8)

    class Text(torch.nn.Module):
        def encode(self, texts: list[str]) -> torch.Tensor:
            return torch.nn.functional.normalize(torch.randn(len(texts), 8), dim=-1)

    numbered = sum(1 for i in idents if i.number)
    masked = zero_shot_attributes(Fixed(), Text(), idents, crops, owner, legible)["attributes"]
    plain = zero_shot_attributes(Fixed(), Text(), idents, crops, owner)["attributes"]
    assert masked["number"]["crops"] == numbered and plain["number"]["crops"] == 4 * numbered
    assert masked["uniform"]["crops"] == plain["uniform"]["crops"] == len(crops)


def test_step_batch_value_digits_name_the_number_texts() -> None:
    """The digit targets of a step's number value texts are those of the numbers the texts name, in order; the
    joint digit head ignores unlabelled rows and its loss falls when it is trained on both kinds of rows."""
    from types import SimpleNamespace

    from cgclip.pretrain.batches import BatchMaker
    from cgclip.pretrain.data import (
        group_index,
        identity_captions,
        pretrain_identities,
        render_number_pool,
        render_pool,
    )
    from cgclip.pretrain.targets import JointDigitHead

    idents = pretrain_identities(4, 0, "train")
    pool, owner, legible = render_pool(idents, 1, 0)
    numbers = render_number_pool(idents, 6, 0)
    per = [identity_captions(i, 2, seed=0) for i in idents]
    captions = {kind: [c[kind] for c in per] for kind in ("long", "sentence", "phrase")}
    texts: dict[str, int] = {}

    def tokenize(t: str) -> list[int]:
        return [texts.setdefault(t, len(texts))]

    cfg = SimpleNamespace(batch_size=4, number_batch=6, group_fraction=0.5, max_values=3, caption_mix=(1, 1, 1))
    maker = BatchMaker(
        np.random.default_rng(0), idents, pool, owner, legible, numbers, captions, tokenize, 0, cfg, group_index(idents)
    )
    batch = maker.next()
    by_id = {v: t for t, v in texts.items()}
    named = [by_id[int(i)] for i in batch.value_ids[batch.value_slices["number"], 0]]
    digits = [re.search(r"\d+", t).group() for t in named]
    want_tens, want_ones = digit_targets(digits)
    assert batch.value_digits["tens"].tolist() == want_tens.tolist()
    assert batch.value_digits["ones"].tolist() == want_ones.tolist()
    assert len(batch.stem_targets["ones"]) == len(batch.pixels)

    torch.manual_seed(0)
    head = JointDigitHead(8)
    emb = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    tens, ones = torch.tensor([2, 10, -1, 4, 1, 10]), torch.tensor([3, 7, -1, 0, 9, 5])
    keep = [0, 1, 3, 4, 5]
    with torch.no_grad():
        assert float(head.loss(emb, tens, ones)) == pytest.approx(float(head.loss(emb[keep], tens[keep], ones[keep])))
        none = -torch.ones(6, dtype=torch.long)
        assert float(head.loss(emb, none, none)) == 0.0
        first = float(head.loss(emb, tens, ones))
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        loss = head.loss(emb, tens, ones)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first
