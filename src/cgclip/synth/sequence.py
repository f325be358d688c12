"""Render one MOT sequence of the synthetic world: frames, ``gt/gt.txt`` and ``seqinfo.ini``.

Each sequence has its own random generator derived from (seed, split, index), so sequences are independent and can
be rendered in any order or in parallel with the same result. The sequence folder is written under a temporary name
and renamed into place when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cgclip.synth.identities import Identity
from cgclip.synth.motion import simulate
from cgclip.synth.person import Sprite, render_person
from cgclip.synth.plan import SequencePlan, WorldSizes
from cgclip.synth.poses import DANCE_MOVES, VIEWS, Pose, dance_pose, walk_pose
from cgclip.synth.scene import Camera, finish_frame, light_lut, render_background, sample_camera

logger = logging.getLogger(__name__)

#: MOT dialect per world kind: (separator, first track id, frame-name digits).
MOT_STYLE = {"sports": (", ", 0, 6), "dance": (",", 1, 8)}
SPLIT_CODE = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SequenceResult:
    """What was written for one sequence."""

    name: str
    split: str
    boxes: int
    occluded_boxes: int
    camera: Camera


def sequence_rng(seed: int, plan: SequencePlan) -> np.random.Generator:
    """The generator of one sequence, derived from (seed, split, index) only."""
    return np.random.default_rng([int(seed), 1, SPLIT_CODE[plan.split], plan.index])


def pose_at(kind_move: int, view: int, phase: float, speed: float) -> Pose:
    """Walking pose (``kind_move`` < 0) or the dance move with that index."""
    if kind_move < 0:
        return walk_pose(VIEWS[view], phase, speed)
    return dance_pose(VIEWS[view], DANCE_MOVES[kind_move], phase)


def _shadow(width: int) -> Image.Image:
    h = max(2, width // 4)
    mask = Image.new("L", (width, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width - 1, h - 1), fill=70)
    return mask


def visibilities(boxes: list[tuple[int, int, int, int]]) -> list[float]:
    """Fraction of each box (x0, y0, x1, y1; list in drawing order, far to near) not covered by later boxes."""
    out = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            out.append(0.0)
            continue
        free = np.ones((h, w), bool)
        for a0, b0, a1, b1 in boxes[i + 1 :]:
            l, t, r, b = max(a0, x0), max(b0, y0), min(a1, x1), min(b1, y1)
            if l < r and t < b:
                free[t - y0 : b - y0, l - x0 : r - x0] = False
        out.append(float(free.mean()))
    return out


def format_visibility(v: float) -> str:
    """Visibility with at most 4 decimals and no trailing zeros ("1", "0.8125")."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def render_sequence(
    kind: str, plan: SequencePlan, identities: list[Identity], sizes: WorldSizes, seed: int, split_dir: Path
) -> SequenceResult:
    """Render ``plan`` into ``split_dir/<plan.name>/`` (img1/, gt/gt.txt, seqinfo.ini); returns counts."""
    rng = sequence_rng(seed, plan)
    cam = sample_camera(plan.scene, sizes.width, sizes.height, rng)
    background = render_background(cam, rng)
    people = [identities[i] for i in plan.identities]
    tracks = simulate(kind, cam, len(people), sizes.frames, rng)
    lut = light_lut(cam)
    sep, first_id, digits = MOT_STYLE[kind]
    final = split_dir / plan.name
    tmp = split_dir / f".{plan.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img1").mkdir(parents=True)
    (tmp / "gt").mkdir()
    sprites: dict[tuple, Sprite] = {}
    shadows: dict[int, Image.Image] = {}
    rows: list[tuple[int, int, str]] = []
    occluded = 0
    W, H = sizes.width, sizes.height
    for t in range(sizes.frames):
        frame = background.copy()
        order = np.argsort(tracks.y[t], kind="stable")
        boxes: list[tuple[int, int, int, int]] = []
        for j in order:
            look = people[j].look
            pose = pose_at(
                int(tracks.move[t, j]), int(tracks.view[t, j]), float(tracks.phase[t, j]), float(tracks.speed[t, j])
            )
            height = int(round(float(cam.person_height(tracks.y[t, j])) / 2.0) * 2)
            key = (j, pose, height)
            sprite = sprites.get(key)
            if sprite is None:
                sprite = sprites[key] = render_person(look, pose, height)
            fx, fy = float(tracks.x[t, j]), float(tracks.y[t, j])
            sw = max(4, int(height * 0.34 * look.width))
            shadow = shadows.get(sw)
            if shadow is None:
                shadow = shadows[sw] = _shadow(sw)
            sx, sy = int(fx - sw / 2), int(fy - shadow.height / 2)
            frame.paste((0, 0, 0), (sx, sy, sx + shadow.width, sy + shadow.height), shadow)
            left, top = int(round(fx)) - sprite.anchor_x, int(round(fy)) - sprite.anchor_y
            frame.paste(sprite.image, (left, top), sprite.image)
            x0, y0 = max(0, left), max(0, top)
            x1, y1 = min(W, left + sprite.image.width), min(H, top + sprite.image.height)
            boxes.append((x0, y0, x1, y1))
        for j, (x0, y0, x1, y1), vis in zip(order, boxes, visibilities(boxes)):
            if x1 <= x0 or y1 <= y0:
                continue
            occluded += vis < 1.0
            fields = [t + 1, int(j) + first_id, x0, y0, x1 - x0, y1 - y0, 1, 1]
            rows.append((t + 1, int(j) + first_id, sep.join(str(v) for v in fields) + sep + format_visibility(vis)))
        frame = finish_frame(frame, cam, lut)
        frame.save(tmp / "img1" / f"{t + 1:0{digits}d}.jpg", "JPEG", quality=cam.jpeg_quality)
    rows.sort()
    (tmp / "gt" / "gt.txt").write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    (tmp / "seqinfo.ini").write_text(
        f"[Sequence]\nname={plan.name}\nimDir=img1\nframeRate={sizes.frame_rate}\nseqLength={sizes.frames}\n"
        f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n",
        encoding="utf-8",
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    logger.debug("%s: %d boxes, %d occluded, %d sprites", plan.name, len(rows), occluded, len(sprites))
    return SequenceResult(plan.name, plan.split, len(rows), int(occluded), cam)
