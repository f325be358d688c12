"""Zero-shot attribute retrieval: does a CLIP pick the right attribute value for a crop among all values' prompts?

For each attribute of :data:`cgclip.pretrain.data.PROMPTS` (uniform, jersey number, hair, shoes, socks) the
candidate set is every distinct value of that attribute among the evaluated identities; each value becomes one prompt
("a photo of a person wearing red football boots."), and a crop is correct when its image embedding is most similar
to the prompt of its identity's true value. Chance is 1 / number of candidates. The jersey number is scored only on
crops where it is legible (back views) when the caller says which those are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cgclip.captions.templates import with_article
from cgclip.clip.backbone import ClipImageEncoder, ClipTextEncoder
from cgclip.clip.preprocess import to_pixels
from cgclip.pretrain.data import PROMPTS, prompt_sets
from cgclip.runtime import autocast as precision_autocast


def attribute_prompt(attr: str, value: str) -> str:
    """The zero-shot prompt of one attribute value."""
    return PROMPTS[attr].format(value if attr == "number" else with_article(value))


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (the CPU for a module without parameters)."""
    param = next(iter(module.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def image_features(
    image: ClipImageEncoder, crops: np.ndarray, batch_size: int = 256, autocast: bool = True, precision: str = "auto"
) -> torch.Tensor:
    """L2-normalised float32 CLIP image embeddings of uint8 crops ``[N, H, W, 3]``, on the encoder's device, under
    ``precision`` (:mod:`cgclip.runtime`; fp32 without ``autocast``)."""
    was_training = image.training
    image.eval()
    feats = []
    device = module_device(image)
    for start in range(0, len(crops), batch_size):
        pixels = to_pixels(crops[start : start + batch_size]).to(device)
        with precision_autocast(device, precision if autocast else "fp32"):
            emb = image.encode_image(pixels)
        feats.append(torch.nn.functional.normalize(emb.float(), dim=-1))
    image.train(was_training)
    return torch.cat(feats) if feats else torch.zeros(0, image.embed_dim)


@torch.no_grad()
def zero_shot_attributes(
    image: ClipImageEncoder,
    text: ClipTextEncoder,
    identities: Sequence[Any],
    crops: np.ndarray,
    owner: np.ndarray,
    number_legible: np.ndarray | None = None,
    precision: str = "auto",
) -> dict[str, Any]:
    """Per-attribute zero-shot accuracy on ``crops`` (``owner[i]`` indexes ``identities``).

    ``number_legible[i]`` (optional) marks the crops whose jersey number is legible; the number is scored on those
    only. Images are encoded under ``precision`` on the encoder's device.

    Returns ``{"attributes": {attr: {"accuracy", "chance", "candidates", "crops"}}, "mean_accuracy",
    "mean_chance", "image_mean_cosine"}`` (means over attributes; the last is the mean pairwise cosine of the image
    embeddings, near 1 when training collapsed to one direction).
    """
    was_training = text.training
    text.eval()
    feats = image_features(image, crops, precision=precision)
    results: dict[str, dict[str, float]] = {}
    for attr, values in prompt_sets(identities).items():
        if len(values) < 2:
            continue
        index = {v: k for k, v in enumerate(values)}
        rows = [
            n
            for n, o in enumerate(owner)
            if getattr(identities[int(o)], attr) and (attr != "number" or number_legible is None or number_legible[n])
        ]
        if not rows:
            continue
        truth = torch.tensor([index[getattr(identities[int(owner[n])], attr)] for n in rows])
        prompts = text.encode([attribute_prompt(attr, v) for v in values]).float()
        pred = (feats[rows] @ prompts.to(feats.device).T).argmax(dim=1).cpu()
        results[attr] = {
            "accuracy": float((pred == truth).float().mean()),
            "chance": 1.0 / len(values),
            "candidates": len(values),
            "crops": len(rows),
        }
    text.train(was_training)
    accs = [r["accuracy"] for r in results.values()]
    chances = [r["chance"] for r in results.values()]
    spread = float((feats @ feats.T).mean()) if len(feats) else 0.0
    return {
        "attributes": results,
        "mean_accuracy": float(np.mean(accs)) if accs else 0.0,
        "mean_chance": float(np.mean(chances)) if chances else 0.0,
        "image_mean_cosine": spread,
    }
