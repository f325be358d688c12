"""MOT reader and identity-table tests: separators, column variants, frame-name widths, filters, error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgclip.data.identity_table import read_identity_table, read_track_mapping, resolve_identities, write_identity_table
from cgclip.data.mot import group_tracks, list_sequences, parse_gt_line, read_gt, read_sequence
from cgclip.errors import DataError
from fixtures_mot import IMAGE_SIZE, WORLD, write_sequence

P = Path("gt.txt")


@pytest.mark.parametrize(
    "line",
    [
        "3,5,10.5,20,30,40,1,1,0.75",
        "3, 5, 10.5, 20, 30, 40, 1, 1, 0.75",
        "3 5 10.5 20 30 40 1 1 0.75",
        "3.0,5,10.5,20,30,40,1,1,0.75,-1",
    ],
)
def test_parse_separators(line: str) -> None:
    box = parse_gt_line(line, P, 1)
    assert (box.frame, box.track_id, box.left, box.top, box.width, box.height) == (3, 5, 10.5, 20, 30, 40)
    assert (box.conf, box.cls, box.visibility) == (1, 1, 0.75)


def test_parse_column_variants() -> None:
    six = parse_gt_line("1,0,1,2,3,4", P, 1)
    assert (six.track_id, six.conf, six.cls, six.visibility) == (0, 1.0, None, 1.0)
    seven = parse_gt_line("1,2,1,2,3,4,0", P, 1)
    assert (seven.conf, seven.cls, seven.visibility) == (0.0, None, 1.0)
    eight = parse_gt_line("1,2,1,2,3,4,1,2", P, 1)
    assert (eight.cls, eight.visibility) == (2, 1.0)
    mot15 = parse_gt_line("1,2,1,2,3,4,1,-1,-1,-1", P, 1)
    assert (mot15.cls, mot15.visibility) == (None, 1.0)
    assert parse_gt_line("   ", P, 1) is None and parse_gt_line("# comment", P, 1) is None


@pytest.mark.parametrize(
    "line,needle",
    [
        ("1,2,abc,2,3,4,1,1,1", "'left'"),
        ("1,2,3,4,5", "5 fields"),
        ("1,2,,4,5,6,1,1,1", "fields"),
        ("1.5,2,3,4,5,6", "'frame'"),
        ("1,x,3,4,5,6", "'id'"),
    ],
)
def test_malformed_row_names_path_line(tmp_path: Path, line: str, needle: str) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,1,2,3,4,1,1,1\n\n" + line + "\n")
    with pytest.raises(DataError) as err:
        read_gt(gt)
    message = str(err.value)
    assert message.startswith(f"{gt}:3: ") and needle in message and "frame, id, left" in message
    assert "\n" not in message


def test_read_gt_filters(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,0,0,5,5,1,1,1\n1,2,0,0,5,5,0,1,1\n1,3,0,0,5,5,1,7,1\n1,4,0,0,5,5,1,-1,1\n1,5,0,0,5,5\n")
    boxes, ignored = read_gt(gt)
    assert [b.track_id for b in boxes] == [1, 4, 5] and ignored == 2
    assert [b.line for b in boxes] == [1, 4, 5]
    boxes, ignored = read_gt(gt, classes=None)
    assert [b.track_id for b in boxes] == [1, 3, 4, 5] and ignored == 1
    boxes, ignored = read_gt(gt, classes=(1, 7), keep_zero_conf=True)
    assert len(boxes) == 5 and ignored == 0
    with pytest.raises(DataError, match="gt/gt.txt"):
        read_gt(tmp_path / "missing.txt")


def test_group_tracks_sorts_and_rejects_duplicates(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("2,0,0,0,5,5\n1,0,0,0,5,5\n1,3,0,0,5,5\n")
    tracks = group_tracks(read_gt(gt)[0], gt)
    assert list(tracks) == [0, 3] and [b.frame for b in tracks[0]] == [1, 2]
    gt.write_text("1,0,0,0,5,5\n2,0,0,0,5,5\n1,0,0,0,5,5\n")
    with pytest.raises(DataError, match=f"{gt}:3: .*line 1"):
        group_tracks(read_gt(gt)[0], gt)


def test_read_sequence_frame_widths_and_size(tmp_path: Path) -> None:
    eight = write_sequence(tmp_path, "val/VB", **WORLD["val/VB"])
    seq = read_sequence(eight)
    assert (seq.name, seq.length, seq.frame_digits, (seq.width, seq.height)) == ("VB", 5, 8, IMAGE_SIZE)
    assert seq.frame_path(3).name == "00000003.jpg" and seq.frame_path(9) is None
    six = read_sequence(write_sequence(tmp_path, "train/TB", **WORLD["train/TB"]))  # no imWidth/imHeight in ini
    assert (six.frame_digits, (six.width, six.height), six.frame_path(1).name) == (6, IMAGE_SIZE, "000001.jpg")
    (six.root / "seqinfo.ini").unlink()
    bare = read_sequence(six.root)
    assert (bare.length, bare.width, bare.image_dir.name) == (4, IMAGE_SIZE[0], "img1")


def test_read_sequence_errors(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path, "train/S", **WORLD["train/TB"])
    (seq / "seqinfo.ini").write_text("[Other]\nx=1\n")
    with pytest.raises(DataError, match=r"seqinfo.ini: no \[Sequence\]"):
        read_sequence(seq)
    (seq / "seqinfo.ini").write_text("[Sequence]\nimDir=frames\n")
    with pytest.raises(DataError, match="frames: image folder not found"):
        read_sequence(seq)
    with pytest.raises(DataError, match="split folder not found"):
        list_sequences(tmp_path / "val")
    assert [p.name for p in list_sequences(tmp_path / "train")] == ["S"]


def test_identity_table_and_mapping(tmp_path: Path) -> None:
    table = tmp_path / "identities.csv"
    table.write_text('identity_id,split,scene,number,extra\nA,train,soccer,7,x\n"B",val,,"1,2",\n')
    records = read_identity_table(table)
    assert [(r.identity_id, r.split, r.line) for r in records] == [("A", "train", 2), ("B", "val", 3)]
    assert records[1].attributes == {"scene": "", "number": "1,2", "extra": ""}
    assert list(records[0].attributes) == ["scene", "number", "extra"]
    write_identity_table(tmp_path / "copy.csv", records)
    assert read_identity_table(tmp_path / "copy.csv") == [
        r.__class__(r.identity_id, r.split, r.attributes, r.line) for r in records
    ]
    table.write_text("identity_id,split\nA,train\nA,val\n")
    with pytest.raises(DataError, match=f"{table}:3: .*repeats line 2"):
        read_identity_table(table)
    table.write_text("name,split\nA,train\n")
    with pytest.raises(DataError, match=f"{table}:1: .*identity_id"):
        read_identity_table(table)
    mapping = tmp_path / "track_mapping.csv"
    mapping.write_text("split,sequence,track_id,identity_id\ntrain,S,1,A\ntrain,S,x,A\n")
    with pytest.raises(DataError, match=f"{mapping}:3: track_id 'x'"):
        read_track_mapping(mapping)
    mapping.write_text("split,sequence,track_id,identity_id\ntrain,S,1,A\ntrain,S,1,B\n")
    with pytest.raises(DataError, match=f"{mapping}:3: .*line 2"):
        read_track_mapping(mapping)


def test_resolve_identities_order_and_leak(tmp_path: Path) -> None:
    table = tmp_path / "identities.csv"
    table.write_text("identity_id,split,scene\nB,val,x\nA,train,y\nU,val,z\n")
    mapping = tmp_path / "track_mapping.csv"
    mapping.write_text("split,sequence,track_id,identity_id\ntrain,S,1,A\nval,V,0,B\nval,W,4,B\ntest,T,1,A\n")
    tracks = [("val", "V", 0), ("train", "S", 2), ("train", "S", 1), ("val", "W", 4), ("train", "S", 10)]
    res = resolve_identities(
        tracks, read_track_mapping(mapping), read_identity_table(table), ("train", "val"), mapping, table
    )
    assert res.order == ["B", "A", "U", "train/S/2", "train/S/10"]
    assert res.track_identity[("val", "W", 4)] == "B" and res.track_identity[("train", "S", 10)] == "train/S/10"
    assert res.unused_identities == ["U"] and res.unused_mapping_rows == 0
    assert res.records[-1].split == "train" and res.records[-1].attributes == {}
    mapping.write_text("split,sequence,track_id,identity_id\ntrain,S,1,A\nval,V,0,A\n")
    with pytest.raises(DataError, match=f"{mapping}:3: .*'A'.*'train' \\(line 2\\).*'val'"):
        resolve_identities(
            tracks, read_track_mapping(mapping), read_identity_table(table), ("train", "val"), mapping, table
        )
    mapping.write_text("split,sequence,track_id,identity_id\nval,V,0,ZZ\n")
    with pytest.raises(DataError, match=f"{mapping}:2: identity 'ZZ' is not in the identity table"):
        resolve_identities(
            tracks, read_track_mapping(mapping), read_identity_table(table), ("train", "val"), mapping, table
        )
    res = resolve_identities(tracks, read_track_mapping(mapping), None, ("train", "val"))
    assert res.order[0] == "ZZ" and res.records[0].split == "val"
