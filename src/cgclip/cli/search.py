"""``cgclip search``: find the query persons in a gallery of tracklet features (exact or FAISS IVF / HNSW)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cgclip.cli._options import command_help, in_range
from cgclip.errors import EvaluationError


def register(subparsers: Any) -> None:
    """Add the ``search`` sub-command."""
    p = subparsers.add_parser(
        "search",
        help="search a gallery of tracklet features for query persons",
        **command_help(
            "Rank gallery tracklets for each query by cosine similarity. The gallery is a feature file "
            "(PATH.safetensors + PATH.json) or an index saved with --save-index; the query is a feature "
            "file or comma-separated gallery item numbers (query by example; the item itself is left "
            "out).",
            "cgclip search --gallery feats/gallery --query feats/query --topk 10 --out results.json",
            "cgclip search --gallery feats/gallery --query 0,5,17 --grid ranking.png",
        ),
    )
    p.add_argument("--gallery", required=True, metavar="FEATS_OR_INDEX", help="gallery feature file or saved index")
    p.add_argument(
        "--query",
        required=True,
        metavar="FEATS_OR_ITEMS",
        help="query feature file, or gallery item numbers such as 0,5,17",
    )
    p.add_argument("--topk", type=in_range(int, 1), default=10, metavar="K", help="results per query (default 10)")
    p.add_argument(
        "--index-type",
        choices=("exact", "ivf", "hnsw"),
        default="exact",
        help="index to build over a gallery feature file (default exact; ivf/hnsw for large galleries)",
    )
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default ≈ 4·sqrt(N))")
    p.add_argument("--nprobe", type=int, default=16, help="IVF lists visited per query (default 16)")
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per node (default 32)")
    p.add_argument("--ef-search", type=int, default=128, help="HNSW search breadth (default 128)")
    p.add_argument("--save-index", metavar="PATH", help="write the built index to PATH (+ PATH.json)")
    p.add_argument("--out", metavar="JSON", help="write the ranked results to this JSON file")
    p.add_argument("--grid", metavar="PNG", help="draw a ranking grid of the first --grid-queries queries")
    p.add_argument("--grid-queries", type=int, default=8, help="queries drawn in the grid (default 8)")
    p.add_argument("--root", help="folder that relative frame paths are relative to (default: from the feature file)")
    p.set_defaults(func=run)


def _grid(args: argparse.Namespace, gallery: Any, queries: Any, scores: Any, idx: Any) -> None:
    import numpy as np

    from cgclip.eval.plots import save_ranking_grid

    if gallery is None:
        raise EvaluationError("--grid needs the gallery frames: pass the gallery feature file, not only an index")
    n = min(args.grid_queries, len(queries))
    first = lambda frames: frames[0] if frames else None  # noqa: E731
    g_frames = [[first(gallery.frames[j]) if j >= 0 else None for j in idx[i]] for i in range(n)]
    same = np.array([[j >= 0 and gallery.pids[j] == queries.pids[i] for j in idx[i]] for i in range(n)])
    labels = [[gallery.identities[j] if j >= 0 else "" for j in idx[i]] for i in range(n)]
    root = args.root or gallery.extra.get("root")
    save_ranking_grid(
        args.grid,
        [first(queries.frames[i]) for i in range(n)],
        g_frames,
        same,
        1.0 - scores[:n],
        query_labels=[queries.identities[i] or str(queries.pids[i]) for i in range(n)],
        gallery_labels=labels,
        root=root,
    )
    print(f"wrote ranking grid {args.grid}")


def run(args: argparse.Namespace) -> int:
    """Run ``cgclip search``; returns the exit status."""
    from cgclip.eval.search import check_search_params
    from cgclip.eval.search_results import open_gallery, rank_gallery, read_queries
    from cgclip.io_utils import check_output_file, write_json

    check_search_params(  # before any output is checked or any file read
        topk=args.topk,
        nlist=args.nlist,
        nprobe=args.nprobe,
        hnsw_m=args.hnsw_m,
        ef_search=args.ef_search,
        grid_queries=args.grid_queries,
    )
    if args.out:
        check_output_file(args.out, "--out", ours=("gallery", "query", "queries"), example="results.json")
    if args.save_index:
        check_output_file(
            args.save_index, "--save-index", ours=lambda p: Path(f"{p}.json").is_file(), example="gallery.index"
        )
    if args.grid:
        check_output_file(args.grid, "--grid", ours=lambda p: p.suffix.lower() == ".png", example="ranking.png")
    index, gallery = open_gallery(
        args.gallery,
        args.index_type,
        nlist=args.nlist,
        nprobe=args.nprobe,
        hnsw_m=args.hnsw_m,
        ef_search=args.ef_search,
    )
    queries, items = read_queries(args.query, gallery)
    ranking = rank_gallery(index, gallery, queries, items, args.topk)
    results = ranking.queries
    print(f"searched {len(queries)} queries in {index.ntotal} gallery items ({index.index_type} index)")
    for res in results[:5]:
        top = ", ".join(f"{r.get('identity') or r['id']}:{r['score']:.3f}" for r in res["results"][:5])
        print(f"  query {res['query']} ({res['identity'] or res['pid']}): {top}")
    if args.save_index:
        index.save(args.save_index)
        print(f"wrote index {args.save_index} (+ .json)")
    if args.out:
        write_json(
            args.out,
            {
                "gallery": args.gallery,
                "query": args.query,
                "index_type": index.index_type,
                "params": index.params,
                "topk": args.topk,
                "queries": results,
            },
        )
        print(f"wrote results {args.out}")
    if args.grid:
        _grid(args, gallery, queries, ranking.scores, ranking.indices)
    return 0
