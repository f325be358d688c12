"""Contact sheet of a synthetic world: crops of several identities from different sequences, one row per identity.

The crops come from the rendered frames (the gt boxes), resized to fit 128x64 cells — what a ReID model sees — so a
person can check that teammates in the same uniform are told apart by their number and small cues.
"""

from __future__ import annotations

import io
import logging
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cgclip.io_utils import atomic_write_bytes
from cgclip.synth.identities import Identity
from cgclip.synth.plan import SequencePlan
from cgclip.synth.sequence import MOT_STYLE

logger = logging.getLogger(__name__)

CELL_H, CELL_W, GAP, LABEL_W = 128, 64, 6, 150
MAX_ROWS_PER_GROUP = 6
SEQUENCES_PER_IDENTITY = 3
CROPS_PER_SEQUENCE = 2


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def _read_gt(path: Path, sep: str) -> dict[int, list[tuple[int, int, int, int, int, float]]]:
    """Rows by track id: (frame, left, top, width, height, visibility)."""
    tracks: dict[int, list] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        v = line.split(sep)
        tracks.setdefault(int(v[1]), []).append((int(v[0]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), float(v[8])))
    return tracks


def fit_cell(crop: Image.Image, size: tuple[int, int] = (CELL_H, CELL_W), fill=(60, 60, 60)) -> Image.Image:
    """Resize ``crop`` to fit a (height, width) cell keeping its aspect ratio, centred on ``fill``."""
    h, w = size
    scale = min(h / crop.height, w / crop.width)
    resized = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BILINEAR)
    cell = Image.new("RGB", (w, h), fill)
    cell.paste(resized, ((w - resized.width) // 2, (h - resized.height) // 2))
    return cell


def _pick_groups(identities: list[Identity], plans: list[SequencePlan]) -> list[list[int]]:
    """The most-filmed train group and the most-filmed val group (identity indices)."""
    counts: dict[int, int] = {}
    for p in plans:
        for i in p.identities:
            counts[i] = counts.get(i, 0) + 1
    chosen = []
    for split in ("train", "val"):
        groups: dict[str, list[int]] = {}
        for i, ident in enumerate(identities):
            if ident.split == split and counts.get(i, 0) > 0:
                groups.setdefault(ident.group, []).append(i)
        if groups:
            best = max(sorted(groups), key=lambda g: sum(counts[i] for i in groups[g]))
            members = sorted(groups[best], key=lambda i: -counts[i])[:MAX_ROWS_PER_GROUP]
            chosen.append(sorted(members))
    return chosen


def write_contact_sheet(
    world_dir: Path,
    kind: str,
    identities: list[Identity],
    plans: list[SequencePlan],
    seed: int,
    path: Path | None = None,
) -> Path:
    """Write ``contact_sheet.png`` for the world rendered in ``world_dir``; returns its path."""
    rng = np.random.default_rng([int(seed), 2])
    sep, first_id, digits = MOT_STYLE[kind]
    rows = [i for group in _pick_groups(identities, plans) for i in group]
    n_cols = SEQUENCES_PER_IDENTITY * CROPS_PER_SEQUENCE
    title_h = 24
    sheet = Image.new(
        "RGB", (LABEL_W + n_cols * (CELL_W + GAP) + GAP, title_h + len(rows) * (CELL_H + GAP)), (250, 250, 250)
    )
    draw = ImageDraw.Draw(sheet)
    font, small = _font(14), _font(11)
    draw.text(
        (GAP, 4), f"{kind} world, seed {seed}: crops at 128x64 from different sequences", fill=(0, 0, 0), font=font
    )
    gt_cache: dict[str, dict] = {}
    for r, index in enumerate(rows):
        ident = identities[index]
        y = title_h + r * (CELL_H + GAP)
        lines = [
            ident.identity_id,
            ident.group,
            f"#{ident.number}" if ident.number else "",
            ident.hair,
            ident.shoes,
            ident.socks,
            ident.build,
            ident.accessories,
        ]
        ty = y + 2
        wrapped = [lines[0]] + [part for t in lines[1:] if t for part in textwrap.wrap(t, 25)]
        for k, text in enumerate(wrapped):
            if ty + 14 > y + CELL_H:
                break
            draw.text((GAP, ty), text, fill=(0, 0, 0) if k == 0 else (70, 70, 70), font=font if k == 0 else small)
            ty += 17 if k == 0 else 14
        appearances = [(p, k) for p in plans for k, i in enumerate(p.identities) if i == index]
        picks = [appearances[j] for j in sorted(rng.permutation(len(appearances))[:SEQUENCES_PER_IDENTITY])]
        col = 0
        for plan, k in picks:
            seq_dir = world_dir / plan.split / plan.name
            if plan.name not in gt_cache:
                gt_cache[plan.name] = _read_gt(seq_dir / "gt" / "gt.txt", sep)
            track = gt_cache[plan.name].get(k + first_id, [])
            good = [row for row in track if row[5] >= 0.9] or sorted(track, key=lambda row: -row[5])[:4]
            if not good:
                continue
            for j in np.linspace(0, len(good) - 1, CROPS_PER_SEQUENCE).round().astype(int):
                frame, left, top, w, h, _ = good[int(j)]
                with Image.open(seq_dir / "img1" / f"{frame:0{digits}d}.jpg") as img:
                    crop = img.convert("RGB").crop((left, top, left + w, top + h))
                sheet.paste(fit_cell(crop), (LABEL_W + GAP + col * (CELL_W + GAP), y))
                col += 1
    target = Path(path) if path is not None else world_dir / "contact_sheet.png"
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    atomic_write_bytes(target, buf.getvalue())
    logger.info("contact sheet: %s (%d identities)", target, len(rows))
    return target
