#!/usr/bin/env python
"""Re-identify the players of one MOT sequence in another with a trained model (run folder or ONNX file).

Every ground-truth track of the two sequences becomes a tracklet (its boxes cut out of the frames), each tracklet one
feature (:class:`cgclip.embed.Embedder`), and each track of sequence A is matched to the most similar track of
sequence B. With the world's ``track_mapping.csv`` the script says how often that match is the same person.

    cgclip demo --out demo_out          # trains the models and renders the synthetic worlds
    python examples/reid_across_sequences.py --model demo_out/runs/sports/cgclip --world demo_out/worlds/sports
    cgclip export --run demo_out/runs/sports/cgclip --out sports-cgclip.onnx
    python examples/reid_across_sequences.py --model sports-cgclip.onnx --world demo_out/worlds/sports
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cgclip.data.identity_table import read_track_mapping
from cgclip.data.image_io import read_rgb
from cgclip.data.mot import group_tracks, list_sequences, read_gt, read_sequence
from cgclip.embed import Embedder
from cgclip.embed.crops import cut_boxes


def track_crops(seq_dir: Path, max_crops: int) -> dict[int, list[np.ndarray]]:
    """The crops of every ground-truth track of a sequence (at most ``max_crops``, evenly spread over the track)."""
    seq = read_sequence(seq_dir)
    tracks = group_tracks(read_gt(seq.gt_path)[0], seq.gt_path)
    wanted: dict[int, list] = {}  # frame -> [(track, box)]
    for tid, boxes in tracks.items():
        keep = np.linspace(0, len(boxes) - 1, min(max_crops, len(boxes))).round().astype(int)
        for i in sorted(set(keep.tolist())):
            wanted.setdefault(boxes[i].frame, []).append((tid, boxes[i]))
    crops: dict[int, list[np.ndarray]] = {tid: [] for tid in tracks}
    for frame in sorted(wanted):
        image = np.asarray(read_rgb(str(seq.frame_path(frame))))
        rows = wanted[frame]
        xyxy = np.array([[b.left, b.top, b.left + b.width, b.top + b.height] for _, b in rows])
        for (tid, _), crop in zip(rows, cut_boxes(image, xyxy)):
            crops[tid].append(crop)
    return {tid: c for tid, c in crops.items() if c}


def most_shared(sequences: list[str], mapping: dict[tuple[str, int], str]) -> tuple[str, str]:
    """The two sequences that share the most players (the first pair in name order on ties)."""
    players = {s: {who for (seq, _), who in mapping.items() if seq == s} for s in sequences}
    pairs = [(a, b) for i, a in enumerate(sequences) for b in sequences[i + 1 :]]
    return max(pairs, key=lambda p: len(players[p[0]] & players[p[1]]))


def main() -> int:
    """Match the tracks of two sequences and print the matches."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a run folder (cgclip train) or an ONNX file (cgclip export)")
    p.add_argument("--world", required=True, type=Path, help="a MOT world (cgclip synth) with track_mapping.csv")
    p.add_argument("--split", default="val", help="split folder of the world (default val)")
    p.add_argument("--a", help="sequence A (default: of the two sequences sharing most players)")
    p.add_argument("--b", help="sequence B (default: the other of that pair)")
    p.add_argument("--crops", type=int, default=16, help="crops per track (default 16)")
    args = p.parse_args()

    sequences = [s.name for s in list_sequences(args.world / args.split)]
    mapping = {(r.sequence, r.track_id): r.identity_id for r in read_track_mapping(args.world / "track_mapping.csv")}
    a, b = args.a, args.b
    if a is None or b is None:
        a, b = most_shared(sequences, mapping)
    embedder = Embedder.load(args.model)
    print(embedder)
    tracks = {s: track_crops(args.world / args.split / s, args.crops) for s in (a, b)}
    feats = {s: embedder.embed_tracklets(list(t.values())) for s, t in tracks.items()}
    ids_a, ids_b = list(tracks[a]), list(tracks[b])
    similarity = feats[a] @ feats[b].T
    hits = total = 0
    print(f"{'track in ' + a:>18}  {'best match in ' + b:>22}  similarity  same person")
    for i, tid in enumerate(ids_a):
        j = int(np.argmax(similarity[i]))
        who_a, who_b = mapping.get((a, tid)), mapping.get((b, ids_b[j]))
        in_b = who_a is not None and who_a in {mapping.get((b, t)) for t in ids_b}
        verdict = "-" if not in_b else ("yes" if who_a == who_b else "no")
        hits += verdict == "yes"
        total += in_b
        print(f"{tid:>18}  {ids_b[j]:>22}  {similarity[i, j]:10.3f}  {verdict:>11}")
    print(f"{hits} of {total} tracks of {a} whose player appears in {b} matched that player (top-1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
