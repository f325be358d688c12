"""MOT sequences stored as a video file + a tracker's MOT output, no identity table: reader, builder, CLI, bad input.

The tests encode their own videos with PyAV: FFV1 in Matroska (lossless with ``bgr0`` pixels, and a container that
records no frame count, so the count comes from the packets) and MPEG-4 Part 2 in MP4 (lossy; a recorded count).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from cgclip.cli import main
from cgclip.data.identity_table import read_identity_table
from cgclip.data.mot import read_gt, read_sequence
from cgclip.data.video import find_video, iter_frames, probe_video
from cgclip.data.vreid import load_vreid
from cgclip.data.vreid_builder import build_vreid
from cgclip.errors import DataError

SIZE = (96, 64)  # (width, height)
LENGTH = 12
BACKGROUND = 90
COLOURS = {1: (220, 30, 30), 2: (30, 200, 60), 7: (40, 60, 220)}
PARAMS = dict(max_len=4, min_len=2, min_height=32, min_width=12, min_visibility=0.3)


def _box(tid: int, frame: int) -> tuple[int, int, int, int] | None:
    """(left, top, width, height) of track ``tid`` in ``frame``, or None when it is not there (boxes never overlap)."""
    if tid == 1:
        return (4 + 2 * frame, 12, 16, 40)  # frames 1-12, moving right
    if tid == 2 and frame <= 8:
        return (70 - 2 * frame, 12, 16, 40)  # frames 1-8, moving left
    if tid == 7 and 3 <= frame <= 6:
        return (40, 20, 12, 36)  # frames 3-6, standing
    return None


def _frames(length: int = LENGTH) -> list[np.ndarray]:
    frames = []
    for f in range(1, length + 1):
        arr = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, dtype=np.uint8)
        for tid, colour in COLOURS.items():
            if (b := _box(tid, f)) is not None:
                arr[b[1] : b[1] + b[3], b[0] : b[0] + b[2]] = colour
        frames.append(arr)
    return frames


def encode(path: Path, frames: list[np.ndarray], codec: str = "ffv1") -> Path:
    """Write ``frames`` (RGB arrays) as a 25 fps video; FFV1 with bgr0 pixels is lossless."""
    pix = "bgr0" if codec == "ffv1" else "yuv420p"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], pix
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format=pix)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def tracker_rows(extra: tuple[int, ...] = ()) -> str:
    """A tracker's MOT output (``frame,id,x,y,w,h,score,-1,-1,-1``), frame by frame; ``extra`` frames add a row
    of track 1 beyond the video's end."""
    lines = []
    for f in [*range(1, LENGTH + 1), *extra]:
        for tid in COLOURS:
            b = _box(tid, f) if f <= LENGTH else ((4 + 2 * f, 12, 16, 40) if tid == 1 else None)
            if b is not None:
                lines.append(f"{f},{tid},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{0.5 + 0.04 * tid:.3f},-1,-1,-1")
    return "\n".join(lines) + "\n"


def video_world(root: Path, name: str = "match.mkv", extra: tuple[int, ...] = ()) -> Path:
    """``root/{train/GAME1, val/GAME2}/{match.mkv, gt/gt.txt}`` with no seqinfo.ini and no identity table."""
    frames = _frames()
    for seq in ("train/GAME1", "val/GAME2"):
        encode(root / seq / name, frames)
        (root / seq / "gt").mkdir()
        (root / seq / "gt" / "gt.txt").write_text(tracker_rows(extra))
    return root


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_probe_and_iter_frames(tmp_path: Path) -> None:
    frames = _frames()
    mkv = encode(tmp_path / "a.mkv", frames)
    mp4 = encode(tmp_path / "a.mp4", frames, codec="mpeg4")
    assert probe_video(mkv) == probe_video(mp4) == (LENGTH, *SIZE)  # counted packets / the container's count
    assert probe_video(mkv, count_frames=False) == (0, *SIZE)
    got = list(iter_frames(mkv, {12, 2, 5}))
    assert [f for f, _ in got] == [2, 5, 12]
    assert all(img.mode == "RGB" and np.array_equal(np.asarray(img), frames[f - 1]) for f, img in got)  # lossless
    assert [f for f, _ in iter_frames(mp4, {3, 20})] == [3]  # frames beyond the end are simply not yielded
    assert list(iter_frames(mkv, set())) == []


def test_find_video(tmp_path: Path) -> None:
    seq = tmp_path / "S"
    seq.mkdir()
    assert find_video(seq) is None
    encode(seq / "match.mp4", _frames(2), codec="mpeg4")
    assert find_video(seq) == seq / "match.mp4"
    (seq / "img1").mkdir()
    assert find_video(seq) is None  # an image folder wins
    (seq / "cam.MOV").write_bytes(b"")
    assert find_video(seq, "cam.MOV") == seq / "cam.MOV"  # imDir naming a video
    with pytest.raises(DataError, match=r"nope.mkv: seqinfo.ini's imDir names this video file, but it does not exist"):
        find_video(seq, "nope.mkv")
    (seq / "img1").rmdir()
    with pytest.raises(DataError) as err:
        find_video(seq)
    assert str(err.value) == (
        f"{seq}: 2 video files (cam.MOV, match.mp4); keep one video per sequence folder (one camera each) "
        "or name it in seqinfo.ini's imDir"
    )


def test_read_sequence_from_video(tmp_path: Path) -> None:
    root = video_world(tmp_path / "mot")
    seq = read_sequence(root / "train/GAME1")
    assert (seq.name, seq.length, (seq.width, seq.height), seq.video) == ("GAME1", 12, SIZE, seq.root / "match.mkv")
    assert seq.frame_path(1) == seq.frame_path(12) == seq.video and seq.frame_path(0) is None
    assert seq.frame_path(13) is None and seq.frame_files == {}
    (seq.root / "seqinfo.ini").write_text(
        "[Sequence]\nname=x\nimDir=match.mkv\nseqLength=20\nimWidth=90\nimHeight=60\n"
    )
    seq = read_sequence(seq.root)
    assert (seq.length, seq.width, seq.height, seq.frame_path(20)) == (20, 90, 60, seq.video)
    boxes, ignored = read_gt(seq.gt_path)  # tracker rows: score column, class/visibility -1
    assert (len(boxes), ignored) == (12 + 8 + 4, 0) and boxes[0].cls is None and boxes[0].visibility == 1.0


def _check_crops(out: Path) -> None:
    """Every crop has its box's size and colour (the video is lossless; the crop is a JPEG)."""
    ds = load_vreid(out, verify_frames=True)
    for t in (*ds.train, *ds.query, *ds.gallery):
        for rel in t.frames:
            tid, frame = int(Path(rel).parent.name.split("_")[0]), int(Path(rel).stem)
            box = _box(tid, frame)
            with Image.open(out / rel) as img:
                arr = np.asarray(img.convert("RGB"), dtype=np.int16)
            assert arr.shape == (box[3], box[2], 3), rel
            assert np.abs(arr - np.array(COLOURS[tid])).max() <= 8, rel


def test_build_from_video_and_tracker_output(tmp_path: Path) -> None:
    root = video_world(tmp_path / "mot")
    out = tmp_path / "ds"
    s = build_vreid(root, out, **PARAMS)  # neither identities.csv nor track_mapping.csv
    assert s.tracklets == {"train": 6, "query": 0, "gallery": 6}  # 1: 4+4+4, 2: 4+4, 7: 4
    assert s.identities == {"train": 3, "val": 3, "query": 0, "distractor": 3}
    assert s.dropped == dict.fromkeys(s.dropped, 0) and (s.crops_written, s.crops_reused) == (48, 0)
    manifest = json.loads((out / "manifest.json").read_text())
    cuts = sorted((t["seqid"], t["track_id"], *t["source_frames"]) for p in manifest["splits"].values() for t in p)
    assert cuts == [
        (seq, tid, a, b)
        for seq in ("GAME1", "GAME2")
        for tid, a, b in [(1, 1, 4), (1, 5, 8), (1, 9, 12), (2, 1, 4), (2, 5, 8), (7, 3, 6)]
    ]
    assert [r.identity_id for r in read_identity_table(out / "identities.csv")][:3] == [
        "train/GAME1/1",
        "train/GAME1/2",
        "train/GAME1/7",
    ]
    _check_crops(out)
    files = _files(out)
    again = build_vreid(root, out, **PARAMS)
    assert (again.crops_written, again.crops_reused) == (0, 48) and set(_files(out)) == set(files)
    crops = {k: v for k, v in files.items() if k.endswith(".jpg")}
    assert {k: v for k, v in _files(out).items() if k.endswith(".jpg")} == crops  # no crop re-encoded
    video = root / "val/GAME2/match.mkv"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))  # a changed video
    third = build_vreid(root, out, **PARAMS)
    assert (third.crops_written, third.crops_reused) == (24, 24)


def test_cli_build_mot_from_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = video_world(tmp_path / "mot", name="match.mp4")  # an FFV1 stream in MP4 (the container records a count)
    assert main(["build-mot", "--mot", str(root), "--out", str(tmp_path / "ds"), "--max-len", "4"]) == 0
    text = capsys.readouterr().out
    assert "(identities: none; mapping: none)" in text and "train:      6 tracklets, 3 identities" in text
    assert "crops:      48 written" in text
    _check_crops(tmp_path / "ds")


def test_gt_rows_beyond_the_video_end_count_as_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = video_world(tmp_path / "mot", extra=(13, 14))  # track 1 rows in frames 13-14 of a 12-frame video
    s = build_vreid(root, tmp_path / "ds", **PARAMS)
    assert s.dropped["missing_image"] == 4 and s.dropped["short_tracklet"] == 0 and s.crops_written == 48
    for seq in ("train/GAME1", "val/GAME2"):  # seqinfo.ini claims 14 frames: found out while decoding
        (root / seq / "seqinfo.ini").write_text("[Sequence]\nname=x\nseqLength=14\n")
    assert read_sequence(root / "train/GAME1").frame_path(14) is not None
    with caplog.at_level(logging.WARNING):
        s = build_vreid(root, tmp_path / "ds2", **PARAMS)
    assert "match.mkv: ends before frame 13 (2 wanted frames); they count as missing_image" in caplog.text
    assert s.dropped["missing_image"] == 4 and s.dropped["short_tracklet"] == 0 and s.crops_written == 48
    again = build_vreid(root, tmp_path / "ds2", **PARAMS)
    assert again.dropped == s.dropped and (again.crops_written, again.crops_reused) == (0, 48)
    _check_crops(tmp_path / "ds2")


def test_bad_video_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = video_world(tmp_path / "mot")
    built = tmp_path / "built"
    build_vreid(root, built, **PARAMS)
    before = _files(built)
    bad = root / "val/GAME2/match.mkv"
    good = bad.read_bytes()
    bad.unlink()
    corrupt = root / "val/GAME2/match.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    for out in (tmp_path / "new", built):
        with pytest.raises(DataError) as err:
            build_vreid(root, out, **PARAMS)
        message = str(err.value)
        assert message.startswith(f"{corrupt}: cannot decode video (") and "\n" not in message
        assert message.endswith(
            "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4, or extract the frames into img1/"
        )
    assert not (tmp_path / "new").exists() and _files(built) == before  # nothing written before the checks pass
    assert main(["build-mot", "--mot", str(root), "--out", str(tmp_path / "cli")]) == 2
    err_text = capsys.readouterr().err.strip()
    assert "cannot decode video" in err_text and len(err_text.splitlines()) == 1 and "Traceback" not in err_text
    assert not (tmp_path / "cli").exists()
    bad.write_bytes(good)  # now two videos in GAME2
    with pytest.raises(DataError, match=r"GAME2: 2 video files \(match.mkv, match.mp4\); keep one video"):
        build_vreid(root, tmp_path / "new", **PARAMS)
    assert not (tmp_path / "new").exists() and _files(built) == before
    corrupt.unlink()
    (root / "val/GAME2/gt/gt.txt").write_text("1,1,4,12,16,40,0.9,-1,-1,-1\n2,1,6,12,16\n")
    with pytest.raises(DataError, match=r"gt.txt:2: malformed row"):
        build_vreid(root, tmp_path / "new", **PARAMS)
    assert not (tmp_path / "new").exists()
