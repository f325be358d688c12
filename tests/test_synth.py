"""Tests of the synthetic sports/dance world (tiny size): formats, tables, schedule, determinism, CLI, crops."""

from __future__ import annotations

import configparser
import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cgclip.cli import main
from cgclip.errors import CgclipError
from cgclip.synth import (
    TABLE_COLUMNS,
    generate_world,
    plan_world,
    render_identity_crops,
    resolve_sizes,
    sample_identities,
)
from cgclip.synth.person import render_person
from cgclip.synth.poses import walk_pose
from cgclip.synth.sequence import visibilities

STYLE = {"sports": (", ", 0, 6), "dance": (",", 1, 8)}


@pytest.fixture(scope="module", params=["sports", "dance"])
def world(request, tmp_path_factory) -> tuple[str, Path]:
    kind = request.param
    out = tmp_path_factory.mktemp(kind) / "world"
    generate_world(kind, out, seed=5, preset="tiny")
    return kind, out


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _gt(kind: str, seq_dir: Path) -> list[list[str]]:
    sep = STYLE[kind][0]
    lines = (seq_dir / "gt" / "gt.txt").read_text().splitlines()
    assert lines
    for line in lines:
        if sep == ",":
            assert ", " not in line
    return [line.split(sep) for line in lines]


def _sequences(out: Path) -> list[Path]:
    return sorted(p for split in ("train", "val") for p in (out / split).iterdir())


def test_mot_layout_and_style(world):
    kind, out = world
    sep, first_id, digits = STYLE[kind]
    sizes = resolve_sizes(kind, "tiny")
    seqs = _sequences(out)
    assert len(seqs) == sizes.train_sequences + sizes.val_sequences
    for seq in seqs:
        assert seq.name.startswith(f"{kind}-{seq.parent.name}-")
        ini = configparser.ConfigParser()
        ini.read(seq / "seqinfo.ini")
        info = ini["Sequence"]
        assert info["name"] == seq.name and info["imDir"] == "img1" and info["imExt"] == ".jpg"
        assert int(info["seqLength"]) == sizes.frames
        names = sorted(p.name for p in (seq / "img1").iterdir())
        assert names == [f"{i:0{digits}d}.jpg" for i in range(1, sizes.frames + 1)]
        with Image.open(seq / "img1" / names[0]) as img:
            assert img.size == (int(info["imWidth"]), int(info["imHeight"])) == (sizes.width, sizes.height)
        rows = _gt(kind, seq)
        ids = sorted({int(r[1]) for r in rows})
        assert ids == list(range(first_id, first_id + len(ids)))
        assert all(len(r) == 9 and r[6] == "1" and r[7] == "1" for r in rows)
        per_track = defaultdict(list)  # every track is continuous: one box per frame
        for r in rows:
            per_track[int(r[1])].append(int(r[0]))
        assert all(sorted(f) == list(range(1, sizes.frames + 1)) for f in per_track.values())


def test_boxes_inside_and_visibility(world):
    kind, out = world
    sizes = resolve_sizes(kind, "tiny")
    vis_all = []
    for seq in _sequences(out):
        for r in _gt(kind, seq):
            left, top, w, h, vis = int(r[2]), int(r[3]), int(r[4]), int(r[5]), float(r[8])
            assert left >= 0 and top >= 0 and w > 0 and h > 0
            assert left + w <= sizes.width and top + h <= sizes.height
            assert 0.0 <= vis <= 1.0
            vis_all.append(vis)
    assert min(vis_all) < 1.0 and max(vis_all) == 1.0


def test_visibility_counts_only_people_in_front():
    boxes = [(0, 0, 10, 10), (5, 0, 15, 10), (100, 100, 110, 110)]  # drawn far to near
    assert visibilities(boxes) == [0.5, 1.0, 1.0]
    assert visibilities([(0, 0, 10, 10), (0, 0, 10, 10)]) == [0.0, 1.0]


def test_tables_mapping_and_gt_agree(world):
    kind, out = world
    header, table = _read_csv(out / "identities.csv")
    assert header == TABLE_COLUMNS
    m_header, mapping = _read_csv(out / "track_mapping.csv")
    assert m_header == ["split", "sequence", "track_id", "identity_id"]
    split_of = {row["identity_id"]: row["split"] for row in table}
    assert len(split_of) == len(table)
    gt_tracks = {(seq.parent.name, seq.name, int(r[1])) for seq in _sequences(out) for r in _gt(kind, seq)}
    mapped = {(m["split"], m["sequence"], int(m["track_id"])) for m in mapping}
    assert mapped == gt_tracks and len(mapped) == len(mapping)
    for m in mapping:
        assert split_of[m["identity_id"]] == m["split"]
    seqs_of = defaultdict(set)
    for m in mapping:
        seqs_of[m["identity_id"]].add(m["sequence"])
    assert all(len(seqs_of[i]) >= 2 for i, s in split_of.items() if s == "val")
    assert all(len(seqs_of[i]) >= 1 for i in split_of)
    per_seq = defaultdict(list)
    for m in mapping:
        per_seq[m["sequence"]].append(m["identity_id"])
    assert all(len(v) == len(set(v)) for v in per_seq.values())  # one track per identity per sequence
    world_json = json.loads((out / "world.json").read_text())
    assert world_json["kind"] == kind and world_json["seed"] == 5 and "version" in world_json
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width > 300 and sheet.height > 300


def test_attributes_are_plain_words_and_tell_teammates_apart(world):
    kind, out = world
    _, table = _read_csv(out / "identities.csv")
    cues = ["gender", "hair", "shoes", "socks", "build", "accessories", "others"]
    by_uniform = defaultdict(list)
    for row in table:
        assert row["scene"] in (
            ("soccer", "basketball", "volleyball") if kind == "sports" else ("hip-hop", "ballet", "jazz")
        )
        assert row["gender"] in ("man", "woman")
        assert row["uniform"] and row["hair"] and row["shoes"] and row["socks"] and row["build"]
        assert (row["number"].isdigit() and 1 <= int(row["number"]) <= 99) if kind == "sports" else row["number"] == ""
        by_uniform[row["uniform"]].append(row)
    for rows in by_uniform.values():
        assert len({tuple(r[c] for c in cues) for r in rows}) == len(rows)
        if kind == "sports":
            assert len({r["number"] for r in rows}) == len(rows)


def test_same_seed_same_world_and_parallel_equal(world, tmp_path):
    kind, out = world
    again = tmp_path / "again"
    generate_world(kind, again, seed=5, preset="tiny", workers=2, contact_sheet=False)

    def digest(root: Path) -> dict[str, str]:
        files = [p for p in root.rglob("*") if p.is_file() and p.name != "contact_sheet.png"]
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    assert digest(again) == digest(out)
    other = tmp_path / "other"
    generate_world(kind, other, seed=6, preset="tiny", contact_sheet=False)
    assert (other / "identities.csv").read_bytes() != (out / "identities.csv").read_bytes()


def test_existing_output_is_reused_or_refused(tmp_path):
    out = tmp_path / "w"
    generate_world("dance", out, seed=1, preset="tiny", frames=3, contact_sheet=False)
    summary = generate_world("dance", out, seed=1, preset="tiny", frames=3, contact_sheet=False)
    assert summary.reused and summary.boxes > 0
    with pytest.raises(CgclipError, match="overwrite"):
        generate_world("dance", out, seed=2, preset="tiny", frames=3, contact_sheet=False)
    summary = generate_world("dance", out, seed=2, preset="tiny", frames=3, contact_sheet=False, overwrite=True)
    assert not summary.reused and json.loads((out / "world.json").read_text())["seed"] == 2
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_infeasible_sizes_raise_actionable_errors():
    with pytest.raises(CgclipError, match="val"):
        plan_world("dance", resolve_sizes("dance", "tiny", val_sequences=2, val_identities=24), 0)
    with pytest.raises(CgclipError, match="at least"):
        resolve_sizes("sports", "tiny", frames=0)
    with pytest.raises(CgclipError):
        resolve_sizes("hockey")


def test_default_plan_has_many_sequences_per_identity():
    for kind in ("sports", "dance"):
        identities, plans = plan_world(kind, resolve_sizes(kind), seed=0)
        counts = defaultdict(int)
        for p in plans:
            for i in p.identities:
                counts[i] += 1
        train = {i for i, x in enumerate(identities) if x.split == "train"}
        val = {i for i, x in enumerate(identities) if x.split == "val"}
        assert len(train) == 48 and len(val) == 32 and not train & val
        assert min(counts[i] for i in val) >= 2 and min(counts[i] for i in train) >= 1
        assert sum(counts.values()) / len(identities) > 1.5


def test_cli_tiny(tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(["synth", "sports", "--out", str(out), "--seed", "3", "--size", "tiny", "--frames", "4", "--workers", "1"])
        == 0
    )
    assert "sports world" in capsys.readouterr().out
    assert (out / "contact_sheet.png").is_file() and (out / "train").is_dir() and (out / "val").is_dir()
    assert main(["synth", "sports", "--out", str(out), "--seed", "4", "--size", "tiny", "--frames", "4"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_render_identity_crops_deterministic_and_sized():
    people = sample_identities("dance", 4, seed=9, group_size=4)
    crops = render_identity_crops(people[0], 5, seed=1, size=(128, 64), distractors=people[1:], distractor_p=0.5)
    assert len(crops) == 5 and all(c.size == (64, 128) and c.mode == "RGB" for c in crops)
    again = render_identity_crops(people[0], 5, seed=1, size=(128, 64), distractors=people[1:], distractor_p=0.5)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(crops, again))
    raw = render_identity_crops(people[1], 2, seed=2)
    assert all(c.height > c.width > 10 for c in raw)


def test_rendered_colours_match_table():
    player = sample_identities("sports", 1, seed=4)[0]
    sprite = render_person(player.look, walk_pose("front", 0.0, 0.0), 160)
    pixels = {tuple(p[:3]) for p in np.asarray(sprite.image).reshape(-1, 4) if p[3] == 255}
    for rgb in (player.look.shirt, player.look.bottom, player.look.shoe_rgb, player.look.sock_rgb):
        assert tuple(rgb) in pixels
    assert sprite.image.height >= 0.9 * 160 * player.look.height


def test_interrupted_run_resumes_to_the_same_world(tmp_path, monkeypatch):
    import cgclip.synth.world as world_mod

    real = world_mod.render_sequence
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = tmp_path / "w"
    monkeypatch.setattr(world_mod, "render_sequence", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_world("sports", out, seed=2, preset="tiny", frames=3, contact_sheet=False)
    assert not out.exists() and (tmp_path / ".w.partial").is_dir()
    monkeypatch.setattr(world_mod, "render_sequence", real)
    generate_world("sports", out, seed=2, preset="tiny", frames=3, contact_sheet=False)
    fresh = tmp_path / "fresh"
    generate_world("sports", fresh, seed=2, preset="tiny", frames=3, contact_sheet=False)
    for rel in (
        "identities.csv",
        "track_mapping.csv",
        "train/sports-train-0001/gt/gt.txt",
        "val/sports-val-0002/img1/000003.jpg",
    ):
        assert (out / rel).read_bytes() == (fresh / rel).read_bytes()
    assert not (tmp_path / ".w.partial").exists()
