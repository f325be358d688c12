"""How far can a ranking get that sees only some annotated attributes? An upper bound for a backbone that perceives
just those.

Each test tracklet is described by its identity's identity-table values for the chosen attributes (one-hot, equal
weight); tracklets are ranked by cosine similarity of these vectors with the product's evaluator, ties broken at
random (mean over ``--repeats`` tie-breaks). With every attribute the ranking is perfect when identities differ in
their annotation; with only the colours the embedded tiny CLIP recognises (uniform, shoes, socks; see
``docs/RESULTS.md``) it shows what a model that perceives nothing else could reach; with none, the chance level of
the test split.

    python benchmarks/attribute_oracle.py .bench_out/accuracy/seed-*/datasets/sports \
        .bench_out/accuracy/seed-*/datasets/dance
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cgclip.data import load_dataset
from cgclip.data.identity_table import read_identity_table
from cgclip.eval import evaluate_features
from cgclip.eval.results import percent

SETS = {
    "all annotated attributes": ("uniform", "number", "hair", "shoes", "socks", "build", "accessories", "others"),
    "without number": ("uniform", "hair", "shoes", "socks", "build", "accessories", "others"),
    "uniform, shoes, socks (what the tiny CLIP knows)": ("uniform", "shoes", "socks"),
    "uniform only": ("uniform",),
    "nothing (a random ranking)": (),
}


def oracle(ds_dir: Path, attributes: tuple[str, ...], repeats: int, seed: int = 0) -> tuple[float, float]:
    """Mean mAP and Rank-1 (percent) of the attribute ranking over ``repeats`` random tie-breaks."""
    dataset = load_dataset("vreid", ds_dir)
    rows = {r.identity_id: r for r in read_identity_table(ds_dir / "identities.csv")}
    values = sorted({(a, r.attributes.get(a, "")) for r in rows.values() for a in attributes})
    column = {v: n for n, v in enumerate(values)}

    def features(tracklets: list) -> np.ndarray:
        if not attributes:  # no signal: the tie-break noise alone ranks
            return np.zeros((len(tracklets), 8), dtype=np.float32)
        out = np.zeros((len(tracklets), len(column)), dtype=np.float32)
        for i, t in enumerate(tracklets):
            r = rows[t.identity]
            for a in attributes:
                out[i, column[(a, r.attributes.get(a, ""))]] = 1.0
        return out

    qf, gf = features(dataset.query), features(dataset.gallery)
    rng = np.random.default_rng(seed)
    maps, r1s = [], []
    # noise breaks ties at random without reordering distinct scores: it moves a cosine by about 1e-3 (above
    # float32's resolution near 1; 1e-4 noise left most ties to the sort order), distinct scores differ by >= 0.1
    for _ in range(repeats):
        res = evaluate_features(
            qf + 1e-2 * rng.standard_normal(qf.shape).astype(np.float32),
            gf + 1e-2 * rng.standard_normal(gf.shape).astype(np.float32),
            [t.pid for t in dataset.query],
            [t.pid for t in dataset.gallery],
            [t.camid for t in dataset.query],
            [t.camid for t in dataset.gallery],
        )
        maps.append(res.mAP)
        r1s.append(res.cmc[0])
    return percent(float(np.mean(maps))), percent(float(np.mean(r1s)))


def main() -> None:
    """Print a Markdown table: attribute set × world → mAP / Rank-1 (mean over the datasets of each world)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "datasets",
        type=Path,
        nargs="+",
        help="VReID dataset folders (cgclip build-mot output); folders with the same name (e.g. "
        "seed-*/datasets/sports) are averaged",
    )
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    worlds: dict[str, list[Path]] = {}
    for d in args.datasets:
        worlds.setdefault(d.name, []).append(d)
    print(
        "| attributes seen | " + " | ".join(f"{w} mAP / Rank-1 ({len(ds)} datasets)" for w, ds in worlds.items()) + " |"
    )
    print("|---|" + "---|" * len(worlds))
    for label, attrs in SETS.items():
        cells = []
        for ds in worlds.values():
            scores = np.array([oracle(d, attrs, args.repeats) for d in ds])
            cells.append(f"{scores[:, 0].mean():.1f} / {scores[:, 1].mean():.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
