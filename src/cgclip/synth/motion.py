"""Movement of the people in a sequence: smooth trajectories, facing direction, gait phase and dance moves.

Positions live in field coordinates (u across, d in depth, both in [0, 1]) and are mapped to foot pixels by the
camera. Sports players chase a wandering ball with momentum; dancers hold formation slots, switch formations every
few seconds (crossing each other on the way) and dance the group's move, sometimes their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgclip.synth.poses import DANCE_MOVES, VIEWS
from cgclip.synth.scene import Camera


@dataclass
class Tracks:
    """Per-frame state of N people over T frames (arrays shaped (T, N))."""

    x: np.ndarray  # foot x (px)
    y: np.ndarray  # foot y (px)
    view: np.ndarray  # index into VIEWS
    phase: np.ndarray  # gait / dance cycle phase in [0, 1)
    speed: np.ndarray  # 0 (standing) .. 1 (fastest)
    move: np.ndarray  # index into DANCE_MOVES, -1 = walking / running


def _to_pixels(cam: Camera, u: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = cam.y_far + d * (cam.y_near - cam.y_far)
    margin = 0.2 * cam.person_height(y)
    x = margin + u * (cam.width - 2 * margin)
    return x, y


def _views_from_velocity(vx: np.ndarray, vy: np.ndarray, vmax: float, previous: np.ndarray) -> np.ndarray:
    """Side view when moving mostly sideways, front when coming toward the camera, back when leaving."""
    speed = np.hypot(vx, vy)
    side = np.where(vx > 0, VIEWS.index("right"), VIEWS.index("left"))
    toward = np.where(vy > 0, VIEWS.index("front"), VIEWS.index("back"))
    view = np.where(np.abs(vx) > 1.3 * np.abs(vy), side, toward)
    return np.where(speed < 0.25 * vmax, previous, view)


def _separation(pos: np.ndarray, radius: float) -> np.ndarray:
    """A push away from neighbours closer than ``radius`` (players keep some spacing; crossings still happen)."""
    diff = pos[:, None, :] - pos[None, :, :]
    diff[..., 1] *= 2.0  # people at different depths overlap less than side by side
    dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(pos))
    push = np.clip(radius - dist, 0.0, None) / dist
    return 0.04 * (diff * push[..., None]).sum(axis=1)


def simulate_sports(cam: Camera, n: int, frames: int, rng: np.random.Generator) -> Tracks:
    """Players of a match: each runs toward the ball plus a personal, slowly drifting offset."""
    vmax = 0.011
    pos = rng.uniform(0.05, 0.95, size=(n, 2))
    vel = np.zeros((n, 2))
    ball = rng.uniform(0.3, 0.7, size=2)
    ball_v = rng.normal(0, 0.01, size=2)
    offset = rng.normal(0, 0.35, size=(n, 2)) * np.array([1.0, 0.8])
    smooth_v = np.zeros((n, 2))
    view = rng.integers(0, 2, size=n)
    phase = rng.uniform(0, 1, size=n)
    out = {k: np.zeros((frames, n)) for k in ("u", "d", "view", "phase", "speed")}
    for t in range(frames):
        ball_v = 0.93 * ball_v + rng.normal(0, 0.0035, size=2)
        ball = ball + ball_v
        for k in range(2):
            if not 0.15 < ball[k] < 0.85:
                ball_v[k] = -abs(ball_v[k]) if ball[k] > 0.5 else abs(ball_v[k])
        offset += rng.normal(0, 0.01, size=offset.shape)
        offset *= 0.995
        target = np.clip(ball + offset, 0.02, 0.98)
        vel = 0.88 * vel + 0.007 * (target - pos) + _separation(pos, 0.15) + rng.normal(0, 0.0012, size=vel.shape)
        speed = np.hypot(vel[:, 0], vel[:, 1])
        vel *= np.minimum(1.0, vmax / np.maximum(speed, 1e-9))[:, None]
        pos = pos + vel
        for k in range(2):  # stay on the field: reflect at the borders
            low, high = pos[:, k] < 0.0, pos[:, k] > 1.0
            pos[low, k], pos[high, k] = -pos[low, k], 2.0 - pos[high, k]
            vel[low | high, k] *= -1
        smooth_v = 0.7 * smooth_v + 0.3 * vel
        speed = np.hypot(vel[:, 0], vel[:, 1])
        view = _views_from_velocity(smooth_v[:, 0], smooth_v[:, 1] * 0.6, vmax, view)
        phase = (phase + speed / vmax * 0.11) % 1.0
        out["u"][t], out["d"][t] = pos[:, 0], pos[:, 1]
        out["view"][t], out["phase"][t], out["speed"][t] = view, phase, speed / vmax
    x, y = _to_pixels(cam, out["u"], out["d"])
    return Tracks(
        x, y, out["view"].astype(int), out["phase"], np.clip(out["speed"], 0, 1), np.full((frames, n), -1, int)
    )


def _formation(n: int, rng: np.random.Generator) -> np.ndarray:
    """Slot positions (n, 2) of one formation: a line, two rows, a V, a circle or a staggered grid."""
    kind = int(rng.integers(0, 5))
    i = np.arange(n)
    if kind == 0:
        slots = np.stack([np.linspace(0.08, 0.92, n), np.full(n, rng.uniform(0.3, 0.8))], 1)
    elif kind == 1:
        step = 0.8 / max(1, (n - 1) // 2)
        slots = np.stack([(i // 2) * step + 0.1 + (i % 2) * 0.5 * step, 0.3 + 0.45 * (i % 2)], 1)  # staggered rows
    elif kind == 2:
        c = (n - 1) / 2
        slots = np.stack([np.linspace(0.1, 0.9, n), 0.2 + 0.65 * (1 - np.abs(i - c) / max(c, 1))], 1)
    elif kind == 3:
        a = 2 * np.pi * i / n
        slots = np.stack([0.5 + 0.38 * np.cos(a), 0.5 + 0.38 * np.sin(a)], 1)
    else:
        cols = int(np.ceil(np.sqrt(n)))
        slots = np.stack(
            [
                (i % cols) / max(1, cols - 1) * 0.8 + 0.1 + 0.06 * ((i // cols) % 2),
                (i // cols) / max(1, (n - 1) // cols) * 0.7 + 0.15,
            ],
            1,
        )
    return np.clip(slots + rng.normal(0, 0.02, size=slots.shape), 0.0, 1.0)[rng.permutation(n)]


def simulate_dance(cam: Camera, n: int, frames: int, rng: np.random.Generator) -> Tracks:
    """A dance group: formations, crossings, the group's choreography and occasional solos and turns."""
    vmax = 0.014
    pos = _formation(n, rng)
    vel = np.zeros((n, 2))
    smooth_v = np.zeros((n, 2))
    period = rng.uniform(10, 16)
    offset = rng.normal(0, 0.05, size=n)
    out = {k: np.zeros((frames, n)) for k in ("u", "d", "view", "phase", "speed", "move")}
    slots = pos.copy()
    seg_end = 0
    view = np.zeros(n, int)
    group_move, own_move, facing = 0, np.full(n, -1), VIEWS.index("front")
    for t in range(frames):
        if t >= seg_end:
            seg_end = t + int(rng.integers(18, 36))
            slots = _formation(n, rng)
            group_move = int(rng.integers(0, len(DANCE_MOVES)))
            own_move = np.where(rng.random(n) < 0.15, rng.integers(0, len(DANCE_MOVES), size=n), -1)
            facing = VIEWS.index("back") if rng.random() < 0.2 else VIEWS.index("front")
        vel = 0.8 * vel + 0.05 * (slots - pos) + rng.normal(0, 0.0008, size=vel.shape)
        speed = np.hypot(vel[:, 0], vel[:, 1])
        vel *= np.minimum(1.0, vmax / np.maximum(speed, 1e-9))[:, None]
        pos = np.clip(pos + vel, 0.0, 1.0)
        smooth_v = 0.7 * smooth_v + 0.3 * vel
        speed = np.hypot(vel[:, 0], vel[:, 1]) / vmax
        travelling = speed > 0.45
        moving_view = _views_from_velocity(smooth_v[:, 0], smooth_v[:, 1] * 0.6, vmax, np.full(n, facing))
        view = np.where(travelling, moving_view, facing)
        spin = rng.random(n) < 0.01  # a quick turn: show a side view for this frame
        view = np.where(spin & ~travelling, rng.integers(2, 4, size=n), view)
        move = np.where(own_move >= 0, own_move, group_move)
        out["u"][t], out["d"][t] = pos[:, 0], pos[:, 1]
        out["view"][t], out["speed"][t] = view, np.clip(speed, 0, 1)
        out["phase"][t] = (t / period + offset) % 1.0
        out["move"][t] = np.where(travelling, -1, move)
    x, y = _to_pixels(cam, out["u"], out["d"])
    return Tracks(x, y, out["view"].astype(int), out["phase"], out["speed"], out["move"].astype(int))


def simulate(kind: str, cam: Camera, n: int, frames: int, rng: np.random.Generator) -> Tracks:
    """Simulate ``n`` people for ``frames`` frames (``kind`` = "sports" or "dance")."""
    return simulate_sports(cam, n, frames, rng) if kind == "sports" else simulate_dance(cam, n, frames, rng)
