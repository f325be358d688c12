"""Render one person (a :class:`~cgclip.synth.identities.Look` at a :class:`~cgclip.synth.poses.Pose`) as a sprite.

Drawing uses PIL primitives on a 2x supersampled canvas that is then halved (anti-aliasing). Body coordinates are in
units of the standing body height H with the head top at y = 0 and the soles at y ~= 1; limbs are 3-D directions
(x lateral, y down, z forward) projected for the view. The sprite is cropped to its visible pixels and returned with
the ground point (between the feet) so callers can place it by foot position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cgclip.synth.identities import Look
from cgclip.synth.person_parts import draw_accessories_body, draw_accessories_head, draw_hair_and_face
from cgclip.synth.poses import Limb, Pose

SUPERSAMPLE = 2


@dataclass(frozen=True)
class Sprite:
    """A rendered person: RGBA ``image`` cropped to the body and the ground point (``anchor_x``, ``anchor_y``)."""

    image: Image.Image
    anchor_x: int
    anchor_y: int


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


@lru_cache(maxsize=256)
def digits_mask(text: str) -> Image.Image:
    """A tight 'L' mask of ``text`` in PIL's default font."""
    font = ImageFont.load_default()
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(img).text((1 - left, 1 - top), text, fill=255, font=font)
    return img.crop(img.getbbox() or (0, 0, 1, 1))


class _Canvas:
    """Drawing helpers in body units; ``view`` decides how 3-D points project."""

    def __init__(self, height_px: float, view: str) -> None:
        self.h = height_px
        self.w_px = int(height_px * 1.3) + 8
        self.h_px = int(height_px * 1.45) + 8
        self.ox = self.w_px / 2
        self.oy = height_px * 0.3 + 4
        self.view = view
        self.img = Image.new("RGBA", (self.w_px, self.h_px), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.img)

    def px(self, x: float, y: float) -> tuple[float, float]:
        return self.ox + x * self.h, self.oy + y * self.h

    def project(self, p: np.ndarray) -> tuple[float, float]:
        """3-D body point (x lateral toward the person's left, y down, z forward) -> 2-D body units."""
        x, y, z = float(p[0]), float(p[1]), float(p[2])
        if self.view == "front":
            return x, y
        if self.view == "back":
            return -x, y
        if self.view == "right":
            return z - 0.25 * x, y
        return -z + 0.25 * x, y

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill) -> None:
        x, y = self.px(cx, cy)
        self.draw.ellipse((x - rx * self.h, y - ry * self.h, x + rx * self.h, y + ry * self.h), fill=fill)

    def polygon(self, points, fill) -> None:
        self.draw.polygon([self.px(x, y) for x, y in points], fill=fill)

    def segment(self, a, b, width: float, fill) -> None:
        """A thick line with round caps between 2-D body points ``a`` and ``b``."""
        pa, pb = self.px(*a), self.px(*b)
        w = max(1.0, width * self.h)
        self.draw.line((pa, pb), fill=fill, width=int(round(w)))
        r = w / 2
        for x, y in (pa, pb):
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _direction(abduct: float, swing: float, side: float) -> np.ndarray:
    a, s = math.radians(abduct), math.radians(swing)
    return np.array([side * math.sin(a), math.cos(a) * math.cos(s), math.cos(a) * math.sin(s)])


def _limb(origin: np.ndarray, limb: Limb, upper: float, lower: float, side: float, knee: bool) -> tuple:
    abduct, swing, bend, fbend = limb
    mid = origin + upper * _direction(abduct, swing, side)
    end = mid + lower * _direction(abduct + fbend, swing - bend if knee else swing + bend, side)
    return origin, mid, end


def _lerp(a, b, t: float):
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t


def render_person(look: Look, pose: Pose, height_px: float) -> Sprite:
    """Draw ``look`` at ``pose`` with a standing height of ``height_px`` output pixels (before ``look.height``)."""
    height = float(height_px) * look.height * SUPERSAMPLE
    cv = _Canvas(height, pose.view)
    wf = look.width
    woman = look.gender == "woman"
    side_view = pose.view in ("left", "right")
    near = -1.0 if pose.view == "right" else 1.0  # lateral side facing the camera in side views

    sh_y, hip_y, waist_y = 0.19, 0.52, 0.40
    sh_x = 0.118 * wf * (0.88 if woman else 1.0)
    hip_x = 0.092 * wf * (1.08 if woman else 1.0)
    waist_x = 0.085 * wf * (0.9 if woman else 1.0)
    limbs = {}
    for name, side in (("l", 1.0), ("r", -1.0)):
        limbs[name + "_arm"] = _limb(
            np.array([side * (sh_x - 0.022), sh_y + 0.012, 0.0]),
            getattr(pose, name + "_arm"),
            0.165,
            0.15,
            side,
            knee=False,
        )
        limbs[name + "_leg"] = _limb(
            np.array([side * 0.05 * wf, hip_y - 0.02, 0.0]), getattr(pose, name + "_leg"), 0.235, 0.215, side, knee=True
        )
    # Lowest ankle stands on the ground (y = 0.955 standing), minus the jump lift.
    drop = 0.955 - max(limbs["l_leg"][2][1], limbs["r_leg"][2][1]) - pose.lift
    for key, pts in limbs.items():
        limbs[key] = tuple(cv.project(p + np.array([0.0, drop, 0.0])) for p in pts)
    body_dy = drop

    def order(names):
        if not side_view:
            return names
        # far side first in side views
        return sorted(names, key=lambda n: (1.0 if n.startswith("l") else -1.0) * near)

    skin = look.skin

    def draw_leg(name: str, far: bool) -> None:
        hip, knee, ankle = limbs[name]
        shade = 0.86 if far else 1.0
        cv.segment(hip, knee, 0.088 * wf, _shade(skin, shade))
        cv.segment(knee, ankle, 0.066 * wf, _shade(skin, shade))
        sock_from = 0.2 if look.sock_length == "long" else 0.78
        cv.segment(_lerp(knee, ankle, sock_from), ankle, 0.07 * wf, _shade(look.sock_rgb, shade))
        if any(k == "knee pads" for k, _ in look.accessories):
            rgb = next(c for k, c in look.accessories if k == "knee pads")
            cv.segment(_lerp(hip, knee, 0.88), _lerp(knee, ankle, 0.12), 0.085 * wf, _shade(rgb, shade))
        shoe = _shade(look.shoe_rgb, shade)
        if side_view:
            d = 1.0 if pose.view == "right" else -1.0
            cv.segment((ankle[0] - 0.012 * d, ankle[1] + 0.02), (ankle[0] + 0.06 * d, ankle[1] + 0.028), 0.042, shoe)
        else:
            cv.ellipse(ankle[0], ankle[1] + 0.024, 0.034, 0.024, shoe)
        cover = {"shorts": 0.62, "long shorts": 0.85, "cropped": 1.0}.get(look.bottom_style)
        if cover is not None:
            cv.segment(hip, _lerp(hip, knee, cover), 0.108 * wf, _shade(look.bottom, shade))
            if look.bottom_style == "cropped":
                cv.segment(knee, _lerp(knee, ankle, 0.5), 0.082 * wf, _shade(look.bottom, shade))

    def draw_arm(name: str, far: bool) -> None:
        sho, elbow, wrist = limbs[name]
        shade = 0.86 if far else 1.0
        arm_skin = _shade(skin, shade)
        left_arm = name.startswith("l")
        sleeve_rgb = next((c for k, c in look.accessories if k == "arm sleeve"), None) if left_arm else None
        fore_rgb = _shade(sleeve_rgb, shade) if sleeve_rgb else arm_skin
        cv.segment(sho, elbow, 0.052 * wf, fore_rgb)
        cv.segment(elbow, wrist, 0.044 * wf, fore_rgb)
        cv.ellipse(*_lerp(elbow, wrist, 1.12), 0.026, 0.026, arm_skin)
        shirt = _shade(look.shirt, shade)
        if look.sleeves == "short":
            cv.segment(sho, _lerp(sho, elbow, 0.55), 0.07 * wf, shirt)
        elif look.sleeves == "long":
            cv.segment(sho, elbow, 0.064 * wf, shirt)
            cv.segment(elbow, _lerp(elbow, wrist, 0.92), 0.054 * wf, shirt)
        draw_accessories_body(cv, look, name, (sho, elbow, wrist), shade)

    legs = order(["l_leg", "r_leg"])
    arms = order(["l_arm", "r_arm"])

    def is_far(name: str) -> bool:
        return side_view and ((1.0 if name.startswith("l") else -1.0) != near)

    if side_view:  # far arm behind the body
        draw_arm(arms[0], True)
    for leg in legs:
        draw_leg(leg, is_far(leg))
    dy = body_dy
    # Hips / bottom garment
    if side_view:
        cv.polygon(
            [(-0.062, waist_y + dy), (0.062, waist_y + dy), (0.07, hip_y + 0.04 + dy), (-0.07, hip_y + 0.04 + dy)],
            look.bottom,
        )
    else:
        cv.polygon(
            [
                (-waist_x, waist_y + dy),
                (waist_x, waist_y + dy),
                (hip_x, hip_y + 0.05 + dy),
                (-hip_x, hip_y + 0.05 + dy),
            ],
            look.bottom,
        )
    if look.bottom_style == "skirt":
        half = 0.075 if side_view else hip_x
        cv.polygon(
            [
                (-half, waist_y + 0.04 + dy),
                (half, waist_y + 0.04 + dy),
                (half * 1.6, 0.66 + dy),
                (-half * 1.6, 0.66 + dy),
            ],
            look.bottom,
        )
    # Torso (shirt) with pattern
    if side_view:
        d = 1.0 if pose.view == "right" else -1.0
        torso = [
            (-0.055 * d, sh_y + dy),
            (0.05 * d, sh_y + 0.01 + dy),
            (0.07 * d, 0.3 + dy),
            (0.058 * d, waist_y + 0.07 + dy),
            (-0.058 * d, waist_y + 0.07 + dy),
            (-0.065 * d, 0.3 + dy),
        ]
        left_edge, right_edge = (-0.06, 0.06)
        top_l, top_r, bot_l, bot_r = (
            (left_edge, sh_y + dy),
            (right_edge, sh_y + dy),
            (left_edge, waist_y + 0.07 + dy),
            (right_edge, waist_y + 0.07 + dy),
        )
    else:
        bottom_y = waist_y + (0.14 if look.top_style == "leotard" else 0.07)
        torso = [
            (-sh_x, sh_y + dy),
            (sh_x, sh_y + dy),
            (sh_x * 0.96, 0.27 + dy),
            (waist_x * 1.03, bottom_y + dy),
            (-waist_x * 1.03, bottom_y + dy),
            (-sh_x * 0.96, 0.27 + dy),
        ]
        top_l, top_r, bot_l, bot_r = (
            (-sh_x * 0.96, sh_y + dy),
            (sh_x * 0.96, sh_y + dy),
            (-waist_x * 1.03, bottom_y + dy),
            (waist_x * 1.03, bottom_y + dy),
        )
    if look.top_style == "hoodie":
        cv.ellipse(0.0, 0.17 + dy, 0.07, 0.045, _shade(look.shirt, 0.85))
    cv.segment((0.0, 0.12 + dy), (0.0, sh_y + dy), 0.05, skin)  # neck
    cv.polygon(torso, look.shirt)
    if look.pattern == "stripes":
        for f in (0.18, 0.42, 0.66, 0.9) if not side_view else (0.3, 0.7):
            w = 0.09
            cv.polygon(
                [
                    _lerp(top_l, top_r, f - w),
                    _lerp(top_l, top_r, f),
                    _lerp(bot_l, bot_r, f),
                    _lerp(bot_l, bot_r, f - w),
                ],
                look.pattern_rgb,
            )
    elif look.pattern == "band":
        t0, t1 = 0.36, 0.5
        cv.polygon(
            [_lerp(top_l, bot_l, t0), _lerp(top_r, bot_r, t0), _lerp(top_r, bot_r, t1), _lerp(top_l, bot_l, t1)],
            look.pattern_rgb,
        )
    if look.bottom_style == "tutu":
        cv.ellipse(0.0, hip_y + 0.0 + dy, 0.1 if side_view else 0.2, 0.038, look.bottom)
        cv.ellipse(0.0, hip_y - 0.012 + dy, 0.085 if side_view else 0.17, 0.026, _shade(look.bottom, 1.12))
    if look.number and not side_view:
        _draw_number(cv, look, back=pose.view == "back", dy=dy)
    for arm in arms[1:] if side_view else arms:
        draw_arm(arm, False)
    draw_hair_and_face(cv, look, pose.view, dy)
    draw_accessories_head(cv, look, pose.view, dy)

    small = cv.img.reduce(SUPERSAMPLE)
    bbox = small.getchannel("A").getbbox() or (0, 0, 1, 1)
    anchor = (cv.ox / SUPERSAMPLE, (cv.oy + 0.995 * height) / SUPERSAMPLE)
    sprite = small.crop(bbox)
    return Sprite(sprite, int(round(anchor[0] - bbox[0])), int(round(anchor[1] - bbox[1])))


def _draw_number(cv: _Canvas, look: Look, back: bool, dy: float) -> None:
    """Jersey number: big on the back, small on the chest."""
    mask = digits_mask(look.number)
    target_h = (0.125 if back else 0.06) * cv.h
    scale = target_h / mask.height
    w = max(1, int(round(mask.width * scale * (1.0 if back else 0.9))))
    m = mask.resize((w, max(1, int(round(target_h)))), Image.BILINEAR)
    cx, cy = cv.px(0.0 if back else -0.045, (0.3 if back else 0.255) + dy)
    x0, y0 = int(round(cx - m.width / 2)), int(round(cy - m.height / 2))
    colour = Image.new("RGBA", m.size, tuple(look.number_rgb) + (255,))
    cv.img.paste(colour, (x0, y0), m)
