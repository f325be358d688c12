"""Render stand-alone crops of one identity under random cameras and poses (no MOT sequence written).

Used to make image-caption pairs (e.g. to pretrain a tiny CLIP on identities disjoint from the ReID splits) and
previews. Each crop goes through the same camera pipeline as the world: scene background, perspective scale, blur,
light and JPEG compression, then is cut at the person's box, as the MOT-to-VReID builder does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from cgclip.synth.identities import Identity
from cgclip.synth.person import render_person
from cgclip.synth.poses import DANCE_MOVES, VIEWS, Pose, dance_pose, walk_pose
from cgclip.synth.scene import Camera, finish_frame, light_lut, render_background, sample_camera

_VIEW_P = [0.35, 0.35, 0.15, 0.15]


def _random_pose(identity: Identity, rng: np.random.Generator, view: str | None = None) -> Pose:
    view = view or VIEWS[int(rng.choice(4, p=_VIEW_P))]
    dance = identity.look.top_style != "jersey"
    if dance and rng.random() < 0.7:
        return dance_pose(view, DANCE_MOVES[int(rng.integers(len(DANCE_MOVES)))], float(rng.random()))
    return walk_pose(view, float(rng.random()), float(rng.uniform(0.0, 1.0)))


def _place(
    canvas: Image.Image, identity: Identity, pose: Pose, cam: Camera, fx: float, fy: float, box_origin: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Paste ``identity`` with feet at (fx, fy) (frame coords) onto ``canvas`` (whose top-left is ``box_origin``)."""
    height = int(round(float(cam.person_height(fy)) / 2.0) * 2)
    sprite = render_person(identity.look, pose, height)
    left = int(round(fx)) - sprite.anchor_x - box_origin[0]
    top = int(round(fy)) - sprite.anchor_y - box_origin[1]
    canvas.paste(sprite.image, (left, top), sprite.image)
    return left, top, left + sprite.image.width, top + sprite.image.height


def render_identity_crops(
    identity: Identity,
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    size: tuple[int, int] | None = None,
    width: int = 640,
    height: int = 360,
    crops_per_camera: int = 8,
    jpeg: bool = True,
    distractors: Sequence[Identity] = (),
    distractor_p: float = 0.3,
    view: str | None = None,
) -> list[Image.Image]:
    """Render ``n`` RGB crops of ``identity`` under random cameras, views and poses.

    ``size`` = (height, width) resizes every crop (e.g. (256, 128)); None keeps the box size. A new camera
    (background, scale, light, blur, JPEG quality for a ``width`` x ``height`` frame) is drawn every
    ``crops_per_camera`` crops. With probability ``distractor_p`` a person from ``distractors`` stands partly
    in front of or behind the identity (as in a crowded frame). ``view`` fixes the identity's view (default: random,
    mostly front and back). Deterministic in ``seed``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), 3])
    crops: list[Image.Image] = []
    cam = background = lut = None
    for k in range(n):
        if k % max(1, crops_per_camera) == 0:
            cam = sample_camera(identity.scene, width, height, rng)
            background = render_background(cam, rng)
            lut = light_lut(cam)
        assert cam is not None and background is not None and lut is not None
        fy = float(rng.uniform(cam.y_far, cam.y_near))
        h = float(cam.person_height(fy))
        fx = float(rng.uniform(0.35 * h, width - 0.35 * h))
        x0, y0 = int(max(0, fx - 0.9 * h)), int(max(0, fy - 1.5 * h))
        x1, y1 = int(min(width, fx + 0.9 * h)), int(min(height, fy + 0.1 * h))
        canvas = background.crop((x0, y0, x1, y1))
        other = (
            distractors[int(rng.integers(len(distractors)))] if distractors and rng.random() < distractor_p else None
        )
        dx = float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.45) * h)
        if other is not None and rng.random() < 0.5:  # behind
            _place(canvas, other, _random_pose(other, rng), cam, fx + dx, fy - 0.05 * h, (x0, y0))
            other = None
        box = _place(canvas, identity, _random_pose(identity, rng, view), cam, fx, fy, (x0, y0))
        if other is not None:  # in front
            _place(canvas, other, _random_pose(other, rng), cam, fx + dx, fy + 0.05 * h, (x0, y0))
        canvas = finish_frame(canvas, cam, lut)
        if jpeg:
            buf = io.BytesIO()
            canvas.save(buf, "JPEG", quality=cam.jpeg_quality)
            buf.seek(0)
            canvas = Image.open(buf).convert("RGB")
        l, t = max(0, box[0]), max(0, box[1])
        r, b = min(canvas.width, box[2]), min(canvas.height, box[3])
        crop = canvas.crop((l, t, max(r, l + 1), max(b, t + 1)))
        crops.append(crop.resize((size[1], size[0]), Image.BILINEAR) if size is not None else crop)
    return crops
