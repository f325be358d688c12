"""Compare cgclip.eval.evaluate_rank with torchreid's own ``eval_market1501`` on random tie-free inputs.

torchreid is not a dependency (it needs torchvision); point this script at its ``rank.py`` from an unpacked
source release, e.g. ``pip download --no-deps torchreid && tar xzf torchreid-*.tar.gz``::

    python benchmarks/check_torchreid_agreement.py torchreid-0.2.5/torchreid/reid/metrics/rank.py
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings

import numpy as np

from cgclip.eval import evaluate_rank


def main() -> None:
    """Run the comparison and print the largest absolute difference of mAP and CMC."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rank_py", help="path to torchreid's metrics/rank.py")
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("torchreid_rank", args.rank_py)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    worst_map = worst_cmc = 0.0
    for _ in range(args.cases):
        nq, ng = int(rng.integers(5, 120)), int(rng.integers(60, 600))
        q_p, g_p = rng.integers(0, 20, nq), rng.integers(0, 20, ng)
        q_c, g_c = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
        dist = rng.random((nq, ng))  # continuous: tie-free with probability 1
        cmc, m_ap = module.eval_market1501(dist, q_p, g_p, q_c, g_c, 50)
        ours = evaluate_rank(dist, q_p, g_p, q_c, g_c, max_rank=50)
        worst_map = max(worst_map, abs(ours.mAP - m_ap))
        worst_cmc = max(worst_cmc, float(np.abs(ours.cmc[:50] - cmc).max()))
    print(
        f"| cases | max abs diff mAP | max abs diff CMC |\n|---|---|---|\n| {args.cases} | {worst_map:.2e} | "
        f"{worst_cmc:.2e} |"
    )


if __name__ == "__main__":
    main()
