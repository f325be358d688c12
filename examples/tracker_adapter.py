#!/usr/bin/env python
"""A tracker loop with cgclip as its ReID backend, on a synthetic MOT sequence.

The "detector" is the sequence's ground truth without its ids; the loop keeps tracks by appearance only
(:class:`cgclip.embed.BoxEmbedder`, the interface BoxMOT's trackers call: ``get_features(xyxys, img)``), assigning
each frame's boxes to the tracks of the previous frames with the Hungarian method on cosine distance, and opening a
new track when no track is similar enough. :class:`cgclip.embed.TrackletMemory` keeps each track's recent crops so
that a track is compared as a tracklet. The script reports how often the assigned track id follows the true one.

    python examples/tracker_adapter.py --model demo_out/runs/sports/cgclip --world demo_out/worlds/sports

In BoxMOT, the same object replaces the tracker's ReID model:  ``tracker.model = BoxEmbedder(Embedder.load(...))``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from cgclip.data.image_io import read_rgb
from cgclip.data.mot import group_tracks, list_sequences, read_gt, read_sequence
from cgclip.embed import BoxEmbedder, Embedder, TrackletMemory
from cgclip.embed.crops import cut_boxes


def main() -> int:
    """Track one sequence by appearance and report the id consistency."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a run folder or a tracklet ONNX file")
    p.add_argument("--world", required=True, type=Path, help="a MOT world (cgclip synth)")
    p.add_argument("--split", default="val")
    p.add_argument("--sequence", help="default: the split's first")
    p.add_argument("--frames", type=int, default=60, help="frames to track (default 60)")
    p.add_argument("--threshold", type=float, default=0.5, help="lowest similarity to continue a track")
    args = p.parse_args()

    seq_dir = args.world / args.split / (args.sequence or list_sequences(args.world / args.split)[0].name)
    seq = read_sequence(seq_dir)
    by_frame: dict[int, list] = {}
    for tid, boxes in group_tracks(read_gt(seq.gt_path)[0], seq.gt_path).items():
        for box in boxes:
            by_frame.setdefault(box.frame, []).append((tid, box))
    embedder = Embedder.load(args.model)
    reid = BoxEmbedder(embedder, bgr=False)  # frames read here are RGB; OpenCV frames are BGR (the default)
    memory = TrackletMemory(embedder, window=8)
    votes: dict[int, Counter] = {}
    for frame in sorted(by_frame)[: args.frames]:
        image = np.asarray(read_rgb(str(seq.frame_path(frame))))
        truth = [tid for tid, _ in by_frame[frame]]
        xyxy = np.array([[b.left, b.top, b.left + b.width, b.top + b.height] for _, b in by_frame[frame]])
        feats = reid.get_features(xyxy, image)  # what a tracker asks its ReID backend for
        tracks = memory.tracks
        assigned = [-1] * len(feats)
        if tracks:
            sims = feats @ memory.features(tracks).T
            for r, c in zip(*linear_sum_assignment(-sims)):
                if sims[r, c] >= args.threshold:
                    assigned[r] = tracks[c]
        crops = cut_boxes(image, xyxy)
        for k, track in enumerate(assigned):
            track = len(memory) if track == -1 else track
            memory.add(track, crops[k])
            votes.setdefault(track, Counter())[truth[k]] += 1
    kept = sum(c.most_common(1)[0][1] for c in votes.values())
    total = sum(sum(c.values()) for c in votes.values())
    print(embedder)
    print(f"{seq.name}: {len(votes)} tracks for {len({t for c in votes.values() for t in c})} players")
    print(f"{kept} of {total} boxes ({100 * kept / total:.1f} %) carry their track's majority player")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
