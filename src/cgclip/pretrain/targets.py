"""Attribute targets of the tiny CLIP's pretraining: what grounds number, hair, shoes, socks, uniform and accessories.

Contrastive image–caption batches alone ground fine detail slowly (docs/RESULTS.md). Two supervised signals run next
to them, both on the synthetic crops whose attributes are known:

* **Text classifiers** (:func:`attribute_text_loss`): for each attribute, the CLIP image embedding is classified
  among text embeddings of that attribute's values ("green football boots", "number 23", ...), with CLIP's logit
  scale. The classifier weights *are* the text tower's output, so this trains both towers toward exactly the
  geometry zero-shot retrieval needs; each step draws one training wording per value (never the zero-shot prompts of
  :data:`cgclip.pretrain.data.PROMPTS`) and at most ``max_values`` values per attribute (those in the batch
  first).
* **Stem heads** (:class:`StemHeads`): linear heads on the global max-pool of the conv stem's last ReLU features
  (:mod:`cgclip.clip.conv_stem`) classify the tens and ones digit. They train the stem alone first (the stem
  phase) and go on next to the CLIP losses, while the transformer above learns to route what the stem found into
  its CLS token. They are discarded after pretraining (not part of the saved CLIP).
* **A joint digit head** (:class:`JointDigitHead`): one linear digit head in CLIP's joint embedding space, shared by
  both towers — it classifies the digits of the image embeddings of crops with a legible number *and* of the text
  embeddings of the number wordings. With both towers random the text-classifier loss over numbers does not start
  to learn (its loss stays at ln 99, docs/RESULTS.md); the shared head anchors the image embedding of a crop
  showing 23 and the text embedding of "number 23" to the same directions, which bootstraps the binding. Also
  discarded after pretraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgclip.captions.templates import with_article
from cgclip.pretrain.data import number_phrases
from cgclip.synth.identities import Identity

#: Attributes trained with supervision, in head order; the number is scored only where it is legible.
ATTRIBUTES = ("uniform", "hair", "shoes", "socks", "accessories", "number")


def value_wordings(attr: str, value: str) -> list[str]:
    """Training wordings of one attribute value (other wordings than the zero-shot prompts)."""
    if attr == "number":
        return number_phrases(value)
    if attr in ("hair", "accessories"):
        return [value, f"with {value}", f"someone with {value}"]
    return [value, f"in {with_article(value)}", f"dressed in {with_article(value)}"]


@dataclass
class AttributeIndex:
    """The training values of each attribute and the label of every identity (-1: the identity has none)."""

    values: dict[str, list[str]]
    labels: dict[str, np.ndarray]

    @classmethod
    def build(cls, identities: Sequence[Identity]) -> AttributeIndex:
        """Values sorted per attribute, labels per identity."""
        values = {a: sorted({getattr(i, a) for i in identities if getattr(i, a)}) for a in ATTRIBUTES}
        labels = {}
        for attr, vals in values.items():
            index = {v: k for k, v in enumerate(vals)}
            labels[attr] = np.asarray([index.get(getattr(i, attr), -1) for i in identities], dtype=np.int64)
        return cls(values, labels)

    def number_label(self, number: str) -> int:
        """Index of a jersey number among the number values (-1 if unknown)."""
        try:
            return self.values["number"].index(number)
        except ValueError:
            return -1


def sample_values(rng: np.random.Generator, n_values: int, present: np.ndarray, max_values: int) -> np.ndarray:
    """Value indices to classify among: every value ``present`` in the batch, then random others, ``max_values`` in
    all (or every value when there are fewer)."""
    present = np.unique(present[present >= 0])
    if n_values <= max_values:
        return np.arange(n_values)
    others = np.setdiff1d(np.arange(n_values), present)
    extra = rng.choice(others, size=max(0, min(len(others), max_values - len(present))), replace=False)
    return np.concatenate([present, extra])


def attribute_text_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of L2-normalised image embeddings ``[B, d]`` over L2-normalised value texts ``[V, d]`` (rows
    with label -1 are ignored); 0 when no row has a label."""
    keep = labels >= 0
    if not bool(keep.any()):
        return image_emb.new_zeros(())
    logits = logit_scale.exp() * image_emb[keep].float() @ text_emb.float().T
    return F.cross_entropy(logits, labels[keep])


class StemHeads(nn.Module):
    """Linear heads on the global max-pool of a stem's ``[B, C, h, w]`` ReLU features: the tens digit (10 = a
    one-digit number) and the ones digit.

    Digits only: with heads for the colour attributes on the same pooled features the stem learnt no digits in 200
    steps (those heads drive the shared features; the colours are learnt through the CLIP losses anyway), with the
    digit heads alone it reads 29 % of ones digits after 200 steps and climbing.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"tens": nn.Linear(channels, 11), "ones": nn.Linear(channels, 10)})

    def loss(self, grid: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of the digit heads over the crops whose ``targets`` (``[B]``, -1 = no legible number)
        have a label; 0 when none has."""
        pooled = grid.float().amax(dim=(2, 3))
        losses = []
        for name, head in self.heads.items():
            target = targets[name]
            keep = target >= 0
            if bool(keep.any()):
                losses.append(F.cross_entropy(head(pooled[keep]), target[keep]))
        return torch.stack(losses).mean() if losses else grid.new_zeros(()).float()


class JointDigitHead(nn.Module):
    """A linear tens-digit (10 = none) and ones-digit head on L2-normalised ``[N, d]`` embeddings of either tower
    (logits scaled by 10, the embeddings being unit vectors)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, 21)

    def loss(self, emb: torch.Tensor, tens: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of both digits over the rows with a label (``tens`` / ``ones`` -1 = none); 0 if none."""
        keep = ones >= 0
        if not bool(keep.any()):
            return emb.new_zeros(()).float()
        logits = 10.0 * self.head(emb[keep].float())
        return (F.cross_entropy(logits[:, :11], tens[keep]) + F.cross_entropy(logits[:, 11:], ones[keep])) / 2


def digit_targets(numbers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tens digit (10 = a one-digit number) and ones digit of each number; -1 for an empty number."""
    tens = [(int(n) // 10 if len(n) == 2 else 10) if n else -1 for n in numbers]
    ones = [int(n) % 10 if n else -1 for n in numbers]
    return torch.tensor(tens, dtype=torch.long), torch.tensor(ones, dtype=torch.long)
