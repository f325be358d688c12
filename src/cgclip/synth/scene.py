"""Cameras and backgrounds: pitch, court and stage images, perspective scale, light, blur and JPEG quality.

A :class:`Camera` is fixed for a whole sequence (one sequence = one camera). Backgrounds are generated with numpy
(texture, stripes, spotlights) plus a few PIL lines; :func:`finish_frame` applies the camera's blur and light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SETTINGS = {
    "soccer": ["pitch"],
    "basketball": ["court"],
    "volleyball": ["sportsfloor"],
    "hip-hop": ["stage", "studio"],
    "ballet": ["stage", "studio"],
    "jazz": ["stage", "studio"],
}


@dataclass(frozen=True)
class Camera:
    """One sequence's camera: image size, floor geometry, person scale by depth, light, blur and JPEG quality."""

    width: int
    height: int
    scene: str
    setting: str
    horizon: float  # y of the far edge of the floor
    y_far: float  # smallest foot y people walk at
    y_near: float  # largest foot y
    far_px: float  # standing height (px) of an average person at y_far
    near_px: float  # ... at y_near
    brightness: float
    contrast: float
    tint: tuple[float, float, float]
    blur: float  # Gaussian radius in px, 0 = sharp
    jpeg_quality: int

    def person_height(self, foot_y: float | np.ndarray) -> float | np.ndarray:
        """Standing height in pixels of an average-height person whose feet are at ``foot_y``."""
        t = (np.asarray(foot_y, dtype=float) - self.y_far) / max(1.0, self.y_near - self.y_far)
        return self.far_px + (self.near_px - self.far_px) * t


def sample_camera(scene: str, width: int, height: int, rng: np.random.Generator, setting: str | None = None) -> Camera:
    """Draw a random camera for a sequence of ``scene`` (sport or dance genre) at ``width`` x ``height``."""
    setting = setting or str(rng.choice(SETTINGS[scene]))
    near_px = height * rng.uniform(0.32, 0.42)
    far_px = max(height * 0.215, near_px * rng.uniform(0.6, 0.8))
    y_far = far_px * 1.18 + height * rng.uniform(0.0, 0.07)
    horizon = y_far - far_px * rng.uniform(0.12, 0.35)
    dance = scene not in ("soccer", "basketball", "volleyball")
    tint_spread = 0.14 if dance else 0.07
    return Camera(
        width=width,
        height=height,
        scene=scene,
        setting=setting,
        horizon=float(horizon),
        y_far=float(y_far),
        y_near=float(height - 3),
        far_px=float(far_px),
        near_px=float(near_px),
        brightness=float(rng.uniform(0.78, 1.15)),
        contrast=float(rng.uniform(0.8, 1.15)),
        tint=tuple(float(v) for v in 1.0 + rng.uniform(-tint_spread, tint_spread, size=3)),  # type: ignore[arg-type]
        blur=float(rng.uniform(0.6, 1.5)) if rng.random() < 0.4 else 0.0,
        jpeg_quality=int(rng.integers(60, 93)),
    )


def _upsampled_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid resized bilinearly to ``shape`` (h, w)."""
    coarse = rng.uniform(0, 255, size=(max(2, cells[0]), max(2, cells[1]))).astype(np.uint8)
    img = Image.fromarray(coarse, "L").resize((shape[1], shape[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


def _floor_depth(cam: Camera, h: int) -> np.ndarray:
    """Perspective depth of each image row below the horizon (1 near the horizon, small near the camera)."""
    y = np.arange(h, dtype=np.float32)
    t = np.clip((y - cam.horizon) / max(1.0, h - cam.horizon), 0.0, 1.0)
    return 1.0 / (t + 0.25)


def _backdrop(cam: Camera, rng: np.random.Generator, w: int, top: int) -> np.ndarray:
    """Crowd in stands (sports) or curtain / wall (dance) above the floor."""
    if top <= 0:
        return np.zeros((0, w, 3), np.float32)
    if cam.setting in ("pitch", "court", "sportsfloor"):
        palette = rng.uniform(30, 220, size=(12, 3))
        idx = rng.integers(0, len(palette), size=(max(2, top // 5), max(2, w // 5)))
        crowd = Image.fromarray(palette[idx].astype(np.uint8), "RGB").resize((w, top), Image.NEAREST)
        out = np.asarray(crowd, np.float32) * rng.uniform(0.45, 0.7)
        board = max(3, int(top * 0.18))
        board_noise = _upsampled_noise(rng, (board, w), (2, w // 30))[..., None]
        out[-board:] = rng.uniform(20, 230, size=3) * 0.8 + board_noise * 25
        return out
    x = np.arange(w, dtype=np.float32)
    if cam.setting == "stage":
        base = rng.uniform(20, 110, size=3) * np.array([1.0, 0.5, 0.8])
        folds = 0.55 + 0.45 * np.sin(x / rng.uniform(6, 12)) ** 2
        return np.broadcast_to(base * folds[:, None], (top, w, 3)).astype(np.float32).copy()
    wall = rng.uniform(150, 215) * np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.85, 0.98)])
    out = np.broadcast_to(wall, (top, w, 3)).astype(np.float32).copy()
    mirror_top = int(top * 0.15)
    out[mirror_top:] = out[mirror_top:] * 0.75 + np.array([40, 50, 60]) * 0.25
    return out


def _floor(cam: Camera, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    depth = _floor_depth(cam, h)[:, None]
    grain = _upsampled_noise(rng, (h, w), (h // 3, w // 3)) * 0.5 + _upsampled_noise(rng, (h, w), (6, 10)) * 0.5
    if cam.setting == "pitch":
        base = np.array([52, 128, 52]) * rng.uniform(0.8, 1.15, size=3)
        stripes = np.where(np.floor(depth * rng.uniform(2.5, 4.5)) % 2 == 0, 1.06, 0.94)
        return base * stripes[..., None] * (1 + 0.07 * grain[..., None])
    if cam.setting in ("court", "studio"):
        base = np.array([196, 142, 86]) * rng.uniform(0.85, 1.12, size=3)
        planks = np.floor(depth * rng.uniform(10, 16))
        plank_tone = 1 + 0.06 * np.sin(planks * 12.9898 + rng.uniform(0, 6))
        streak = _upsampled_noise(rng, (h, w), (h // 2, 8))
        return base * plank_tone[..., None] * (1 + 0.05 * streak[..., None] + 0.03 * grain[..., None])
    if cam.setting == "sportsfloor":
        base = np.array([204, 104, 52]) if rng.random() < 0.5 else np.array([46, 96, 170])
        return base * rng.uniform(0.9, 1.1, size=3) * (1 + 0.04 * grain[..., None])
    # stage: dark floor lit by spotlight pools
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(0, w), rng.uniform(cam.horizon, h)
        rx, ry = rng.uniform(0.12, 0.3) * w, rng.uniform(0.08, 0.2) * h
        colour = rng.uniform(0.5, 1.0, size=3)
        light += np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))[..., None] * colour
    base = np.array([38, 34, 44]) * rng.uniform(0.8, 1.2, size=3)
    return base * (1 + 0.05 * grain[..., None]) + 120 * light


def _lines(cam: Camera, img: Image.Image, rng: np.random.Generator) -> None:
    """Painted field / court lines in perspective."""
    if cam.setting not in ("pitch", "court", "sportsfloor"):
        return
    w, h = img.size
    draw = ImageDraw.Draw(img)
    colour = (235, 235, 230) if cam.setting != "court" or rng.random() < 0.6 else (30, 30, 30)
    lw = max(1, int(round(h / 180)))
    top = cam.horizon + 0.15 * (cam.y_far - cam.horizon)
    cx = w * rng.uniform(0.3, 0.7)
    slant = w * rng.uniform(-0.25, 0.25)
    draw.line(((0, top), (w, top)), fill=colour, width=lw)
    draw.line(((cx, top), (cx + slant, h)), fill=colour, width=lw)
    mid_y = top + (h - top) * 0.45
    mx = cx + slant * 0.45
    rx, ry = w * 0.12, (h - top) * 0.16
    draw.ellipse((mx - rx, mid_y - ry, mx + rx, mid_y + ry), outline=colour, width=lw)
    if cam.setting != "pitch":
        key_x = w * rng.uniform(0.05, 0.2)
        draw.polygon(
            [(key_x, top), (key_x + w * 0.12, top), (key_x + w * 0.2, h), (key_x - w * 0.02, h)],
            outline=colour,
            width=lw,
        )


def render_background(cam: Camera, rng: np.random.Generator) -> Image.Image:
    """The static background of a sequence (RGB, camera size)."""
    w, h = cam.width, cam.height
    top = int(max(0, min(h, round(cam.horizon))))
    arr = np.empty((h, w, 3), np.float32)
    arr[:top] = _backdrop(cam, rng, w, top)
    arr[top:] = _floor(cam, rng, w, h)[top:]
    arr += rng.normal(0, 3.0, size=arr.shape).astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    _lines(cam, img, rng)
    return img


def _light_lut(cam: Camera) -> list[int]:
    v = np.arange(256, dtype=np.float32) / 255.0
    lut: list[int] = []
    for gain in cam.tint:
        out = ((v - 0.5) * cam.contrast + 0.5) * cam.brightness * gain
        lut += np.clip(np.round(out * 255), 0, 255).astype(int).tolist()
    return lut


def finish_frame(img: Image.Image, cam: Camera, lut: list[int] | None = None) -> Image.Image:
    """Apply the camera's blur and light (brightness, contrast, colour tint) to a rendered RGB frame."""
    if cam.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    return img.point(lut if lut is not None else _light_lut(cam))


def light_lut(cam: Camera) -> list[int]:
    """The 768-entry lookup table :func:`finish_frame` uses; compute once per sequence."""
    return _light_lut(cam)
