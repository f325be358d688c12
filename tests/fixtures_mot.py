"""Helpers that write tiny MOT-format worlds for tests: both gt separators, 0- and 1-based track ids, 6- and
8-digit frame names, a gap, a small box, a box outside the image, a low-visibility box, a track longer than
``max_len``, unmapped tracks, identities seen in one or two val sequences, plus ``identities.csv`` and
``track_mapping.csv``.

:data:`WORLD` describes the world; :data:`BUILD` are the builder parameters the expectations in the tests assume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = (96, 64)  # (width, height)
BUILD = dict(max_len=4, min_len=2, min_height=32, min_width=12, min_visibility=0.3, seed=0)

# A track is (track_id, identity or None, rows); a row is (frame, overrides) with overrides for
# left/width/height/visibility/conf/cls. Default box: left = 4 + 18 * slot, top = 12, 16 x 40, conf 1, class 1.
Row = tuple[int, dict]


def _rows(frames: Sequence[int], **special: dict) -> list[Row]:
    return [(f, dict(special.get(f"f{f}", {}))) for f in frames]


WORLD: dict[str, dict] = {
    "train/TA": dict(
        sep=", ",
        digits=8,
        length=10,
        size_in_ini=True,
        tracks=[
            (0, "ath_a", _rows(range(1, 11))),  # 10 frames → 4 + 4 + 2
            (1, "ath_b", _rows(range(1, 7), f3={"height": 10})),  # small box at 3 → 1-2, 4-6
            (2, None, _rows(range(1, 6), f4={"visibility": 0.1})),  # low vis at 4 → 1-3; 5 too short
            (7, None, _rows(range(1, 4), f1={"conf": 0}, f2={"conf": 0}, f3={"conf": 0})),  # all conf 0: ignored
            (8, None, _rows(range(1, 3), f1={"cls": 7}, f2={"cls": 7})),  # not a pedestrian: ignored
        ],
    ),
    "train/TB": dict(
        sep=",",
        digits=6,
        length=4,
        size_in_ini=False,
        tracks=[
            (1, "ath_a", _rows(range(1, 5))),  # 1-4
            (2, "ath_c", _rows(range(1, 5), f2={"left": -30.0})),  # outside at 2 → 1 short, 3-4
        ],
    ),
    "val/VA": dict(
        sep=",",
        digits=6,
        length=6,
        size_in_ini=True,
        tracks=[
            (1, "P1", _rows(range(1, 7))),  # 1-4, 5-6
            (2, "P2", _rows(range(1, 4))),  # 1-3
            (3, None, _rows(range(1, 5))),  # unmapped → distractor val/VA/3
            (4, "P4", _rows([1, 2, 4, 5])),  # gap at 3 → 1-2, 4-5
        ],
    ),
    "val/VB": dict(
        sep=", ",
        digits=8,
        length=5,
        size_in_ini=True,
        tracks=[
            (0, "P1", _rows(range(1, 6))),  # 1-4; 5 too short
            (1, "P3", _rows(range(1, 3))),  # P3 only here → distractor
            (2, "P4", _rows([1, 2, 4, 5])),  # 1-2, 4-5
        ],
    ),
    "val/VC": dict(
        sep=",",
        digits=6,
        length=3,
        size_in_ini=True,
        tracks=[
            (5, "P2", _rows(range(1, 4))),  # 1-3
        ],
    ),
}
TABLE = [
    ("ath_a", "train", "soccer", "male", "red", "7"),
    ("ath_b", "train", "soccer", "male", "red", "9"),
    ("ath_c", "train", "soccer", "female", "blue", "3"),
    ("P1", "val", "basketball", "male", "white", "10"),
    ("P2", "val", "basketball", "male", "white", "11"),
    ("P3", "val", "basketball", "female", "black", "4"),
    ("P4", "val", "basketball", "male", "black", "23"),
    ("U9", "val", "dance", "female", "", ""),
]


def gt_row(track_id: int, slot: int, frame: int, sep: str, **o: float) -> str:
    """One gt.txt line of the fixture's default box, with overrides ``o``."""
    vals = [
        frame,
        track_id,
        o.get("left", 4.0 + 18 * slot),
        o.get("top", 12.0),
        o.get("width", 16.0),
        o.get("height", 40.0),
        o.get("conf", 1),
        o.get("cls", 1),
        o.get("visibility", 1.0),
    ]
    return sep.join(str(v) for v in vals)


def write_sequence(
    root: Path,
    rel: str,
    sep: str,
    digits: int,
    length: int,
    size_in_ini: bool,
    tracks: Sequence[tuple[int, str | None, list[Row]]],
    gt_text: str | None = None,
) -> Path:
    """Write one sequence ``root/rel`` (frames with one coloured box per track; gt.txt; seqinfo.ini)."""
    seq = root / rel
    (seq / "img1").mkdir(parents=True, exist_ok=True)
    (seq / "gt").mkdir(exist_ok=True)
    width, height = IMAGE_SIZE
    ini = [f"[Sequence]\nname={seq.name}\nimDir=img1\nframeRate=25\nseqLength={length}"]
    if size_in_ini:
        ini.append(f"imWidth={width}\nimHeight={height}")
    ini.append("imExt=.jpg\n")
    (seq / "seqinfo.ini").write_text("\n".join(ini))
    lines = []
    for frame in range(1, length + 1):
        arr = np.full((height, width, 3), 90, dtype=np.uint8)
        for slot, (tid, _, rows) in enumerate(tracks):
            for f, over in rows:
                if f == frame:
                    x0 = max(0, int(over.get("left", 4 + 18 * slot)))
                    arr[12:52, x0 : x0 + 16] = ((40 * tid) % 256, (70 * slot) % 256, 200)
        Image.fromarray(arr).save(seq / "img1" / f"{frame:0{digits}d}.jpg", quality=90)
    for slot, (tid, _, rows) in enumerate(tracks):
        lines += [gt_row(tid, slot, f, sep, **over) for f, over in rows]
    (seq / "gt" / "gt.txt").write_text(gt_text if gt_text is not None else "\n".join(lines) + "\n")
    return seq


def write_tables(root: Path, mapping_extra: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``identities.csv`` (with an unused row U9) and ``track_mapping.csv`` for :data:`WORLD`."""
    table = ["identity_id,split,scene,gender,uniform,number,hair,shoes,socks,build,accessories,others"]
    table += [",".join(row) + ",short,white,,,," for row in TABLE]
    (root / "identities.csv").write_text("\n".join(table) + "\n")
    mapping = ["split,sequence,track_id,identity_id"]
    for rel, seq in WORLD.items():
        split, name = rel.split("/")
        mapping += [f"{split},{name},{tid},{ident}" for tid, ident, _ in seq["tracks"] if ident]
    mapping += list(mapping_extra)
    (root / "track_mapping.csv").write_text("\n".join(mapping) + "\n")
    return root / "identities.csv", root / "track_mapping.csv"


def write_mot_world(root: Path, mapping_extra: Sequence[str] = ()) -> Path:
    """Write the whole :data:`WORLD` under ``root`` (``train/`` and ``val/`` plus the two CSV files)."""
    for rel, spec in WORLD.items():
        write_sequence(root, rel, **spec)
    write_tables(root, mapping_extra)
    return root
