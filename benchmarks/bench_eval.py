"""Benchmark of cgclip.eval: ranking speed and memory at MARS size and 5× MARS, and FAISS search vs exact search.

    python benchmarks/bench_eval.py                 # evaluation at 1× and 5× MARS + FAISS at 1M × 512
    python benchmarks/bench_eval.py --quick         # FAISS at 200k × 512 instead of 1M
    python benchmarks/bench_eval.py --skip-faiss    # evaluation only

Evaluation data imitate the MARS test split: 1,980 queries, 11,310 gallery tracklets (query+gallery convention),
625 identities plus ~10 % distractors (pid 0), 6 cameras, 2,048-d features (identity centre + noise, so the metrics
are non-trivial). "5× MARS" multiplies queries, gallery and identities by 5. Time is wall-clock (best of
``--repeat``); memory is the peak of NumPy allocations during the call (``tracemalloc``, inputs excluded).

Baselines, written here for comparison only:
* ``per-query NumPy``: a loop over queries, each row arg-sorted and scored with NumPy (vectorised within a query);
  from features it first builds the full distance matrix.
* ``torchreid-style``: the same loop with the per-rank precision computed in a Python list comprehension, as
  torchreid's Python ``eval_market1501`` does (timed on a subset of queries and scaled up where marked).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from cgclip.eval import evaluate_features, evaluate_rank, pairwise_distance


# ----------------------------------------------------------------------------------------------- data
def mars_like(scale: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Features and labels shaped like the MARS test split (×``scale``), query+gallery convention."""
    rng = np.random.default_rng(seed)
    nq, ng_only, ids = 1980 * scale, 9330 * scale, 625 * scale
    g_pids = rng.integers(1, ids + 1, ng_only)
    g_pids[rng.random(ng_only) < 0.1] = 0  # distractors
    q_pids = rng.integers(1, ids + 1, nq)
    centres = rng.standard_normal((ids + 1, dim), dtype=np.float32)
    noise = 3.5

    def feats(pids: np.ndarray) -> np.ndarray:
        out = centres[pids].copy()
        out += noise * rng.standard_normal(out.shape, dtype=np.float32)
        return out

    qf, gf = feats(q_pids), feats(g_pids)
    q_cams, g_cams = rng.integers(0, 6, nq), rng.integers(0, 6, ng_only)
    return {
        "qf": qf,
        "gf": np.concatenate([qf, gf]),
        "q_pids": q_pids,
        "g_pids": np.concatenate([q_pids, g_pids]),
        "q_camids": q_cams,
        "g_camids": np.concatenate([q_cams, g_cams]),
    }


# ------------------------------------------------------------------------------------------ baselines
def per_query_numpy(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    python_precision: bool = False,
    limit: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """Straightforward evaluator: one query at a time (``limit`` queries at most)."""
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0] if limit is None else min(limit, distmat.shape[0])):
        order = np.argsort(distmat[i])
        matches = g_pids[order] == q_pids[i]
        keep = ~(matches & (g_camids[order] == q_camids[i]))
        raw = matches[keep].astype(np.int32)
        if not raw.any():
            continue
        cum = raw.cumsum()
        last = np.flatnonzero(raw)[-1]
        inps.append(cum[last] / (last + 1.0))
        cmc = np.minimum(cum, 1)[:max_rank]
        cmcs.append(np.pad(cmc, (0, max_rank - len(cmc)), mode="edge"))
        if python_precision:
            precision = np.asarray([x / (r + 1.0) for r, x in enumerate(cum)])
        else:
            precision = cum / np.arange(1.0, len(cum) + 1.0)
        aps.append((precision * raw).sum() / raw.sum())
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps))


def per_query_from_features(d: dict[str, np.ndarray]) -> Any:
    """Baseline from features: full cosine distance matrix, then the per-query loop."""
    dist = pairwise_distance(d["qf"], d["gf"], "cosine")
    return per_query_numpy(dist, d["q_pids"], d["g_pids"], d["q_camids"], d["g_camids"])


# ---------------------------------------------------------------------------------------- measuring
def measure(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best wall time in s, peak traced MB of one extra run, result); ``repeat=0`` times the traced run."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    traced = fn()
    best = min(best, time.perf_counter() - start) if repeat == 0 else best
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak, out if repeat else traced


def bench_eval(scales: list[int], dim: int, repeat: int, torchreid_queries: int, rerank: bool) -> list[str]:
    rows = [
        "| size (queries × gallery) | evaluation | time (s) | peak memory (MB) | mAP | Rank-1 | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale in scales:
        d = mars_like(scale, dim)
        nq, ng = len(d["qf"]), len(d["gf"])
        size = f"{'MARS' if scale == 1 else f'{scale}× MARS'} ({nq:,} × {ng:,})"
        labels = (d["q_pids"], d["g_pids"], d["q_camids"], d["g_camids"])
        dist = pairwise_distance(d["qf"], d["gf"], "cosine")
        t_rank, m_rank, r = measure(partial(evaluate_rank, dist, *labels), repeat)
        t_base, m_base, b = measure(partial(per_query_numpy, dist, *labels), 1)
        assert abs(b[1] - r.mAP) < 1e-6, (b[1], r.mAP)
        rows.append(
            f"| {size} | `evaluate_rank` (from distances) | {t_rank:.3f} | {m_rank:.0f} | {r.mAP:.4f} | "
            f"{r.rank(1):.4f} | {t_base / t_rank:.0f}× |"
        )
        rows.append(
            f"| {size} | per-query NumPy loop (from distances) | {t_base:.2f} | {m_base:.0f} | {b[1]:.4f} | "
            f"{b[0][0]:.4f} | 1× |"
        )
        n_tr = min(torchreid_queries, nq)
        start = time.perf_counter()
        per_query_numpy(dist, *labels, python_precision=True, limit=n_tr)
        t_tr = (time.perf_counter() - start) * nq / n_tr
        note = "" if n_tr == nq else f" (timed on {n_tr} queries, scaled)"
        rows.append(f"| {size} | torchreid-style Python loop{note} | {t_tr:.1f} | – | – | – | {t_base / t_tr:.2f}× |")
        del dist
        gc.collect()
        t_feat, m_feat, f = measure(partial(evaluate_features, d["qf"], d["gf"], *labels), repeat)
        t_bf, m_bf, _ = measure(partial(per_query_from_features, d), 1)
        rows.append(
            f"| {size} | `evaluate_features` ({dim}-d, cosine, chunked) | {t_feat:.3f} | {m_feat:.0f} | "
            f"{f.mAP:.4f} | {f.rank(1):.4f} | {t_bf / t_feat:.0f}× |"
        )
        rows.append(f"| {size} | full distance matrix + per-query loop | {t_bf:.2f} | {m_bf:.0f} | – | – | 1× |")
        if scale == 1 and rerank:
            ng_only = ng - nq  # re-ranking in the torchreid convention (gallery set only)
            t_rr, m_rr, rr = measure(
                partial(
                    evaluate_features,
                    d["qf"],
                    d["gf"][nq:],
                    d["q_pids"],
                    d["g_pids"][nq:],
                    d["q_camids"],
                    d["g_camids"][nq:],
                    rerank=True,
                ),
                0,
            )
            rows.append(
                f"| MARS ({nq:,} × {ng_only:,}) | `evaluate_features(rerank=True)` (k1=20, k2=6, λ=0.3) | "
                f"{t_rr:.1f} | {m_rr:.0f} | {rr.mAP:.4f} | {rr.rank(1):.4f} | – |"
            )
        print(f"done {size}", file=sys.stderr, flush=True)
        del d
        gc.collect()
    return rows


# ---------------------------------------------------------------------------------------------- FAISS
def bench_faiss(n: int, dim: int, num_queries: int, hnsw_max_n: int, seed: int = 0) -> list[str]:
    import faiss

    from cgclip.eval.search import SearchIndex

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32)
    assign = rng.integers(0, len(centres), n)
    gallery = centres[assign]
    gallery += 0.7 * rng.standard_normal(gallery.shape, dtype=np.float32)
    queries = centres[rng.integers(0, len(centres), num_queries)]
    queries += 0.7 * rng.standard_normal(queries.shape, dtype=np.float32)
    rows = [
        f"| index ({n:,} × {dim}, {num_queries} queries, {faiss.omp_get_max_threads()} threads) | build (s) | "
        "recall@10 vs exact | batch latency (ms/query) | single-query latency (ms) |",
        "|---|---|---|---|---|",
    ]
    truth = None
    configs: list[tuple[str, str, dict[str, Any], list[dict[str, int]]]] = [
        ("exact (IndexFlatIP)", "exact", {}, [{}]),
        ("IVF-Flat", "ivf", {}, [{"nprobe": 8}, {"nprobe": 32}, {"nprobe": 128}]),
        ("HNSW-Flat, M=32", "hnsw", {"hnsw_m": 32, "ef_construction": 80}, [{"ef_search": 64}, {"ef_search": 256}]),
    ]
    for name, kind, build_args, settings in configs:
        if kind == "hnsw" and n > hnsw_max_n:
            rows.append(f"| {name} | not run: N > --hnsw-max-n ({hnsw_max_n:,}); see the 200k run | – | – | – |")
            continue
        start = time.perf_counter()
        index = SearchIndex.build(gallery, kind, **build_args)
        build = time.perf_counter() - start
        for setting in settings:
            index.set_search_params(**setting)
            start = time.perf_counter()
            _, idx = index.search(queries, 10)
            batch = (time.perf_counter() - start) / num_queries * 1e3
            singles = min(100, num_queries)
            start = time.perf_counter()
            for i in range(singles):
                index.search(queries[i : i + 1], 10)
            single = (time.perf_counter() - start) / singles * 1e3
            if truth is None:
                truth = idx
            recall = np.mean([len(set(a) & set(b)) / 10.0 for a, b in zip(idx, truth)])
            label = name + (
                ""
                if not setting
                else f" ({', '.join(f'{k}={v}' for k, v in setting.items())}"
                + (f", nlist={index.params['nlist']})" if kind == "ivf" else ")")
            )
            rows.append(f"| {label} | {build:.1f} | {recall:.3f} | {batch:.3f} | {single:.2f} |")
            print(f"done {label}", file=sys.stderr, flush=True)
        del index
        gc.collect()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="FAISS part at 200k vectors instead of 1M")
    parser.add_argument("--scales", default="1,5", help="MARS multiples for the evaluation part (default 1,5)")
    parser.add_argument("--dim", type=int, default=2048, help="feature size for the evaluation part")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the vectorised evaluator (best)")
    parser.add_argument(
        "--torchreid-queries",
        type=int,
        default=400,
        help="queries timed for the torchreid-style loop (scaled to all queries)",
    )
    parser.add_argument("--faiss-n", type=int, default=None, help="gallery size for the FAISS part")
    parser.add_argument("--faiss-queries", type=int, default=1000)
    parser.add_argument(
        "--hnsw-max-n",
        type=int,
        default=200_000,
        help="skip the HNSW build above this gallery size (it takes long on 2 cores)",
    )
    parser.add_argument("--skip-rerank", action="store_true", help="skip the re-ranking row (MARS size)")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-faiss", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, numpy {np.__version__}\n")
    if not args.skip_eval:
        print(
            "\n".join(
                bench_eval(
                    [int(s) for s in args.scales.split(",")],
                    args.dim,
                    args.repeat,
                    args.torchreid_queries,
                    not args.skip_rerank,
                )
            )
            + "\n"
        )
    if not args.skip_faiss:
        n = args.faiss_n or (200_000 if args.quick else 1_000_000)
        print("\n".join(bench_faiss(n, 512, args.faiss_queries, args.hnsw_max_n)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
