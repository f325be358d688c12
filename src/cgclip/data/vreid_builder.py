"""MOT → VReID: turn MOT-format sequences into a video ReID dataset folder (SportsVReID / DanceVReID construction).

Steps (SPEC §3.1): read every sequence of the train and val split folders; crop every box clipped to the image;
drop crops that are too small, barely visible, or whose frame image is missing or cannot be decoded (a warning and
a count, never a silent drop; for a sequence stored as a video, :mod:`cgclip.data.video`, a frame beyond the
video's end is a missing image); cut each track into tracklets of at most ``max_len`` consecutive kept frames (a gap
cuts too) and drop tracklets shorter than ``min_len``; give each track a global identity through the identity table
and mapping (:mod:`cgclip.data.identity_table`); one camera per sequence; the val split becomes query/gallery by
:func:`cgclip.data.vreid.select_queries`.

Output: ``OUT/crops/<split>/<sequence>/<track_id>_<segment>/<frame>.jpg``, ``OUT/identities.csv`` and, written
last and atomically, ``OUT/manifest.json`` — the truth about the dataset. A re-run on the same folder reuses crops
whose content key (source file, box, JPEG quality) is unchanged, moves crops whose tracklet segment changed, and
removes crops the new manifest does not reference.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cgclip import __version__
from cgclip.data import identity_table as idt
from cgclip.data.crop_store import CropStore
from cgclip.data.image_io import FrameReadError, read_rgb
from cgclip.data.mot import MotBox, MotSequence, group_tracks, list_sequences, read_gt, read_sequence
from cgclip.data.tracklet import Tracklet, split_statistics
from cgclip.data.video import iter_frames
from cgclip.data.vreid import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    QUERY_GALLERY_RULE,
    box_drop_reason,
    clip_box,
    cut_track,
    select_queries,
)
from cgclip.errors import ConfigError, DataError
from cgclip.io_utils import atomic_write_text, check_output_dir, read_json, write_json
from cgclip.progress import progress

log = logging.getLogger(__name__)

DROP_REASONS = ("outside_image", "too_small", "low_visibility", "missing_image", "corrupt_image", "short_tracklet")


@dataclass
class BuildSummary:
    """What :func:`build_vreid` did.

    Attributes:
        out: the dataset folder.
        sequences: sequences per split folder.
        cameras: number of cameras (= sequences).
        tracklets: tracklets in ``train``, ``query`` and ``gallery``.
        identities: identities in ``train``, ``val`` (query + gallery), ``query`` and ``distractor`` (val
            identities without a query).
        dropped: crops dropped, by reason (see :data:`DROP_REASONS`).
        ignored_rows: gt rows left out by the conf/class filter.
        corrupt_frames: source frames that could not be decoded (paths relative to the MOT root).
        crops_written, crops_reused: crops encoded by this run / kept or moved from a previous run.
        unused_mapping_rows, unused_identities: mapping rows and table identities no track uses.
    """

    out: str
    sequences: dict[str, int] = field(default_factory=dict)
    cameras: int = 0
    tracklets: dict[str, int] = field(default_factory=dict)
    identities: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    ignored_rows: int = 0
    corrupt_frames: list[str] = field(default_factory=list)
    crops_written: int = 0
    crops_reused: int = 0
    unused_mapping_rows: int = 0
    unused_identities: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return asdict(self)


@dataclass
class _Piece:
    split: str
    seq: MotSequence
    camid: int
    track_id: int
    segment: int
    frames: list[int]
    rels: list[str]


def _check_parameters(
    splits: Sequence[str],
    min_height: int,
    min_width: int,
    min_visibility: float,
    max_len: int,
    min_len: int,
    jpeg_quality: int,
) -> None:
    if not 1 <= len(splits) <= 2 or len(set(splits)) != len(splits):
        raise ConfigError(f"splits must be (train folder[, val folder]), got {tuple(splits)}")
    if min_height < 1 or min_width < 1:
        raise ConfigError(f"min_height and min_width must be >= 1, got {min_height} and {min_width}")
    if not 0.0 <= min_visibility <= 1.0:
        raise ConfigError(f"min_visibility must be in [0, 1], got {min_visibility}")
    if min_len < 1 or max_len < min_len:
        raise ConfigError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")


def _crop_sequence(
    split: str,
    seq: MotSequence,
    camid: int,
    tracks: dict[int, list[MotBox]],
    out: Path,
    mot_root: Path,
    p: dict[str, Any],
    summary: BuildSummary,
) -> list[_Piece]:
    """Crop one sequence; returns its kept tracklets (pieces) and updates ``summary``."""
    candidates: dict[int, dict[int, tuple[int, int, int, int]]] = {}
    for tid, boxes in tracks.items():
        kept: dict[int, tuple[int, int, int, int]] = {}
        for box in boxes:
            reason = box_drop_reason(box, seq.width, seq.height, p["min_width"], p["min_height"], p["min_visibility"])
            if reason is None and seq.frame_path(box.frame) is None:
                reason = "missing_image"
            if reason is not None:
                summary.dropped[reason] += 1
                continue
            kept[box.frame] = clip_box(box, seq.width, seq.height)
        candidates[tid] = kept
    store = CropStore(out / "crops" / split / seq.name, p["jpeg_quality"])
    digits = max(6, seq.frame_digits)
    corrupt: set[int] = set()
    lacking: set[int] = set()  # frames the video turned out not to have
    size_warned = False
    while True:
        pieces = []
        for tid, kept in candidates.items():
            for segment, frames in enumerate(
                cut_track([f for f in kept if f not in corrupt and f not in lacking], p["max_len"], p["min_len"])
            ):
                rels = [f"{tid}_{segment}/{f:0{digits}d}.jpg" for f in frames]
                pieces.append(_Piece(split, seq, camid, tid, segment, frames, rels))
        todo: dict[int, list[tuple[str, str, tuple[int, int, int, int]]]] = {}
        for piece in pieces:
            for frame, rel in zip(piece.frames, piece.rels):
                box = candidates[piece.track_id][frame]
                key = store.key(piece.track_id, frame, seq.frame_path(frame), box)
                if not store.reuse(rel, key):
                    todo.setdefault(frame, []).append((rel, key, box))
        if not todo:
            break
        sources = iter_frames(seq.video, set(todo)) if seq.video is not None else ((f, None) for f in sorted(todo))
        decoded: set[int] = set()
        for frame, image in progress(sources, total=len(todo), desc=f"crop {split}/{seq.name}", unit="frame"):
            decoded.add(frame)
            src = seq.frame_path(frame)
            if image is None:
                try:
                    image = read_rgb(str(src))
                except FrameReadError as exc:
                    corrupt.add(frame)
                    summary.corrupt_frames.append(str(Path(src).relative_to(mot_root)))
                    log.warning("%s: cannot decode (%s); its %d crops are dropped", src, exc.reason, len(todo[frame]))
                    continue
            if image.size != (seq.width, seq.height) and not size_warned:
                size_warned = True
                log.warning(
                    "%s: image is %dx%d but seqinfo.ini says %dx%d; boxes are clipped to the latter",
                    src,
                    *image.size,
                    seq.width,
                    seq.height,
                )
            for rel, key, box in todo[frame]:
                store.write(rel, key, image.crop(box))
        missing = set(todo) - decoded
        if missing:  # a video shorter than its frame count said: like missing images
            lacking |= missing
            n, first = len(missing), min(missing)
            log.warning("%s: ends before frame %d (%d wanted frames); they count as missing_image", seq.video, first, n)
    n_corrupt = sum(1 for kept in candidates.values() for f in kept if f in corrupt)
    n_lacking = sum(1 for kept in candidates.values() for f in kept if f in lacking)
    n_kept = sum(len(pc.frames) for pc in pieces)
    summary.dropped["corrupt_image"] += n_corrupt
    summary.dropped["missing_image"] += n_lacking
    summary.dropped["short_tracklet"] += sum(len(kept) for kept in candidates.values()) - n_corrupt - n_lacking - n_kept
    summary.crops_written += len(store.written)
    summary.crops_reused += store.save([rel for pc in pieces for rel in pc.rels])
    return pieces


def _prune(crops: Path, keep: set[str]) -> int:
    """Delete files under ``crops`` not in ``keep`` (paths relative to its parent): stale crops, temp files."""
    removed = 0
    for dirpath, _, filenames in os.walk(crops, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path.relative_to(crops.parent).as_posix() not in keep:
                path.unlink()
                removed += 1
        if dirpath != str(crops) and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return removed


#: Marks a folder as a build-mot output (written before the first crop, so an interrupted build is resumable).
BUILD_MARKER = ".cgclip-build"


def _is_our_build(out: Path) -> bool:
    if (out / BUILD_MARKER).is_file():
        return True
    try:
        manifest = read_json(out / MANIFEST)
    except Exception:  # noqa: BLE001 - missing, unreadable or foreign: not ours
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


_Sequences = list[tuple[str, MotSequence, dict[int, list[MotBox]]]]
_Parts = dict[str, list[tuple[Tracklet, _Piece]]]


def _check_output(out: Path) -> None:
    """Refuse a folder build-mot did not write (before any input is read)."""
    check_output_dir(
        out,
        _is_our_build,
        fix="choose a new --out (build-mot writes only into a new or empty folder, or one it built)",
    )


def _claim_output(out: Path) -> None:
    """Create the output folder and mark it as ours (once the input has passed its checks)."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / BUILD_MARKER).exists():
        atomic_write_text(out / BUILD_MARKER, "written by cgclip build-mot; this folder is a cgclip dataset build\n")


def _read_sequences(
    mot_root: Path, splits: Sequence[str], classes: Sequence[int] | None, keep_zero_conf: bool, summary: BuildSummary
) -> _Sequences:
    """Every sequence of every split with its ground-truth tracks; one camera per sequence, in this order."""
    sequences: _Sequences = []
    for split in splits:
        seq_dirs = list_sequences(mot_root / split)
        summary.sequences[split] = len(seq_dirs)
        for seq_dir in seq_dirs:
            seq = read_sequence(seq_dir)
            boxes, ignored = read_gt(seq.gt_path, classes, keep_zero_conf)
            summary.ignored_rows += ignored
            sequences.append((split, seq, group_tracks(boxes, seq.gt_path)))
    summary.cameras = len(sequences)
    return sequences


def _resolve_identities(
    sequences: _Sequences,
    identities_csv: str | Path | None,
    mapping_csv: str | Path | None,
    splits: Sequence[str],
    summary: BuildSummary,
) -> idt.IdentityResolution:
    """The identity of every track, from the identity table and the track mapping (each optional)."""
    table = idt.read_identity_table(identities_csv) if identities_csv is not None else None
    mapping = idt.read_track_mapping(mapping_csv) if mapping_csv is not None else []
    keys = [(split, seq.name, tid) for split, seq, tracks in sequences for tid in tracks]
    resolved = idt.resolve_identities(
        keys, mapping, table, splits, mapping_csv or "track_mapping.csv", identities_csv or "identities.csv"
    )
    summary.unused_mapping_rows = resolved.unused_mapping_rows
    summary.unused_identities = len(resolved.unused_identities)
    return resolved


def _split_parts(
    pieces: list[_Piece],
    resolved: idt.IdentityResolution,
    splits: Sequence[str],
    seed: int,
    mot_root: Path,
    summary: BuildSummary,
) -> _Parts:
    """Tracklets of the train split, and the val split's query / gallery (:func:`select_queries`)."""
    pid_of = {ident: i for i, ident in enumerate(resolved.order)}
    by_split: _Parts = {s: [] for s in splits}
    for pc in pieces:
        ident = resolved.track_identity[(pc.split, pc.seq.name, pc.track_id)]
        frames = tuple(f"crops/{pc.split}/{pc.seq.name}/{rel}" for rel in pc.rels)
        by_split[pc.split].append((Tracklet(frames, pid_of[ident], pc.camid, pc.seq.name, ident), pc))
    train = by_split[splits[0]]
    if not train:
        raise DataError(
            f"no train tracklet survived (dropped: {summary.dropped}); lower --min-height/--min-width/"
            "--min-visibility/--min-len",
            path=mot_root / splits[0],
        )
    val = by_split[splits[1]] if len(splits) > 1 else []
    q_idx, g_idx = select_queries([t for t, _ in val], seed)
    parts = {"train": train, "query": [val[i] for i in q_idx], "gallery": [val[i] for i in g_idx]}
    if len(splits) > 1 and not q_idx:
        log.warning("no val identity has tracklets in two sequences: the dataset has no query")
    summary.tracklets = {name: len(items) for name, items in parts.items()}
    query_ids = {t.identity for t, _ in parts["query"]}
    val_ids = {t.identity for t, _ in val}
    summary.identities = {
        "train": len({t.identity for t, _ in train}),
        "val": len(val_ids),
        "query": len(query_ids),
        "distractor": len(val_ids - query_ids),
    }
    return parts


def _manifest(
    params: dict[str, Any],
    sources: dict[str, str | None],
    sequences: _Sequences,
    resolved: idt.IdentityResolution,
    parts: _Parts,
    summary: BuildSummary,
) -> dict[str, Any]:
    """The dataset folder's ``manifest.json`` (format, parameters, sources, cameras, identities, tracklets)."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_by": f"cgclip {__version__}",
        "parameters": params,
        "sources": sources,
        "query_gallery_rule": QUERY_GALLERY_RULE,
        "cameras": [{"camid": i, "split": s, "sequence": q.name} for i, (s, q, _) in enumerate(sequences)],
        "identities": resolved.order,
        "statistics": {name: split_statistics([t for t, _ in items]) for name, items in parts.items()},
        "dropped": summary.dropped,
        "corrupt_frames": summary.corrupt_frames,
        "splits": {
            name: [
                {
                    **t.to_dict(),
                    "track_id": pc.track_id,
                    "segment": pc.segment,
                    "source_frames": [pc.frames[0], pc.frames[-1]],
                }
                for t, pc in items
            ]
            for name, items in parts.items()
        },
    }


def build_vreid(
    mot_root: str | Path,
    out: str | Path,
    identities_csv: str | Path | None = None,
    mapping_csv: str | Path | None = None,
    splits: Sequence[str] = ("train", "val"),
    min_height: int = 32,
    min_width: int = 12,
    min_visibility: float = 0.3,
    max_len: int = 50,
    min_len: int = 2,
    seed: int = 0,
    jpeg_quality: int = 95,
    classes: Sequence[int] | None = (1,),
    keep_zero_conf: bool = False,
) -> BuildSummary:
    """Build a VReID dataset folder ``out`` from the MOT data under ``mot_root``.

    Args:
        mot_root: folder holding one sub-folder per split (``splits``), each holding MOT sequences.
        out: the dataset folder to write (created; re-running on it resumes and replaces the previous build).
        identities_csv: identity table (``identities.csv``); None: identities come from the mapping alone.
        mapping_csv: track mapping (``track_mapping.csv``); None: every track is its own identity.
        splits: (train folder, val folder); a single name builds only a train split.
        min_height, min_width: smallest crop kept (pixels, after clipping to the image).
        min_visibility: smallest gt visibility kept.
        max_len, min_len: tracklets have ``min_len..max_len`` consecutive kept frames.
        seed: picks the query tracklet of each identity and sequence.
        jpeg_quality: JPEG quality of the crops.
        classes: gt classes kept (default pedestrians); rows without a class are kept; None keeps all.
        keep_zero_conf: also use gt rows whose ``conf`` is 0 (ignored by default, as in MOT evaluation).

    Raises:
        ConfigError: invalid parameters. DataError: malformed input (names file and line), a train/val identity
            leak, a mapping to an identity missing from the table, or no train tracklet at all.
    """
    _check_parameters(splits, min_height, min_width, min_visibility, max_len, min_len, jpeg_quality)
    mot_root, out = Path(mot_root).resolve(), Path(out).resolve()
    _check_output(out)
    params = dict(
        splits=list(splits),
        min_height=min_height,
        min_width=min_width,
        min_visibility=min_visibility,
        max_len=max_len,
        min_len=min_len,
        seed=seed,
        jpeg_quality=jpeg_quality,
        classes=None if classes is None else sorted(classes),
        keep_zero_conf=keep_zero_conf,
    )
    summary = BuildSummary(str(out))
    sequences = _read_sequences(mot_root, splits, classes, keep_zero_conf, summary)
    resolved = _resolve_identities(sequences, identities_csv, mapping_csv, splits, summary)
    _claim_output(out)
    (out / MANIFEST).unlink(missing_ok=True)  # the folder is not a valid dataset until the new manifest is written
    pieces: list[_Piece] = []
    for camid, (split, seq, tracks) in enumerate(sequences):
        pieces += _crop_sequence(split, seq, camid, tracks, out, mot_root, params, summary)
    parts = _split_parts(pieces, resolved, splits, seed, mot_root, summary)
    idt.write_identity_table(out / "identities.csv", resolved.records)
    sources = {
        "mot_root": str(mot_root),
        "identities_csv": str(Path(identities_csv).resolve()) if identities_csv else None,
        "mapping_csv": str(Path(mapping_csv).resolve()) if mapping_csv else None,
    }
    write_json(out / MANIFEST, _manifest(params, sources, sequences, resolved, parts, summary))
    keep = {f for items in parts.values() for t, _ in items for f in t.frames}
    keep |= {f"crops/{split}/{seq.name}/{CropStore.KEYS}" for split, seq, _ in sequences}
    removed = _prune(out / "crops", keep)
    if removed:
        log.info("removed %d stale files from %s", removed, out / "crops")
    log.info("built %s: %s tracklets, dropped %s", out, summary.tracklets, summary.dropped)
    return summary
