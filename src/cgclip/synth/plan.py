"""World sizes and the schedule: which teams / groups exist and who appears in which sequence.

Sports: each split has teams of about ``ceil(people/2) + 3`` players, grouped by sport into leagues of at least two
teams; a sequence is a match between the two least-used teams of a league, showing about ``people/2`` players of each
(the least-used players first). Dance: groups of ``people`` dancers; a sequence shows the whole least-used group.
Choosing the least-used first spreads identities over sequences; the val split is checked to have every identity in at
least two sequences (so every query has a positive under another camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from cgclip.errors import ConfigError
from cgclip.synth import palette as P
from cgclip.synth.identities import KINDS, Identity, sample_group


@dataclass(frozen=True)
class WorldSizes:
    """Size of a synthetic world (per split: identities and sequences; per sequence: people, frames, image size)."""

    train_identities: int = 48
    val_identities: int = 32
    train_sequences: int = 10
    val_sequences: int = 8
    people_per_sequence: int = 10
    frames: int = 80
    width: int = 640
    height: int = 360
    frame_rate: int = 25


PRESETS: dict[str, dict[str, dict[str, int]]] = {
    "default": {"sports": {}, "dance": {"people_per_sequence": 8}},
    "tiny": {
        k: dict(
            train_identities=6,
            val_identities=6,
            train_sequences=2,
            val_sequences=2,
            people_per_sequence=6,
            frames=12,
            width=384,
            height=216,
        )
        for k in KINDS
    },
}


def resolve_sizes(kind: str, preset: str = "default", **overrides: int | None) -> WorldSizes:
    """Sizes of ``preset`` for ``kind`` with the non-None ``overrides`` applied; validates every value."""
    if kind not in KINDS:
        raise ConfigError(f"unknown synthetic world kind {kind!r}; use one of: {', '.join(KINDS)}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown world size preset {preset!r}; use one of: {', '.join(PRESETS)}")
    values = dict(PRESETS[preset][kind])
    names = {f.name for f in fields(WorldSizes)}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown world size {key!r}; known: {', '.join(sorted(names))}")
        if value is not None:
            values[key] = int(value)
    sizes = WorldSizes(**values)
    minimum = {
        "train_identities": 2,
        "val_identities": 2,
        "train_sequences": 1,
        "val_sequences": 2,
        "people_per_sequence": 2,
        "frames": 2,
        "width": 128,
        "height": 96,
        "frame_rate": 1,
    }
    for key, low in minimum.items():
        if getattr(sizes, key) < low:
            raise ConfigError(f"world size {key.replace('_', '-')} must be at least {low}, got {getattr(sizes, key)}")
    return sizes


@dataclass(frozen=True)
class SequencePlan:
    """One sequence to render: its name, split, index within the split, scene and identities in track order."""

    name: str
    split: str
    index: int
    scene: str
    identities: tuple[int, ...]  # indices into the world's identity list; track k shows identities[k]


def _least_used(candidates: list[int], counts: dict[int, int], k: int, rng: np.random.Generator) -> list[int]:
    noise = rng.random(len(candidates))
    order = sorted(range(len(candidates)), key=lambda i: (counts[candidates[i]], noise[i]))
    return [candidates[i] for i in order[:k]]


def _split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _plan_split(
    kind: str, split: str, n_ids: int, n_seq: int, people: int, rng: np.random.Generator, first_index: int, taken: set
) -> tuple[list[Identity], list[tuple[str, list[int]]]]:
    """Identities of one split and, per sequence, (scene, local identity indices)."""
    per_team = math.ceil(people / 2) if kind == "sports" else people
    if n_ids < (2 * per_team if kind == "sports" else 2):
        raise ConfigError(
            f"{split}: {n_ids} identities cannot fill sequences of {people} people; "
            f"use at least {2 * per_team} {split} identities or fewer people per sequence"
        )
    if kind == "sports":
        n_groups = max(2, round(n_ids / (per_team + 3)))
        while n_groups > 2 and n_ids // n_groups < per_team:
            n_groups -= 1
        n_leagues = max(1, min(3, n_groups // 2, n_seq))
        scenes = list(rng.permutation(P.SPORTS))[:n_leagues]
    else:
        n_groups = max(1, min(round(n_ids / people), n_ids // 2))
        n_leagues = max(1, min(3, n_groups))
        scenes = list(rng.permutation(P.DANCE_GENRES))[:n_leagues]
    sizes = _split_evenly(n_ids, n_groups)
    identities: list[Identity] = []
    groups: list[list[int]] = []
    league_of: list[int] = []
    for g, size in enumerate(sizes):
        league = g % n_leagues
        name = f"{split}-{'team' if kind == 'sports' else 'group'}-{g + 1:02d}"
        members = sample_group(
            kind,
            str(scenes[league]),
            size,
            rng,
            split=split,
            group=name,
            first_index=first_index + len(identities),
            taken_uniforms=taken,
        )
        groups.append(list(range(len(identities), len(identities) + size)))
        league_of.append(league)
        identities += members
    counts = {i: 0 for i in range(n_ids)}
    group_counts = {g: 0 for g in range(n_groups)}
    league_load = [0] * n_leagues
    league_size = [league_of.count(lg) for lg in range(n_leagues)]
    sequences: list[tuple[str, list[int]]] = []
    for _ in range(n_seq):
        league = min(range(n_leagues), key=lambda lg: (league_load[lg] / league_size[lg], lg))
        league_load[league] += 1
        in_league = [g for g in range(n_groups) if league_of[g] == league]
        chosen = _least_used(in_league, group_counts, 2 if kind == "sports" else 1, rng)
        people_ids: list[int] = []
        for j, g in enumerate(chosen):
            group_counts[g] += 1
            want = len(groups[g]) if kind == "dance" else (math.ceil(people / 2) if j == 0 else people // 2)
            people_ids += _least_used(groups[g], counts, want, rng)
        for i in people_ids:
            counts[i] += 1
        sequences.append((str(scenes[league]), [people_ids[i] for i in rng.permutation(len(people_ids))]))
    need = 2 if split == "val" else 1
    short = [identities[i].identity_id for i, c in counts.items() if c < need]
    if short:
        raise ConfigError(
            f"{split}: {len(short)} identities (e.g. {short[0]}) appear in fewer than {need} "
            f"sequence(s); use more {split} sequences, more people per sequence or fewer {split} "
            "identities"
        )
    return identities, sequences


def plan_world(kind: str, sizes: WorldSizes, seed: int) -> tuple[list[Identity], list[SequencePlan]]:
    """All identities (train first, then val) and all sequences of a world; deterministic in ``seed``."""
    rng = np.random.default_rng([int(seed), 0])
    identities: list[Identity] = []
    plans: list[SequencePlan] = []
    taken: set = set()
    for split, n_ids, n_seq in (
        ("train", sizes.train_identities, sizes.train_sequences),
        ("val", sizes.val_identities, sizes.val_sequences),
    ):
        ids, seqs = _plan_split(
            kind, split, n_ids, n_seq, sizes.people_per_sequence, rng, first_index=len(identities) + 1, taken=taken
        )
        offset = len(identities)
        identities += ids
        for i, (scene, members) in enumerate(seqs):
            plans.append(
                SequencePlan(f"{kind}-{split}-{i + 1:04d}", split, i, scene, tuple(offset + m for m in members))
            )
    return identities, plans
