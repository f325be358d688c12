"""Attribute captions without an MLLM: CLIP zero-shot scoring of attribute prompt sets on sampled frames.

For each identity, the CLIP image features of its sampled frames are averaged; each attribute (gender, upper and
lower clothing colour, shoes, hair, jersey number) has a list of values, each said through a few prompt templates
whose text features are averaged (prompt ensembling). The most likely value of each attribute (softmax over that
attribute's values, CLIP temperature) goes into a composed caption such as "A man with short black hair is wearing
a red top and white shorts or pants, with black shoes. The jersey number is 23." It is the offline fallback when no
multimodal LLM is available; how good it is depends entirely on the CLIP checkpoint.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from cgclip.captions.mllm import FrameItem
from cgclip.captions.store import CaptionRecord, CaptionStore, FailureRecord

logger = logging.getLogger(__name__)

PROMPT_ID = "clip-attributes-v1"
COLOURS = ("red", "blue", "green", "yellow", "white", "black", "grey", "orange", "purple", "pink", "brown", "navy")


@dataclass(frozen=True)
class AttributeSet:
    """One attribute: its candidate values and the templates (``{v}`` = value) that say them."""

    name: str
    values: tuple[str, ...]
    templates: tuple[str, ...]


DEFAULT_ATTRIBUTES: tuple[AttributeSet, ...] = (
    AttributeSet("gender", ("man", "woman"), ("a photo of a {v}.", "a {v} playing sports.")),
    AttributeSet(
        "hair",
        (
            "short black hair",
            "long black hair",
            "short brown hair",
            "long brown hair",
            "blond hair",
            "red hair",
            "grey hair",
            "a bald head",
        ),
        ("a photo of a person with {v}.",),
    ),
    AttributeSet("upper", COLOURS, ("a person wearing a {v} shirt.", "a person in a {v} top.")),
    AttributeSet("lower", COLOURS, ("a person wearing {v} shorts.", "a person wearing {v} pants.")),
    AttributeSet("shoes", COLOURS, ("a person wearing {v} shoes.", "a photo of {v} sneakers.")),
    AttributeSet(
        "number",
        tuple(str(n) for n in range(100)),
        ("a player wearing jersey number {v}.", "the number {v} printed on a shirt."),
    ),
)


class FeatureEncoder(Protocol):
    """What the captioner needs from CLIP (see :class:`cgclip.clip.features.ClipFeatures`)."""

    logit_scale: float

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor: ...

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor: ...


def compose_caption(values: Mapping[str, str]) -> str:
    """A caption from the chosen attribute values (any may be missing)."""
    text = f"A {values['gender']}" if values.get("gender") else "A person"
    if values.get("hair"):
        text += f" with {values['hair']}"
    clothes = []
    if values.get("upper"):
        clothes.append(f"a {values['upper']} top")
    if values.get("lower"):
        clothes.append(f"{values['lower']} shorts or pants")
    if clothes:
        text += " is wearing " + " and ".join(clothes)
    if values.get("shoes"):
        text += f"{',' if clothes else ''} with {values['shoes']} shoes"
    text += "."
    if values.get("number"):
        text += f" The jersey number is {values['number']}."
    return text


class AttributeCaptioner:
    """Scores attribute prompt sets with a CLIP encoder and composes captions."""

    def __init__(
        self,
        encoder: FeatureEncoder,
        attributes: Sequence[AttributeSet] = DEFAULT_ATTRIBUTES,
        min_confidence: Mapping[str, float] | None = None,
    ) -> None:
        self.encoder = encoder
        self.attributes = tuple(attributes)
        self.min_confidence = dict(min_confidence or {})
        self._text: dict[str, torch.Tensor] = {}
        for attr in self.attributes:
            texts = [t.format(v=v) for v in attr.values for t in attr.templates]
            feats = encoder.encode_texts(texts).float().reshape(len(attr.values), len(attr.templates), -1).mean(1)
            self._text[attr.name] = torch.nn.functional.normalize(feats, dim=-1)

    def score(self, image_feature: torch.Tensor) -> dict[str, dict[str, Any]]:
        """Per attribute the chosen value and its probability for one (mean, normalised) image feature."""
        out = {}
        for attr in self.attributes:
            probs = torch.softmax(self.encoder.logit_scale * (self._text[attr.name] @ image_feature), dim=0)
            best = int(probs.argmax())
            out[attr.name] = {"value": attr.values[best], "probability": round(float(probs[best]), 4)}
        return out

    def caption_identity(self, images: Sequence[Image.Image]) -> tuple[str, dict[str, dict[str, Any]]]:
        """Caption one identity from its frames; returns (caption, scores)."""
        feats = self.encoder.encode_images(images).float().mean(0)
        scores = self.score(torch.nn.functional.normalize(feats, dim=0))
        chosen = {k: s["value"] for k, s in scores.items() if s["probability"] >= self.min_confidence.get(k, 0.0)}
        return compose_caption(chosen), scores


def _subsample(items: list[FrameItem], max_frames: int) -> list[FrameItem]:
    if len(items) <= max_frames:
        return items
    idx = np.linspace(0, len(items) - 1, max_frames).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def caption_attributes(
    items: Sequence[FrameItem],
    captioner: AttributeCaptioner,
    store: CaptionStore,
    *,
    model_name: str,
    max_frames: int = 16,
) -> dict[str, Any]:
    """Write one attribute caption per identity of ``items`` (identities already done are skipped; a store holding
    attribute captions of another ``model_name`` is refused).

    Returns ``{"captioned": n, "skipped": n, "failed": n, "scores": {identity: scores}}``.
    """
    from cgclip.progress import progress

    by_identity: dict[str, list[FrameItem]] = defaultdict(list)
    for it in items:
        by_identity[it.identity].append(it)
    others = sorted({str(r.model) for r in store.captions if r.source == "attribute" and r.model != model_name})
    if others:  # a store's attribute captions come from one captioner: adding another's would mix them silently
        from cgclip.errors import CgclipError

        raise CgclipError(
            f"the store holds attribute captions made with {others[0]}, not {model_name}; write to a new --out, or "
            "pass the --clip that made them",
            path=store.path,
        )
    done = store.done_items("attribute", PROMPT_ID)
    todo = [i for i in by_identity if f"attribute:{i}" not in done]
    result: dict[str, Any] = {"captioned": 0, "skipped": len(by_identity) - len(todo), "failed": 0, "scores": {}}
    store.open_journal()
    try:
        for identity in progress(todo, total=len(todo), desc="attribute captions", unit="identity"):
            images, errors = [], []
            for it in _subsample(by_identity[identity], max_frames):
                try:
                    with Image.open(it.path) as img:
                        images.append(img.convert("RGB"))
                except (OSError, ValueError) as exc:
                    errors.append(f"{it.path}: {exc}")
            item = f"attribute:{identity}"
            if not images:
                store.journal_failure(
                    FailureRecord(
                        task="attribute",
                        item=item,
                        identity=identity,
                        error="no readable frame; " + "; ".join(errors[:2]),
                        model=model_name,
                        prompt_id=PROMPT_ID,
                    )
                )
                result["failed"] += 1
                continue
            caption, scores = captioner.caption_identity(images)
            store.journal_caption(
                CaptionRecord(
                    identity=identity,
                    text=caption,
                    source="attribute",
                    model=model_name,
                    prompt_id=PROMPT_ID,
                    item=item,
                )
            )
            result["scores"][identity] = scores
            result["captioned"] += 1
    finally:
        store.compact()
    return result


def load_attribute_captioner(encoder: FeatureEncoder, attributes: Sequence[str] | None = None) -> AttributeCaptioner:
    """An :class:`AttributeCaptioner` on a CLIP ``encoder`` (:class:`cgclip.clip.features.ClipFeatures` of a
    local checkpoint), limited to ``attributes`` if given."""
    from cgclip.errors import CgclipError

    sets = DEFAULT_ATTRIBUTES
    if attributes is not None:
        known = {a.name for a in DEFAULT_ATTRIBUTES}
        unknown = sorted(set(attributes) - known)
        if unknown:
            raise CgclipError(f"unknown attributes {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
        sets = tuple(a for a in DEFAULT_ATTRIBUTES if a.name in set(attributes))
    return AttributeCaptioner(encoder, sets)
