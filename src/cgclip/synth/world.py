"""Generate a whole synthetic sports or dance world: MOT sequences, identity table, track mapping, contact sheet.

The world is written into a staging folder next to ``out`` (``.<name>.partial``) and renamed onto ``out`` when
complete, so ``out`` is never half-written. Finished sequences in the staging folder are kept, so an interrupted run
resumes where it stopped (sequences are deterministic on their own).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cgclip import __version__
from cgclip.errors import CgclipError
from cgclip.io_utils import atomic_write_text, read_json, write_json
from cgclip.progress import progress
from cgclip.synth.contact_sheet import write_contact_sheet
from cgclip.synth.identities import TABLE_COLUMNS, Identity
from cgclip.synth.plan import SequencePlan, WorldSizes, plan_world, resolve_sizes
from cgclip.synth.sequence import MOT_STYLE, render_sequence

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class WorldSummary:
    """What :func:`generate_world` produced."""

    kind: str
    seed: int
    out: Path
    sizes: WorldSizes
    identities: dict[str, int]
    sequences: list[str]
    boxes: int
    occluded_boxes: int
    seconds: float = 0.0
    reused: bool = False
    extra: dict = field(default_factory=dict)


def _config(kind: str, seed: int, sizes: WorldSizes) -> dict:
    sep, first_id, digits = MOT_STYLE[kind]
    return {
        "kind": kind,
        "seed": int(seed),
        "sizes": asdict(sizes),
        "version": __version__,
        "format_version": FORMAT_VERSION,
        "mot_style": {
            "name": "SportsMOT" if kind == "sports" else "DanceTrack",
            "separator": sep,
            "first_track_id": first_id,
            "frame_name_digits": digits,
        },
    }


def _csv_text(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def mapping_rows(kind: str, plans: list[SequencePlan], identities: list[Identity]) -> list[dict]:
    """Rows of ``track_mapping.csv``: (split, sequence, track_id, identity_id) for every track."""
    first_id = MOT_STYLE[kind][1]
    return [
        {"split": p.split, "sequence": p.name, "track_id": k + first_id, "identity_id": identities[i].identity_id}
        for p in plans
        for k, i in enumerate(p.identities)
    ]


def _render_one(args: tuple) -> tuple:
    kind, plan, identities, sizes, seed, split_dir = args
    result = render_sequence(kind, plan, identities, sizes, seed, split_dir)
    return result.name, result.boxes, result.occluded_boxes


def _count_boxes(seq_dir: Path) -> tuple[int, int]:
    boxes = occluded = 0
    sep = ", " if ", " in (seq_dir / "gt" / "gt.txt").read_text()[:200] else ","
    for line in (seq_dir / "gt" / "gt.txt").read_text().splitlines():
        boxes += 1
        occluded += float(line.split(sep)[8]) < 1.0
    return boxes, occluded


def generate_world(
    kind: str,
    out: str | Path,
    seed: int = 0,
    *,
    preset: str = "default",
    workers: int = 1,
    overwrite: bool = False,
    contact_sheet: bool = True,
    **sizes: int | None,
) -> WorldSummary:
    """Render a synthetic ``kind`` ("sports" or "dance") world into ``out``; deterministic in ``seed``.

    ``preset`` ("default" or "tiny") gives the sizes; keyword ``sizes`` (train_identities, val_identities,
    train_sequences, val_sequences, people_per_sequence, frames, width, height, frame_rate) override it.
    ``workers`` > 1 renders sequences in parallel processes (same output). If ``out`` already holds the same world
    it is reused; a different world there needs ``overwrite=True``.
    """
    start = time.perf_counter()
    resolved = resolve_sizes(kind, preset, **sizes)
    config = _config(kind, seed, resolved)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CgclipError("output exists and is not a folder; choose another --out", path=out)
    if (out / "world.json").is_file() and not overwrite:
        existing = read_json(out / "world.json")
        if {k: existing.get(k) for k in config} == config:
            logger.info("%s already holds this world; reusing it", out)
            return _summary_from_disk(out, config, resolved, existing, start)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CgclipError(
            "output folder is not empty and holds a different world; pass --overwrite or choose another --out", path=out
        )
    identities, plans = plan_world(kind, resolved, seed)
    stage = out.parent / f".{out.name}.partial"
    if stage.exists() and (not (stage / "config.json").is_file() or read_json(stage / "config.json") != config):
        shutil.rmtree(stage)
    stage.mkdir(parents=True, exist_ok=True)
    write_json(stage / "config.json", config)
    todo = [p for p in plans if not (stage / p.split / p.name / "gt" / "gt.txt").is_file()]
    for split in ("train", "val"):
        (stage / split).mkdir(exist_ok=True)
    if len(todo) < len(plans):
        logger.info("resuming: %d of %d sequences already rendered", len(plans) - len(todo), len(plans))
    jobs = [(kind, p, identities, resolved, seed, stage / p.split) for p in todo]
    bar = progress(total=len(plans), initial=len(plans) - len(todo), desc=f"synth {kind}", unit="seq")
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            for _ in pool.map(_render_one, jobs):
                bar.update(1)
    else:
        for job in jobs:
            _render_one(job)
            bar.update(1)
    bar.close()
    atomic_write_text(stage / "identities.csv", _csv_text(TABLE_COLUMNS, [i.row() for i in identities]))
    mapping = mapping_rows(kind, plans, identities)
    atomic_write_text(stage / "track_mapping.csv", _csv_text(["split", "sequence", "track_id", "identity_id"], mapping))
    if contact_sheet:
        write_contact_sheet(stage, kind, identities, plans, seed)
    world = dict(
        config,
        identities={"train": resolved.train_identities, "val": resolved.val_identities},
        sequences={s: [p.name for p in plans if p.split == s] for s in ("train", "val")},
    )
    write_json(stage / "world.json", world)
    (stage / "config.json").unlink()
    _swap_into_place(stage, out)
    return _summary_from_disk(out, config, resolved, world, start, reused=False)


def _swap_into_place(stage: Path, out: Path) -> None:
    """Rename the finished staging folder onto ``out`` (replacing an old world or an empty folder)."""
    trash = None
    if out.exists():
        trash = out.parent / f".{out.name}.old"
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(out, trash)
    os.replace(stage, out)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _summary_from_disk(
    out: Path, config: dict, sizes: WorldSizes, world: dict, start: float, reused: bool = True
) -> WorldSummary:
    names = [n for s in ("train", "val") for n in world.get("sequences", {}).get(s, [])]
    boxes = occluded = 0
    for split in ("train", "val"):
        for name in world.get("sequences", {}).get(split, []):
            b, o = _count_boxes(out / split / name)
            boxes, occluded = boxes + b, occluded + o
    return WorldSummary(
        kind=config["kind"],
        seed=config["seed"],
        out=out,
        sizes=sizes,
        identities=dict(world.get("identities", {})),
        sequences=names,
        boxes=boxes,
        occluded_boxes=occluded,
        seconds=time.perf_counter() - start,
        reused=reused,
    )
