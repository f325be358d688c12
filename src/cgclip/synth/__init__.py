"""Synthetic sports / dance world: the offline stand-in for SportsMOT and DanceTrack.

Many people in near-identical team uniforms or group costumes, told apart by jersey number, hair, shoes, socks,
build and small accessories, move, cross and occlude each other under varied cameras. :func:`generate_world`
writes MOT-format sequences plus ``identities.csv`` and ``track_mapping.csv``, so the MOT-to-VReID builder turns
the world into a video ReID dataset exactly as it would real data. :func:`render_identity_crops` renders crops of
one identity without a sequence (e.g. image-caption pairs for pretraining).
"""

from cgclip.synth.crops import render_identity_crops
from cgclip.synth.identities import TABLE_COLUMNS, Identity, Look, sample_group, sample_identities
from cgclip.synth.plan import PRESETS, SequencePlan, WorldSizes, plan_world, resolve_sizes
from cgclip.synth.world import WorldSummary, generate_world

__all__ = [
    "PRESETS",
    "TABLE_COLUMNS",
    "Identity",
    "Look",
    "SequencePlan",
    "WorldSizes",
    "WorldSummary",
    "generate_world",
    "plan_world",
    "render_identity_crops",
    "resolve_sizes",
    "sample_group",
    "sample_identities",
]
