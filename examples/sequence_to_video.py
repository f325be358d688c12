#!/usr/bin/env python
"""Turn a MOT sequence (frames + gt.txt) into what a user brings: a match video and a tracker's MOT-format file.

Writes ``OUT/train/NAME/match.mp4`` (MPEG-4, encoded with PyAV) and ``OUT/train/NAME/gt/gt.txt`` with the rows as a
tracker writes them (``frame,id,x,y,w,h,score,-1,-1,-1``; ids kept, no identity table), ready for
``cgclip build-mot --mot OUT --out DS --mot-splits train`` — the README's worked example from a video to a ranking
picture:

    python examples/sequence_to_video.py demo_out/worlds/sports/val/sports-val-0001 --out match_world
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np

from cgclip.data.image_io import read_rgb
from cgclip.data.mot import read_gt, read_sequence


def main() -> int:
    """Encode the frames and write the tracker-format rows."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sequence", type=Path, help="a MOT sequence folder (img1/ and gt/gt.txt)")
    p.add_argument("--out", required=True, type=Path, help="world folder to write (OUT/train/NAME/...)")
    p.add_argument("--name", default="match1", help="sequence name (default match1)")
    p.add_argument("--fps", type=int, default=25)
    args = p.parse_args()

    seq = read_sequence(args.sequence)
    target = args.out / "train" / args.name
    (target / "gt").mkdir(parents=True, exist_ok=False)
    with av.open(str(target / "match.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=args.fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = seq.width, seq.height, "yuv420p", 4_000_000
        for frame in range(1, seq.length + 1):
            pixels = np.asarray(read_rgb(str(seq.frame_path(frame))))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    boxes, _ = read_gt(seq.gt_path)
    rows = [f"{b.frame},{b.track_id},{b.left:g},{b.top:g},{b.width:g},{b.height:g},0.9,-1,-1,-1" for b in boxes]
    (target / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    print(f"wrote {target / 'match.mp4'} ({seq.length} frames, {seq.width}x{seq.height}) and {len(rows)} tracker rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
