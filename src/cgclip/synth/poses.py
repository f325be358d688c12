"""Body poses: the view (front, back, left, right) and the angles of the four limbs.

A limb is ``(abduct, swing, bend, fbend)`` in degrees: ``abduct`` lifts it sideways (frontal plane, 180 = straight
up), ``swing`` moves it forward (sagittal plane), ``bend`` bends the elbow forward / the knee backward, ``fbend`` turns
the lower segment in the frontal plane (positive = further outward). Poses are quantised (phase in steps) so
rendered sprites can be cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VIEWS = ("front", "back", "left", "right")
PHASE_STEPS = 8
DANCE_MOVES = ("arms_up", "wave", "kick", "plie", "step", "jump", "one_arm", "clap")

Limb = tuple[float, float, float, float]


@dataclass(frozen=True)
class Pose:
    """A quantised body pose; hashable, used as a sprite-cache key."""

    view: str
    l_arm: Limb
    r_arm: Limb
    l_leg: Limb
    r_leg: Limb
    lift: float = 0.0  # feet above the ground, fraction of body height


def _q(limb: tuple[float, ...]) -> Limb:
    return tuple(float(round(a)) for a in limb)  # type: ignore[return-value]


def quantise_phase(phase: float) -> float:
    """Round a cycle phase in [0, 1) to one of :data:`PHASE_STEPS` steps."""
    return (round(phase * PHASE_STEPS) % PHASE_STEPS) / PHASE_STEPS


def walk_pose(view: str, phase: float, speed: float) -> Pose:
    """Walking/running pose at ``phase`` of the stride; ``speed`` 0 (standing) .. 1 (sprinting)."""
    a = max(0.0, min(1.0, speed))
    a = round(a * 3) / 3  # three gait amplitudes keep the sprite cache small
    s = math.sin(2 * math.pi * quantise_phase(phase))
    leg = 34 * a * s
    knee_l = 8 + 55 * a * max(0.0, -s)
    knee_r = 8 + 55 * a * max(0.0, s)
    arm = 38 * a * s
    elbow = 15 + 70 * a
    return Pose(
        view,
        l_arm=_q((9, -arm, elbow, 0)),
        r_arm=_q((9, arm, elbow, 0)),
        l_leg=_q((3, leg, knee_l, 0)),
        r_leg=_q((3, -leg, knee_r, 0)),
    )


def dance_pose(view: str, move: str, phase: float) -> Pose:
    """A dance pose: one of :data:`DANCE_MOVES` at ``phase`` of its cycle."""
    p = quantise_phase(phase)
    s = math.sin(2 * math.pi * p)
    c = math.cos(2 * math.pi * p)
    up = 0.5 - 0.5 * c  # 0 -> 1 -> 0 over the cycle
    lift = 0.0
    if move == "arms_up":
        arms = ((150 + 25 * up, 0, 10, 0), (150 + 25 * up, 0, 10, 0))
        legs = ((6, 0, 25 * up, 0), (6, 0, 25 * up, 0))
    elif move == "wave":
        arms = ((90 + 25 * s, 0, 0, 45 * c), (90 - 25 * s, 0, 0, -45 * c))
        legs = ((8, 0, 5, 0), (8, 0, 5, 0))
    elif move == "kick":
        kick_l, kick_r = 70 * max(0.0, s), 70 * max(0.0, -s)
        arms = ((70, 0, 10, 0), (70, 0, 10, 0))
        legs = ((4 + 0.5 * kick_l, kick_l, 10, 0), (4 + 0.5 * kick_r, kick_r, 10, 0))
    elif move == "plie":
        arms = ((40 + 60 * up, 15, 20, 0), (40 + 60 * up, 15, 20, 0))
        legs = ((12 + 28 * up, 0, 0, -34 * up), (12 + 28 * up, 0, 0, -34 * up))
    elif move == "step":
        arms = ((110, 20 * s, 30, 0), (110, -20 * s, 30, 0))
        legs = ((5, 30 * s, 10 + 30 * max(0.0, -s), 0), (5, -30 * s, 10 + 30 * max(0.0, s), 0))
    elif move == "jump":
        lift = 0.07 * max(0.0, s)
        arms = ((165 * max(0.0, s) + 10, 0, 5, 0), (165 * max(0.0, s) + 10, 0, 5, 0))
        legs = ((6, 0, 50 * max(0.0, -s) + 15 * max(0.0, s), 0), (6, 0, 50 * max(0.0, -s) + 15 * max(0.0, s), 0))
    elif move == "one_arm":
        arms = ((40, 0, 0, -95), (160 + 15 * s, 0, 0, 0))
        legs = ((10 + 10 * up, 0, 5, 0), (4, 0, 20 * up, 0))
    elif move == "clap":
        arms = ((45, 30, 0, -70 - 60 * up), (45, 30, 0, -70 - 60 * up))
        legs = ((7, 0, 15 * up, 0), (7, 0, 15 * up, 0))
    else:
        raise ValueError(f"unknown dance move {move!r}")
    return Pose(view, l_arm=_q(arms[0]), r_arm=_q(arms[1]), l_leg=_q(legs[0]), r_leg=_q(legs[1]), lift=round(lift, 3))
