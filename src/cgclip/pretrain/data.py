"""Image–caption pairs for pretraining the embedded tiny CLIP, from synthetic identities outside every ReID world.

Identities come from :func:`cgclip.synth.identities.sample_identities` with a random stream of their own
(``numpy.random.default_rng([seed, PRETRAIN_STREAM, part])``) and are renamed ``pre-<part>-<kind>-NNNN``, so they are
disjoint from every ReID world's identities by construction. A crop is one person in a given view and a
random walking / dancing pose, at 128×64, in one of two styles (:data:`CROP_STYLES`): ``tight`` (the default) goes
through the synthetic world's camera pipeline and is cut at the person's box, as the ReID datasets' crops are
(:func:`cgclip.synth.crops.render_identity_crops`: scene background, perspective, blur, light, JPEG); ``loose`` (the
recipe of tiny-clip-v3) pastes a person 78-92 % of the crop's height on a plain / gradient / noisy background.

Captions of an identity are its template paraphrases (:mod:`cgclip.captions.paraphrase`) plus short attribute
phrases ("red football boots", "in long red socks", ...). Jersey numbers can also be trained on back-view crops whose
number is re-drawn at random (:func:`render_number_pool`, captioned "number 23"). The
zero-shot evaluation prompts (:data:`PROMPTS`) use other wordings than these training phrases.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from cgclip.captions.paraphrase import paraphrase
from cgclip.captions.templates import with_article
from cgclip.clip.preprocess import to_pixels  # noqa: F401 (re-exported)
from cgclip.pretrain.config import CROP_STYLES  # noqa: F401 (re-exported; declared without torch)
from cgclip.synth.crops import render_identity_crops
from cgclip.synth.identities import KINDS, Identity, sample_identities
from cgclip.synth.person import render_person
from cgclip.synth.poses import DANCE_MOVES, VIEWS, dance_pose, walk_pose

logger = logging.getLogger(__name__)

PRETRAIN_STREAM = 0x50524554  # "PRET": keeps pretraining identities off every world's random stream
IMAGE_SIZE = (128, 64)
#: Zero-shot prompt per attribute ({} = the table value); attributes with an empty value are skipped.
PROMPTS = {
    "uniform": "a photo of a person wearing {}.",
    "number": "a photo of a player whose jersey number is {}.",
    "hair": "a photo of a person who has {}.",
    "shoes": "a photo of a person wearing {}.",
    "socks": "a photo of a person wearing {}.",
}
_BACKGROUNDS = [
    (52, 120, 58),
    (70, 140, 70),
    (176, 120, 72),
    (150, 98, 60),
    (40, 40, 52),
    (90, 90, 100),
    (200, 200, 205),
    (120, 60, 40),
    (30, 50, 90),
    (160, 150, 120),
]


def pretrain_identities(n_per_kind: int, seed: int, part: str) -> list[Identity]:
    """``n_per_kind`` sports and dance identities each, of the pretraining namespace (``part``: train/heldout)."""
    out: list[Identity] = []
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng([int(seed), PRETRAIN_STREAM, 0 if part == "train" else 1, k])
        for i, ident in enumerate(sample_identities(kind, n_per_kind, rng, split=f"pretrain-{part}", group_size=8)):
            out.append(dataclasses.replace(ident, identity_id=f"pre-{part}-{kind}-{i:04d}"))
    return out


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    h, w = size
    base = np.array(_BACKGROUNDS[rng.integers(len(_BACKGROUNDS))], dtype=np.float32)
    base = np.clip(base + rng.normal(0, 18, 3), 0, 255)
    ramp = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * rng.uniform(-25, 25)
    img = base[None, None, :] + ramp + rng.normal(0, rng.uniform(0, 12), (h, w, 3)).astype(np.float32)
    if rng.random() < 0.3:  # a field / floor line
        y = int(rng.integers(h // 2, h))
        img[y : y + 2] = 230
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def render_crop(
    identity: Identity,
    rng: np.random.Generator,
    size: tuple[int, int] = IMAGE_SIZE,
    view: str | None = None,
    style: str = "tight",
) -> np.ndarray:
    """One ``size`` (H, W) RGB uint8 crop of ``identity`` in ``view`` (default: random) and a random pose, framed as
    ``style`` (:data:`CROP_STYLES`)."""
    view = view or VIEWS[rng.integers(len(VIEWS))]
    if style == "tight":
        return np.asarray(render_identity_crops(identity, 1, rng, size=size, view=view)[0], dtype=np.uint8)
    if style != "loose":
        raise ValueError(f"crop style must be one of {', '.join(CROP_STYLES)}, got {style!r}")
    h, w = size
    if identity.scene in ("hip-hop", "ballet", "jazz") and rng.random() < 0.7:
        pose = dance_pose(view, DANCE_MOVES[rng.integers(len(DANCE_MOVES))], float(rng.random()))
    else:
        pose = walk_pose(view, float(rng.random()), float(rng.random()))
    sprite = render_person(identity.look, pose, height_px=h * rng.uniform(0.78, 0.92))
    canvas = _background(rng, size)
    x = int(round(w / 2 - sprite.anchor_x + rng.normal(0, 2.5)))
    y = int(round(h - rng.uniform(2, 8) - sprite.anchor_y))
    canvas.paste(sprite.image, (x, y), sprite.image)
    if rng.random() < 0.4:
        canvas = canvas.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.9))))
    arr = np.asarray(canvas, dtype=np.float32) * rng.uniform(0.75, 1.2) + rng.normal(0, 6, 3)
    return np.clip(arr, 0, 255).astype(np.uint8)


def render_pool(
    identities: Sequence[Identity],
    per_identity: int,
    seed: int,
    size: tuple[int, int] = IMAGE_SIZE,
    style: str = "tight",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_identity`` crops of every identity: uint8 ``[N*per, H, W, 3]``, the identity index of each crop and
    whether its jersey number is legible (back view: the big back number; the chest number of a front view is a few
    pixels tall at 128×64).

    Each identity's crops cycle through the four views from a random start, so 4 crops show every view once.
    """
    rng = np.random.default_rng([int(seed), PRETRAIN_STREAM, 2])
    crops = np.empty((len(identities) * per_identity, size[0], size[1], 3), dtype=np.uint8)
    owner = np.repeat(np.arange(len(identities)), per_identity)
    order = ("back", "left", "front", "right")
    start = rng.integers(len(order), size=len(identities))
    views = [order[(int(start[i]) + j) % len(order)] for i in range(len(identities)) for j in range(per_identity)]
    for n, idx in enumerate(owner):
        crops[n] = render_crop(identities[int(idx)], rng, size, view=views[n], style=style)
    return crops, owner, np.asarray(views) == "back"


def render_number_pool(
    identities: Sequence[Identity], size_n: int, seed: int, size: tuple[int, int] = IMAGE_SIZE, style: str = "tight"
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``size_n`` back-view crops of numbered ``identities``, each wearing a number drawn at random (1–99).

    In the identity pool every number belongs to one person, so a model can map a player's whole look (team, hair,
    skin, shoes) to their number without reading it. Here the number is independent of everything else in the
    crop, so the only way to match "number 23" is to read the digits. Returns the crops, their numbers and the index
    into ``identities`` of the person each crop shows (whose other attributes it keeps).
    """
    numbered = [k for k, i in enumerate(identities) if i.number]
    owner = np.zeros(size_n if numbered else 0, dtype=np.int64)
    if not numbered:
        return np.empty((0, size[0], size[1], 3), dtype=np.uint8), [], owner
    rng = np.random.default_rng([int(seed), PRETRAIN_STREAM, 3])
    crops = np.empty((size_n, size[0], size[1], 3), dtype=np.uint8)
    numbers = [str(n) for n in rng.integers(1, 100, size=size_n)]
    for n in range(size_n):
        owner[n] = numbered[int(rng.integers(len(numbered)))]
        ident = identities[int(owner[n])]
        ident = dataclasses.replace(ident, number=numbers[n], look=dataclasses.replace(ident.look, number=numbers[n]))
        crops[n] = render_crop(ident, rng, size, view="back", style=style)
    return crops, numbers, owner


def number_phrases(number: str) -> list[str]:
    """Short training phrases naming a jersey number (wordings differ from :data:`PROMPTS`)."""
    return [f"number {number}", f"the {number} on the jersey", f"shirt number {number}", f"wearing {number}"]


def attribute_phrases(identity: Identity) -> list[str]:
    """Short training phrases, each naming one attribute other than the number (wordings differ from
    :data:`PROMPTS`)."""
    row = identity.row()
    out = []
    if row["uniform"]:
        out += [row["uniform"], f"dressed in {with_article(row['uniform'])}"]
    for attr in ("hair", "shoes", "socks", "accessories"):
        if row[attr]:
            out += [row[attr], f"{row['gender']} with {row[attr]}"]
    return out


def identity_captions(identity: Identity, n_paraphrases: int = 10, seed: int = 0) -> dict[str, list[str]]:
    """Training captions of ``identity`` by kind.

    ``"long"``: whole paraphrases of its annotation (up to ~70 tokens); ``"sentence"``: their single sentences of at
    most 20 words; ``"phrase"``: short attribute phrases (:func:`attribute_phrases`; numbers are trained apart, on
    :func:`render_number_pool` crops, with :func:`number_phrases`). Short kinds are much cheaper for
    the text tower, and phrases tie one value to one visual cue, which is what makes early training fast.
    """
    long = paraphrase(identity.row(), identity.identity_id, n=n_paraphrases, seed=seed)
    sentences = {
        s.strip() + ("" if s.strip().endswith(".") else ".")
        for p in long
        for s in re.split(r"(?<=\.)\s+", p)
        if 3 <= len(s.split()) <= 20
    }
    return {"long": long, "sentence": sorted(sentences), "phrase": attribute_phrases(identity)}


def prompt_sets(identities: Sequence[Identity]) -> dict[str, list[str]]:
    """Per attribute of :data:`PROMPTS`: the sorted distinct non-empty values among ``identities``."""
    return {attr: sorted({getattr(i, attr) for i in identities if getattr(i, attr)}) for attr in PROMPTS}


def group_index(identities: Sequence[Identity]) -> list[np.ndarray]:
    """Indices of ``identities`` per team / dance group (members share a uniform), in order of first appearance."""
    groups: dict[tuple[str, str], list[int]] = {}
    for k, ident in enumerate(identities):  # group names repeat across kinds; uniforms never do within a kind
        groups.setdefault((ident.group, ident.uniform), []).append(k)
    return [np.asarray(v) for v in groups.values()]


def sample_batch(
    rng: np.random.Generator, groups: Sequence[np.ndarray], n_identities: int, batch: int, group_fraction: float
) -> np.ndarray:
    """``batch`` distinct identity indices: about ``group_fraction`` of them as whole teams / groups (hard negatives:
    same uniform, told apart only by number, hair, shoes, socks, ...), the rest drawn uniformly from the others."""
    chosen: list[int] = []
    want = int(round(batch * group_fraction))
    for g in rng.permutation(len(groups)):
        if len(chosen) + len(groups[g]) > want:
            break
        chosen += groups[g].tolist()
    taken = np.zeros(n_identities, dtype=bool)
    taken[chosen] = True
    rest = rng.choice(np.flatnonzero(~taken), size=min(batch - len(chosen), int((~taken).sum())), replace=False)
    return np.concatenate([np.asarray(chosen, dtype=np.int64), rest.astype(np.int64)])
