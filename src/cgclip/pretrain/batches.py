"""One training step's inputs for the tiny CLIP's pretraining: crops, captions, attribute labels and value texts.

A step holds ``batch_size`` identity crops (distinct identities, about ``group_fraction`` of them as whole teams /
dance groups: hard negatives that share a uniform) with one caption each, of one kind (whole paraphrase, single
sentence or attribute phrase, drawn by ``caption_mix``), and ``number_batch`` back-view crops wearing numbers drawn
at random (:func:`cgclip.pretrain.data.render_number_pool`). Every crop carries its attribute labels
(:class:`cgclip.pretrain.targets.AttributeIndex`; the number only where it is legible), and the step draws
the value texts its attributes are classified among.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cgclip.clip.preprocess import to_pixels
from cgclip.pretrain.data import sample_batch
from cgclip.pretrain.targets import ATTRIBUTES, AttributeIndex, digit_targets, sample_values, value_wordings

CAPTION_KINDS = ("long", "sentence", "phrase")


def batch_tokens(token_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token lists to one ``[n, width]`` id tensor and its attention mask."""
    width = max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, toks in enumerate(token_lists):
        ids[row, : len(toks)] = torch.tensor(toks)
        mask[row, : len(toks)] = 1
    return ids, mask


@dataclass
class StepBatch:
    """Inputs of one step: pixels ``[B_id + B_num, 3, H, W]`` (identity crops first), the caption tokens and
    positives of the identity crops, per-attribute labels into the step's value texts, the digit targets of the
    crops (``tens``, ``ones``; -1 where no number is legible) and of the step's number value texts, in their order
    (``value_digits``)."""

    pixels: torch.Tensor
    caption_ids: torch.Tensor
    caption_mask: torch.Tensor
    positives: torch.Tensor
    value_ids: torch.Tensor
    value_mask: torch.Tensor
    value_slices: dict[str, slice]
    value_labels: dict[str, torch.Tensor]
    stem_targets: dict[str, torch.Tensor]
    kind: str
    value_digits: dict[str, torch.Tensor]


class BatchMaker:
    """Draws :class:`StepBatch` es from the rendered pools with its own random generator."""

    def __init__(
        self,
        rng: np.random.Generator,
        identities: Sequence[Any],
        pool: np.ndarray,
        owner: np.ndarray,
        legible: np.ndarray,
        number_pool: tuple[np.ndarray, list[str], np.ndarray],
        captions: dict[str, list[list[str]]],
        tokenize: Any,
        pad_id: int,
        cfg: Any,
        groups: Sequence[np.ndarray],
    ) -> None:
        self.rng, self.identities, self.cfg, self.groups, self.pad_id = rng, identities, cfg, groups, pad_id
        self.pool, self.legible = pool, legible
        self.crops_of = [np.flatnonzero(owner == k) for k in range(len(identities))]
        self.number_crops, numbers, self.number_owner = number_pool
        self.index = AttributeIndex.build(identities)
        self.number_labels = np.asarray([self.index.number_label(n) for n in numbers], dtype=np.int64)
        self.numbers = list(numbers)
        self.captions = captions
        self.caption_sets = [{t for kind in CAPTION_KINDS for t in captions[kind][k]} for k in range(len(identities))]
        self.tokens = {kind: [[tokenize(c) for c in caps] for caps in captions[kind]] for kind in CAPTION_KINDS}
        self.wordings = {a: [value_wordings(a, v) for v in vals] for a, vals in self.index.values.items()}
        self.value_tokens = {t: tokenize(t) for ws in self.wordings.values() for w in ws for t in w}
        mix = np.asarray(cfg.caption_mix, dtype=float)
        self.mix = mix / mix.sum()

    def _identity_part(self) -> tuple[np.ndarray, np.ndarray, str, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        cfg, rng = self.cfg, self.rng
        kind = CAPTION_KINDS[int(rng.choice(len(CAPTION_KINDS), p=self.mix))]
        batch = min(cfg.batch_size, len(self.identities))
        chosen = sample_batch(rng, self.groups, len(self.identities), batch, cfg.group_fraction)
        crop_idx = np.asarray([int(rng.choice(self.crops_of[k])) for k in chosen])
        cap_idx = [int(rng.integers(len(self.captions[kind][k]))) for k in chosen]
        texts = [self.captions[kind][k][c] for k, c in zip(chosen, cap_idx)]
        unique = list(dict.fromkeys(texts))  # encode each distinct text once
        first = {t: (k, c) for t, k, c in zip(texts, chosen, cap_idx)}
        positives = torch.tensor([[t in self.caption_sets[k] for t in unique] for k in chosen])
        tokens = batch_tokens([self.tokens[kind][first[t][0]][first[t][1]] for t in unique], self.pad_id)
        return chosen, crop_idx, kind, tokens, positives

    def _labels(self, chosen: np.ndarray, crop_idx: np.ndarray, num_idx: np.ndarray) -> dict[str, np.ndarray]:
        owners = np.concatenate([chosen, self.number_owner[num_idx]]).astype(np.int64)
        labels = {a: self.index.labels[a][owners] for a in ATTRIBUTES if a != "number"}
        id_numbers = np.where(self.legible[crop_idx], self.index.labels["number"][chosen], -1)
        labels["number"] = np.concatenate([id_numbers, self.number_labels[num_idx]])
        return labels

    def _value_texts(
        self, labels: dict[str, np.ndarray]
    ) -> tuple[list[list[int]], dict[str, slice], dict[str, torch.Tensor], list[str]]:
        tokens: list[list[int]] = []
        slices, remapped, numbers = {}, {}, []
        for attr in ATTRIBUTES:
            n_values = len(self.index.values[attr])
            if n_values < 2:
                continue
            chosen = sample_values(self.rng, n_values, labels[attr], self.cfg.max_values)
            position = np.full(n_values, -1, dtype=np.int64)
            position[chosen] = np.arange(len(chosen))
            lab = labels[attr]
            remapped[attr] = torch.from_numpy(np.where(lab >= 0, position[np.maximum(lab, 0)], -1))
            slices[attr] = slice(len(tokens), len(tokens) + len(chosen))
            if attr == "number":
                numbers = [self.index.values[attr][int(v)] for v in chosen]
            for v in chosen:
                wordings = self.wordings[attr][int(v)]
                tokens.append(self.value_tokens[wordings[int(self.rng.integers(len(wordings)))]])
        return tokens, slices, remapped, numbers

    def next(self) -> StepBatch:
        """The next step's inputs."""
        chosen, crop_idx, kind, (cap_ids, cap_mask), positives = self._identity_part()
        n_num = min(self.cfg.number_batch, len(self.number_crops))
        num_idx = self.rng.choice(len(self.number_crops), n_num, replace=False) if n_num else np.zeros(0, int)
        labels = self._labels(chosen, crop_idx, num_idx)
        tokens, slices, remapped, value_numbers = self._value_texts(labels)
        value_ids, value_mask = batch_tokens(tokens, self.pad_id)
        crops = np.concatenate([self.pool[crop_idx], self.number_crops[num_idx]]) if n_num else self.pool[crop_idx]
        id_numbers = [self.identities[int(k)].number if self.legible[c] else "" for k, c in zip(chosen, crop_idx)]
        tens, ones = digit_targets(id_numbers + [self.numbers[int(i)] for i in num_idx])
        value_tens, value_ones = digit_targets(value_numbers)
        return StepBatch(
            to_pixels(crops),
            cap_ids,
            cap_mask,
            positives,
            value_ids,
            value_mask,
            slices,
            remapped,
            {"tens": tens, "ones": ones},
            kind,
            {"tens": value_tens, "ones": value_ones},
        )
