"""MOT → VReID builder and loader: exact counts, cut points, camids, pids, query/gallery rule, resume, bad input."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from cgclip.cli import main
from cgclip.data import load_dataset
from cgclip.data.identity_table import read_identity_table
from cgclip.data.mot import MotBox
from cgclip.data.tracklet import Tracklet
from cgclip.data.vreid import box_drop_reason, clip_box, cut_track, load_vreid, select_queries
from cgclip.data.vreid_builder import CropStore, build_vreid
from cgclip.errors import ConfigError, DataError
from fixtures_mot import BUILD, write_mot_world

ORDER = ["ath_a", "ath_b", "ath_c", "P1", "P2", "P3", "P4", "U9", "train/TA/2", "val/VA/3"]
CAMS = {"TA": 0, "TB": 1, "VA": 2, "VB": 3, "VC": 4}


def _build(root: Path, out: Path, **kw) -> object:
    params = {**BUILD, **kw}
    return build_vreid(root, out, root / "identities.csv", root / "track_mapping.csv", **params)


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = write_mot_world(tmp_path_factory.mktemp("mot"))
    out = root.parent / "ds"
    return root, out, _build(root, out)


def test_rules_units() -> None:
    assert cut_track(range(1, 11), 4, 2) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert cut_track([1, 2, 4, 5, 6, 9], 50, 2) == [[1, 2], [4, 5, 6]]
    assert cut_track([3, 1, 2], 2, 1) == [[1, 2], [3]]
    box = MotBox(1, 1, -4.6, 10.2, 20, 30, visibility=0.2)
    assert clip_box(box, 12, 30) == (0, 10, 12, 30)
    assert box_drop_reason(box, 100, 100, 12, 20, 0.1) is None
    assert box_drop_reason(box, 100, 100, 16, 20, 0.1) == "too_small"  # clipped width 15
    assert box_drop_reason(box, 100, 100, 12, 20, 0.3) == "low_visibility"
    assert box_drop_reason(MotBox(1, 1, 200, 0, 10, 40), 100, 100, 1, 1, 0) == "outside_image"


def _t(ident: str, seq: str, n: int = 0) -> Tracklet:
    return Tracklet((f"{seq}/{ident}/{n}",), 0, ord(seq[0]), seq, ident)


def _positives_ok(items: list[Tracklet], q: list[int], g: list[int]) -> bool:
    return all(any(items[j].identity == items[i].identity and items[j].seqid != items[i].seqid for j in g) for i in q)


def test_select_queries_rule() -> None:
    cases = {  # sequences and tracklet counts of one identity → number of queries
        (("A", 3), ("B", 1)): 1,
        (("A", 1), ("B", 1)): 1,
        (("A", 2), ("B", 2)): 2,
        (("A", 1), ("B", 1), ("C", 1)): 2,
        (("A", 3), ("B", 1), ("C", 1)): 2,
        (("A", 2), ("B", 2), ("C", 1)): 3,
        (("A", 5),): 0,
    }
    for seqs, n_queries in cases.items():
        items = [_t("x", s, k) for s, n in seqs for k in range(n)]
        q, g = select_queries(items, seed=3)
        assert len(q) == n_queries and sorted(q + g) == list(range(len(items))), seqs
        assert len({items[i].seqid for i in q}) == len(q) and _positives_ok(items, q, g), seqs
    items = [_t(f"id{i}", s, k) for i in range(20) for s in "ABC" for k in range(3)]
    picks = {seed: select_queries(items, seed)[0] for seed in range(4)}
    assert picks[0] == select_queries(list(items), 0)[0] and len({tuple(p) for p in picks.values()}) > 1


def test_world_counts_and_rule(built: tuple[Path, Path, object]) -> None:
    root, out, s = built
    assert s.sequences == {"train": 2, "val": 3} and s.cameras == 5
    assert s.tracklets == {"train": 8, "query": 4, "gallery": 7}
    assert s.identities == {"train": 4, "val": 5, "query": 3, "distractor": 2}
    assert s.dropped == {
        "outside_image": 1,
        "too_small": 1,
        "low_visibility": 1,
        "missing_image": 0,
        "corrupt_image": 0,
        "short_tracklet": 3,
    }
    assert (s.ignored_rows, s.crops_written, s.crops_reused, s.unused_identities) == (5, 54, 0, 1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identities"] == ORDER and [c["sequence"] for c in manifest["cameras"]] == list(CAMS)
    cuts = {
        (t["seqid"], t["track_id"], t["segment"]): tuple(t["source_frames"])
        for part in manifest["splits"].values()
        for t in part
    }
    assert cuts == {
        ("TA", 0, 0): (1, 4),
        ("TA", 0, 1): (5, 8),
        ("TA", 0, 2): (9, 10),
        ("TA", 1, 0): (1, 2),
        ("TA", 1, 1): (4, 6),
        ("TA", 2, 0): (1, 3),
        ("TB", 1, 0): (1, 4),
        ("TB", 2, 0): (3, 4),
        ("VA", 1, 0): (1, 4),
        ("VA", 1, 1): (5, 6),
        ("VA", 2, 0): (1, 3),
        ("VA", 3, 0): (1, 4),
        ("VA", 4, 0): (1, 2),
        ("VA", 4, 1): (4, 5),
        ("VB", 0, 0): (1, 4),
        ("VB", 1, 0): (1, 2),
        ("VB", 2, 0): (1, 2),
        ("VB", 2, 1): (4, 5),
        ("VC", 5, 0): (1, 3),
    }
    ds = load_vreid(out, verify_frames=True)
    for t in (*ds.train, *ds.query, *ds.gallery):
        assert t.camid == CAMS[t.seqid] and all(Path(f).is_file() for f in t.frames)
    assert ds.train[0].frames[0].endswith("crops/train/TA/0_0/00000001.jpg")
    assert ds.train_identities() == ["ath_a", "ath_b", "ath_c", "train/TA/2"]
    assert {(t.identity, t.pid) for t in (*ds.query, *ds.gallery)} == {
        (i, ORDER.index(i)) for i in ("P1", "P2", "P3", "P4", "val/VA/3")
    }
    assert sorted((t.identity, t.seqid) for t in ds.query) == [("P1", "VA"), ("P2", "VA"), ("P4", "VA"), ("P4", "VB")]
    assert not {t.frames for t in ds.query} & {t.frames for t in ds.gallery}
    for q in ds.query:  # every query has a positive in another camera
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
    assert {"P3", "val/VA/3"} <= {t.identity for t in ds.gallery} - {t.identity for t in ds.query}
    assert "query" in ds.info["query_gallery_rule"] and ds.info["parameters"]["max_len"] == 4
    table = read_identity_table(out / "identities.csv")
    assert [r.identity_id for r in table] == ORDER and table[-1].split == "val" and table[0].attributes["number"] == "7"
    assert load_dataset("vreid", out).statistics()["query"]["tracklets"] == 4


def test_rerun_is_idempotent_and_params_change_prunes(built: tuple[Path, Path, object], tmp_path: Path) -> None:
    root, _, _ = built
    out = tmp_path / "ds"
    _build(root, out)
    manifest, files = (out / "manifest.json").read_text(), _files(out)
    again = _build(root, out)
    assert (out / "manifest.json").read_text() == manifest
    assert set(_files(out)) == set(files) and again.crops_written == 0 and again.crops_reused == 54
    crops = {k: v for k, v in files.items() if k.endswith(".jpg")}
    assert {k: v for k, v in _files(out).items() if k.endswith(".jpg")} == crops  # not re-encoded
    third = _build(root, out, max_len=3)
    listed = {
        f
        for part in json.loads((out / "manifest.json").read_text())["splits"].values()
        for t in part
        for f in t["frames"]
    }
    assert {f for f in _files(out) if f.startswith("crops/") and not f.endswith(CropStore.KEYS)} == listed
    assert third.crops_written == 1  # crops of changed segments were moved; only VB track 0 frame 5 is new
    fresh = tmp_path / "fresh"
    _build(root, fresh, max_len=3)
    assert (fresh / "manifest.json").read_text() == (out / "manifest.json").read_text()
    _build(root, out)
    assert (out / "manifest.json").read_text() == manifest and set(_files(out)) == set(files)


def test_interrupted_build_resumes(
    built: tuple[Path, Path, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, ref, _ = built
    out = tmp_path / "ds"
    _build(root, out)
    real_write, calls = CropStore.write, []

    def failing_write(self, rel, key, image):  # noqa: ANN001
        calls.append(rel)
        if len(calls) == 30:
            raise KeyboardInterrupt
        real_write(self, rel, key, image)

    monkeypatch.setattr(CropStore, "write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        _build(root, out, jpeg_quality=60)
    assert not (out / "manifest.json").exists()  # a half-built folder is never mistaken for a dataset
    with pytest.raises(DataError, match="no manifest.json"):
        load_vreid(out)
    monkeypatch.setattr(CropStore, "write", real_write)
    _build(root, out)
    assert (out / "manifest.json").read_text() == (ref / "manifest.json").read_text()
    assert {k for k in _files(out)} == {k for k in _files(ref)}
    assert all((out / k).read_bytes() == (ref / k).read_bytes() for k in _files(ref) if k.endswith(".jpg"))


def test_corrupt_and_missing_frames_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_mot_world(tmp_path / "mot")
    (root / "val/VA/img1/000003.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train/TA/img1/00000010.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        s = _build(root, tmp_path / "ds")
    assert s.corrupt_frames == ["val/VA/img1/000003.jpg"] and "cannot decode" in caplog.text
    assert s.dropped["corrupt_image"] == 3 and s.dropped["missing_image"] == 1  # 3 boxes in VA frame 3
    # VA: P1 1-2 | 4-6 (not 1-4, 5-6); P2 1-2; val/VA/3 1-2, 4 (short); P4 unchanged. TA track 0: 9 alone is short.
    assert s.dropped["short_tracklet"] == 3 + 1 + 1
    ds = load_vreid(tmp_path / "ds", verify_frames=True)
    va = sorted((t.identity, len(t)) for t in (*ds.query, *ds.gallery) if t.seqid == "VA")
    assert va == [("P1", 2), ("P1", 3), ("P2", 2), ("P4", 2), ("P4", 2), ("val/VA/3", 2)]
    assert len(ds.train) == 7
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)


def test_bad_input_messages(tmp_path: Path) -> None:
    root = write_mot_world(tmp_path / "leak", mapping_extra=["val,VC,99,ath_a"])
    with pytest.raises(
        DataError,
        match=r"track_mapping.csv:\d+: identity 'ath_a' is mapped in split 'train' "
        r"\(line 2\) and in split 'val'",
    ):
        _build(root, tmp_path / "o1")
    (root / "track_mapping.csv").write_text("split,sequence,track_id,identity_id\nval,VC,5,NOPE\n")
    with pytest.raises(DataError, match="track_mapping.csv:2: identity 'NOPE' is not in the identity table"):
        _build(root, tmp_path / "o2")
    gt = root / "val/VB/gt/gt.txt"
    gt.write_text(gt.read_text() + "7, 1, 1, 2, three, 4, 1, 1, 1\n")
    with pytest.raises(DataError) as err:
        _build(root, tmp_path / "o3")
    lines = len(gt.read_text().splitlines())
    assert str(err.value).startswith(f"{gt}:{lines}: column 'width'") and "frame, id, left" in str(err.value)
    with pytest.raises(ConfigError, match="min_len"):
        _build(root, tmp_path / "o4", min_len=5, max_len=4)
    with pytest.raises(DataError, match="split folder not found"):
        _build(root, tmp_path / "o5", splits=("train", "test"))
    with pytest.raises(DataError, match="no train tracklet survived"):
        _build(write_mot_world(tmp_path / "tiny"), tmp_path / "o6", min_height=60)


def test_without_tables_every_track_is_an_identity(tmp_path: Path) -> None:
    root = write_mot_world(tmp_path / "mot")
    s = build_vreid(root, tmp_path / "ds", max_len=4)
    assert s.tracklets == {"train": 8, "query": 0, "gallery": 11} and s.identities["distractor"] == 8
    table = read_identity_table(tmp_path / "ds/identities.csv")
    assert table[0].identity_id == "train/TA/0" and len(table) == 13


def test_load_vreid_validation(built: tuple[Path, Path, object], tmp_path: Path) -> None:
    _, out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(DataError, match="version 99 is not supported"):
        load_vreid(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(DataError, match="not a cgclip-vreid manifest"):
        load_vreid(copy)
    (copy / "manifest.json").write_text("{broken")
    with pytest.raises(DataError, match="manifest.json: not valid JSON"):
        load_vreid(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    os.remove(copy / manifest["splits"]["gallery"][0]["frames"][-1])
    assert len(load_vreid(copy).gallery) == 7  # default check: first frame of each tracklet
    with pytest.raises(DataError, match="missing; re-run cgclip build-mot"):
        load_vreid(copy, verify_frames=True)


def test_cli_build_mot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_mot_world(tmp_path / "mot")
    assert main(["build-mot", "--mot", str(root), "--out", str(tmp_path / "ds"), "--max-len", "4"]) == 0
    text = capsys.readouterr().out
    assert "train:      8 tracklets, 4 identities" in text and "query:      4 tracklets" in text
    assert "too_small 1" in text and "short_tracklet 3" in text and "identities.csv" in text
    (root / "val/VC/gt/gt.txt").write_text("1,5,1,2\n")
    assert main(["build-mot", "--mot", str(root), "--out", str(tmp_path / "ds")]) == 2
    assert "val/VC/gt/gt.txt:1: malformed row" in capsys.readouterr().err


def test_build_refuses_an_out_it_did_not_write(tmp_path: Path) -> None:
    root = write_mot_world(tmp_path / "world")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "identities.csv").write_text("my table\n")
    with pytest.raises(ConfigError, match="folder of files cgclip did not write"):
        _build(root, user)
    assert [p.name for p in user.iterdir()] == ["identities.csv"] and (
        user / "identities.csv"
    ).read_text() == "my table\n"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="names a file"):
        _build(root, tmp_path / "a-file")
    _build(root, tmp_path / "ours")
    _build(root, tmp_path / "ours")  # its own build may be redone / resumed
