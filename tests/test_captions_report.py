"""Caption-quality report (collisions by text and by CLIP features, missing/unknown identities) and the CLIP
attribute captioner."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch

from captions_server import COLOURS, make_image_folder
from cgclip.captions.attribute_captioner import AttributeCaptioner, AttributeSet, caption_attributes, compose_caption
from cgclip.captions.mllm import frames_from_folder
from cgclip.captions.report import caption_report, jaccard_pairs, normalise
from cgclip.captions.store import CaptionRecord, CaptionStore
from cgclip.cli import main
from cgclip.errors import CgclipError
from fixtures_clip import tiny_clip


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def make_store(tmp_path) -> CaptionStore:
    caps = {
        "A": ["A man in a red shirt.", "A man with short hair."],
        "B": ["a man in a red shirt.", "A MAN WITH SHORT HAIR."],  # identical after normalisation
        "C": ["A player in a blue jersey with number 23, white shoes, black socks and short hair."],
        "D": ["A player in a blue jersey with number 24, white shoes, black socks and short hair."],
        "E": ["A woman with long blond hair in a green dress carrying a bag."],
    }
    store = CaptionStore(tmp_path / "caps.jsonl")
    store.add(
        [
            CaptionRecord(i, t, "mllm", frame=f"{i}/{k}.jpg", item=f"{i}/{k}.jpg")
            for i, texts in caps.items()
            for k, t in enumerate(texts)
        ]
    )
    return store


def test_normalise_keeps_numbers():
    assert normalise("A man, #23 (tall)!  in_red") == "a man 23 tall in red"


def test_report_finds_identical_and_near_identical(tmp_path):
    report = caption_report(
        make_store(tmp_path), expected=["A", "B", "C", "D", "E", "F"], known=list("ABCDEF"), jaccard_threshold=0.85
    )
    assert report["identical_groups"] == [["A", "B"]]
    assert [(p["a"], p["b"]) for p in report["near_identical_pairs"]["pairs"]] == [("C", "D")]
    assert report["collision_groups"] == [["A", "B"], ["C", "D"]]
    assert report["collision_fraction"] == 0.8
    assert report["missing_identities"] == ["F"] and report["unknown_identities"] == []
    assert report["per_identity"]["A"] == {"captions": 2, "by_source": {"mllm": 2}}
    assert report["identities_sharing_a_caption"] == ["A", "B"]
    assert "80% of identities (4 of 5)" in report["recommendation"] and "caption_idtext" in report["recommendation"]
    assert "1 dataset identities have no captions" in report["recommendation"]
    strict = caption_report(make_store(tmp_path), expected=["A"], known=["A", "B"], jaccard_threshold=0.99)
    assert strict["collision_groups"] == [["A", "B"]] and strict["unknown_identities"] == ["C", "D", "E"]


def test_jaccard_pairs_match_brute_force():
    rng = random.Random(0)
    sets = [set(rng.sample(range(30), rng.randint(1, 8))) for _ in range(60)]
    sets = [{str(x) for x in s} for s in sets] + [{"1", "2"}, {"1", "2"}]
    fast = {(i, j) for i, j, _ in jaccard_pairs(sets, 0.5, chunk=7)}
    slow = {
        (i, j)
        for i, j in itertools.combinations(range(len(sets)), 2)
        if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.5
    }
    assert fast == slow and (60, 61) in fast


def test_report_with_clip_and_cli(tmp_path, clip_dir, capsys):
    from cgclip.clip.features import ClipFeatures

    store = make_store(tmp_path)
    encoder = ClipFeatures(clip_dir)
    report = caption_report(store, text_encoder=encoder, cosine_threshold=0.999)
    pairs = {(p["a"], p["b"]) for p in report["clip"]["pairs"]}
    assert ("A", "B") in pairs  # identical normalised text → same features (the tokenizer lower-cases)
    assert report["clip"]["checkpoint"] == str(clip_dir)
    none = caption_report(store, text_encoder=encoder, cosine_threshold=1.01)
    assert none["clip"]["num_pairs"] == 0
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "identities.csv").write_text(
        "identity_id,split,gender\nA,train,man\nB,train,man\nZ,train,woman\nC,val,man\n"
    )
    out = tmp_path / "report.json"
    assert (
        main(
            [
                "caption",
                "report",
                "--captions",
                str(store.path),
                "--dataset",
                str(tmp_path / "ds"),
                "--clip",
                str(clip_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "colliding: A, B" in printed and "recommendation:" in printed
    data = json.loads(out.read_text())
    assert data["missing_identities"] == ["Z"] and data["unknown_identities"] == ["D", "E"]
    assert main(["caption", "report", "--captions", str(tmp_path / "nope.jsonl")]) == 2


class ColourEncoder:
    """A fake CLIP: a text is the one-hot of the colour word it names; an image is the one-hot of its colour."""

    logit_scale = 100.0
    names = list(COLOURS)

    def _onehot(self, idx: int) -> torch.Tensor:
        v = torch.full((len(self.names) + 1,), 0.01)
        v[idx] = 1.0
        return torch.nn.functional.normalize(v, dim=0)

    def encode_texts(self, texts):
        return torch.stack(
            [self._onehot(next((i for i, n in enumerate(self.names) if n in t), len(self.names))) for t in texts]
        )

    def encode_images(self, images):
        out = []
        for im in images:
            rgb = im.convert("RGB").getpixel((0, 0))
            out.append(
                self._onehot(
                    min(
                        range(len(self.names)),
                        key=lambda i: sum((a - b) ** 2 for a, b in zip(COLOURS[self.names[i]], rgb)),
                    )
                )
            )
        return torch.stack(out)


def test_attribute_captioner_picks_most_likely_values(tmp_path):
    img = make_image_folder(tmp_path / "img", identities=4, tracklets=2, frames=3, seed=2)
    colours = list(COLOURS)
    attrs = [
        AttributeSet("upper", tuple(colours), ("a person wearing a {v} shirt.",)),
        AttributeSet("shoes", tuple(colours), ("{v} shoes",)),
    ]
    captioner = AttributeCaptioner(ColourEncoder(), attrs)
    store = CaptionStore(tmp_path / "caps.jsonl")
    items = frames_from_folder(img, 2)
    result = caption_attributes(items, captioner, store, model_name="fake")
    assert result["captioned"] == 4
    for rec in CaptionStore(store.path).captions:
        path = next((img / rec.identity).rglob("*.jpg"))
        from PIL import Image

        truth = ColourEncoder.names[int(ColourEncoder().encode_images([Image.open(path)])[0].argmax())]
        assert rec.text == f"A person is wearing a {truth} top, with {truth} shoes." and rec.source == "attribute"
        assert result["scores"][rec.identity]["upper"]["probability"] > 0.9
    assert caption_attributes(items, captioner, CaptionStore(store.path), model_name="fake")["skipped"] == 4
    with pytest.raises(CgclipError, match="made with fake, not other"):  # never mixed with another captioner's
        caption_attributes(items, captioner, CaptionStore(store.path), model_name="other")


def test_compose_caption_and_cli_attributes(tmp_path, clip_dir):
    assert compose_caption(
        {
            "gender": "man",
            "hair": "short black hair",
            "upper": "red",
            "lower": "white",
            "shoes": "black",
            "number": "23",
        }
    ) == (
        "A man with short black hair is wearing a red top and white shorts or pants, with black shoes. "
        "The jersey number is 23."
    )
    assert compose_caption({}) == "A person."
    img = make_image_folder(tmp_path / "img", identities=2, tracklets=1, frames=2)
    out = tmp_path / "caps.jsonl"
    assert (
        main(
            [
                "caption",
                "attributes",
                "--images",
                str(img),
                "--clip",
                str(clip_dir),
                "--out",
                str(out),
                "--scores-out",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    texts = CaptionStore(out).by_identity()
    assert sorted(texts) == ["id0000", "id0001"] and all(t[0].startswith("A ") for t in texts.values())
    assert set(json.loads((tmp_path / "s.json").read_text())["id0000"]) == {
        "gender",
        "hair",
        "upper",
        "lower",
        "shoes",
        "number",
    }
    assert (
        main(
            [
                "caption",
                "attributes",
                "--images",
                str(img),
                "--clip",
                str(clip_dir),
                "--out",
                str(out),
                "--attributes",
                "hats",
            ]
        )
        == 2
    )
