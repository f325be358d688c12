"""Head, hair, face and accessories of a rendered person (helpers of :mod:`cgclip.synth.person`).

All functions draw on the person canvas ``cv`` (body units: height 1, head top at y = 0 before ``dy``).
"""

from __future__ import annotations

import math

from cgclip.synth.identities import Look

HEAD_Y, HEAD_RX, HEAD_RY = 0.075, 0.054, 0.068
EYE = (36, 28, 28)
FRAME = (18, 18, 20)


def _mix(a, b, t: float):
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


def _shade(c, f: float):
    return tuple(max(0, min(255, int(v * f))) for v in c)


def _chord(cv, x0: float, y0: float, x1: float, y1: float, fill) -> None:
    """Upper half of the ellipse inscribed in the body-unit box (x0, y0, x1, y1)."""
    a, b = cv.px(x0, y0), cv.px(x1, y1)
    cv.draw.chord((a[0], a[1], b[0], b[1]), 180, 360, fill=fill)


def _ring(cv, cx: float, cy: float, r: float, colour, width: float) -> None:
    x, y = cv.px(cx, cy)
    rr = r * cv.h
    cv.draw.ellipse((x - rr, y - rr, x + rr, y + rr), outline=colour, width=max(1, int(round(width * cv.h))))


def draw_hair_and_face(cv, look: Look, view: str, dy: float) -> None:
    """Hair (behind and on the head), head and face features for ``view``."""
    cy = HEAD_Y + dy
    rx, ry = HEAD_RX, HEAD_RY
    hair = look.hair_rgb
    style = look.hair_style
    if style == "buzz":
        hair = _mix(hair, look.skin, 0.35)
    d = 1.0 if view == "right" else -1.0
    side = view in ("left", "right")
    # Layer behind the head.
    if style == "long":
        if view == "front":
            for s in (-1.0, 1.0):
                cv.polygon(
                    [
                        (s * (rx - 0.012), cy - 0.01),
                        (s * (rx + 0.018), cy - 0.01),
                        (s * (rx + 0.026), cy + 0.17),
                        (s * (rx - 0.012), cy + 0.17),
                    ],
                    hair,
                )
        elif view == "back":
            cv.polygon(
                [(-rx - 0.01, cy - 0.02), (rx + 0.01, cy - 0.02), (rx + 0.022, cy + 0.19), (-rx - 0.022, cy + 0.19)],
                hair,
            )
        else:
            cv.polygon(
                [
                    (-d * (rx + 0.012), cy - 0.02),
                    (d * 0.01, cy - 0.02),
                    (d * 0.0, cy + 0.18),
                    (-d * (rx + 0.024), cy + 0.18),
                ],
                hair,
            )
    elif style == "ponytail":
        if view == "back":
            cv.ellipse(0.0, cy + 0.095, 0.024, 0.075, hair)
        elif side:
            cv.ellipse(-d * (rx + 0.016), cy + 0.055, 0.024, 0.065, hair)
        else:
            cv.ellipse(rx + 0.01, cy + 0.05, 0.016, 0.045, hair)
    elif style == "bun":
        if view == "front":
            cv.ellipse(0.0, cy - ry - 0.006, 0.034, 0.03, hair)
        elif view == "back":
            cv.ellipse(0.0, cy - 0.025, 0.036, 0.034, _shade(hair, 0.9))
        else:
            cv.ellipse(-d * (rx - 0.004), cy - 0.045, 0.034, 0.032, hair)
    # Head and hair on it.
    if side:
        if style != "shaved":
            cv.ellipse(-d * 0.01, cy - 0.01, rx * 1.06, ry * 1.02, hair)
            cv.ellipse(d * 0.014, cy + 0.012, rx * 0.9, ry * 0.88, look.skin)
        else:
            cv.ellipse(0.0, cy, rx, ry, look.skin)
        cv.ellipse(d * (rx + 0.003), cy + 0.012, 0.011, 0.012, look.skin)  # nose
        cv.ellipse(d * rx * 0.55, cy + 0.0, 0.007, 0.007, EYE)
        if style == "ponytail" or style == "bun":
            cv.segment((-d * rx * 0.7, cy - 0.03), (-d * (rx + 0.01), cy + 0.0), 0.016, _shade(hair, 0.8))
        if style == "curly":
            _curls(cv, cy, hair, view)
        return
    cv.ellipse(0.0, cy, rx, ry, look.skin)
    if view == "back":
        if style != "shaved":
            cv.ellipse(0.0, cy - 0.004, rx * 1.06, ry * 1.02, hair)
            if style == "ponytail":
                cv.ellipse(0.0, cy + 0.01, 0.02, 0.014, _shade(hair, 0.75))
            if style == "curly":
                _curls(cv, cy, hair, view)
        return
    # Front view: face then hair cap.
    for s in (-1.0, 1.0):
        cv.ellipse(s * 0.021, cy + 0.006, 0.0085, 0.0065, EYE)
    cv.segment((-0.012, cy + 0.041), (0.012, cy + 0.041), 0.006, _shade(look.skin, 0.72))
    if style == "shaved":
        return
    if style == "buzz":
        _chord(cv, -rx * 1.03, cy - ry * 1.05, rx * 1.03, cy + ry * 0.1, hair)
    elif style in ("ponytail", "bun"):
        _chord(cv, -rx * 1.05, cy - ry * 1.08, rx * 1.05, cy + ry * 0.25, hair)
    else:
        _chord(cv, -rx * 1.1, cy - ry * 1.12, rx * 1.1, cy + ry * 0.35, hair)
        if style == "long":
            for s in (-1.0, 1.0):
                cv.polygon(
                    [
                        (s * rx * 0.8, cy - ry * 0.4),
                        (s * rx * 1.1, cy - ry * 0.35),
                        (s * rx * 1.15, cy + 0.06),
                        (s * rx * 0.92, cy + 0.06),
                    ],
                    hair,
                )
    if style == "curly":
        _curls(cv, cy, hair, view)


def _curls(cv, cy: float, hair, view: str) -> None:
    """Curly volume: small circles along the top of the head."""
    shift = {"left": 0.012, "right": -0.012}.get(view, 0.0)
    for i in range(7):
        t = math.pi * (0.05 + 0.9 * i / 6)
        x = -math.cos(t) * HEAD_RX * 1.05 + shift
        y = cy - math.sin(t) * HEAD_RY * 1.05 + 0.005
        cv.ellipse(x, y, 0.022, 0.022, hair)


def draw_accessories_head(cv, look: Look, view: str, dy: float) -> None:
    """Headband, cap, glasses and necklace."""
    cy = HEAD_Y + dy
    rx, ry = HEAD_RX, HEAD_RY
    d = 1.0 if view == "right" else -1.0
    side = view in ("left", "right")
    for kind, rgb in look.accessories:
        if kind == "headband":
            y = cy - 0.035
            hw = rx * math.sqrt(max(0.0, 1 - (0.035 / ry) ** 2)) * 1.06
            if side:
                cv.segment((-d * hw, y + 0.006), (d * hw * 0.9, y - 0.004), 0.02, rgb)
            else:
                cv.segment((-hw, y), (hw, y), 0.02, rgb)
        elif kind == "cap":
            _chord(cv, -rx * 1.12, cy - ry * 1.2, rx * 1.12, cy + ry * 0.05, rgb)
            if view == "front":
                cv.ellipse(0.0, cy - ry * 0.55, rx * 1.08, 0.014, _shade(rgb, 0.8))
            elif side:
                cv.segment((d * rx * 0.4, cy - ry * 0.55), (d * (rx + 0.05), cy - ry * 0.5), 0.016, _shade(rgb, 0.8))
        elif kind == "glasses":
            if view == "front":
                for s in (-1.0, 1.0):
                    _ring(cv, s * 0.022, cy + 0.005, 0.016, FRAME, 0.006)
                cv.segment((-0.007, cy + 0.004), (0.007, cy + 0.004), 0.005, FRAME)
            elif side:
                _ring(cv, d * rx * 0.62, cy + 0.004, 0.013, FRAME, 0.006)
                cv.segment((d * rx * 0.45, cy + 0.0), (-d * rx * 0.2, cy - 0.004), 0.005, FRAME)
        elif kind == "necklace" and view == "front":
            x0, y0 = cv.px(-0.05, 0.14 + dy)
            x1, y1 = cv.px(0.05, 0.24 + dy)
            cv.draw.arc((x0, y0, x1, y1), 10, 170, fill=rgb, width=max(1, int(0.009 * cv.h)))


def draw_accessories_body(cv, look: Look, arm: str, joints: tuple, shade: float) -> None:
    """Wristbands (both arms) and the captain's armband (left upper arm) on one arm."""
    sho, elbow, wrist = joints

    def lerp(a, b, t):
        return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t

    for kind, rgb in look.accessories:
        if kind == "wristbands":
            cv.segment(lerp(elbow, wrist, 0.76), lerp(elbow, wrist, 0.95), 0.056 * look.width, _shade(rgb, shade))
        elif kind == "armband" and arm == "l_arm":
            cv.segment(lerp(sho, elbow, 0.42), lerp(sho, elbow, 0.62), 0.076 * look.width, _shade(rgb, shade))
