"""Statistics for comparing models over paired seeds.

A *seed* is one pair of synthetic worlds on which every compared model trains on the same data, so the score of
model A on seed *i* and the score of model B on seed *i* form a pair. Comparing the per-seed differences
``a_i - b_i`` removes the (often large) seed-to-seed variation that both models share.

The benchmark reports :func:`paired_difference` — the mean difference with a two-sided Student-t confidence
interval ("paired t") — and turns it into one line with :func:`verdict`. :func:`bootstrap_ci` is offered as an
alternative interval for the same mean; :func:`mean_std` and :func:`spearman` are small helpers for tables
(per-model mean ± std, rank agreement between two metrics or two benchmarks).

Everything here is pure computation on numbers: no I/O, no printing, no configuration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["TIE_TOLERANCE", "PairedDifference", "bootstrap_ci", "mean_std", "paired_difference", "spearman", "verdict"]

#: Two scores whose difference is smaller than this (in absolute value) count as a tie.
TIE_TOLERANCE = 1e-9

ArrayLike = Sequence[float] | np.ndarray


def _as_finite_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array; ValueError if it is empty, not 1-D, or holds NaN/inf."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers ({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one value is needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} holds a non-finite value ({arr[i]!r} at index {i}, {int(bad.sum())} in all)")
    return arr


def _check_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float; ValueError unless 0 < confidence < 1."""
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


@dataclass(frozen=True)
class PairedDifference:
    """Summary of the per-seed differences ``a_i - b_i`` between two models.

    Attributes:
        n: number of pairs (seeds).
        mean: mean difference.
        std: sample standard deviation of the differences (ddof=1); 0 when ``n < 2``.
        ci_low, ci_high: two-sided confidence interval for the mean difference; NaN when ``n < 2``.
        wins: pairs with ``a_i - b_i >= TIE_TOLERANCE`` (A better).
        losses: pairs with ``a_i - b_i <= -TIE_TOLERANCE`` (B better).
        ties: pairs with ``|a_i - b_i| < TIE_TOLERANCE``.
        confidence: the interval's confidence level (0.95 by default).
        method: how the interval was computed (``"paired t"``).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    confidence: float = 0.95
    method: str = "paired t"

    @property
    def outcome(self) -> str:
        """``"supported"`` (ci_low > 0), ``"contradicted"`` (ci_high < 0) or ``"not resolved"`` for "A > B"."""
        if self.n < 2 or math.isnan(self.ci_low) or math.isnan(self.ci_high):
            return "not resolved"
        if self.ci_low > 0:
            return "supported"
        if self.ci_high < 0:
            return "contradicted"
        return "not resolved"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict of Python ints, floats and strings (NaN stays NaN)."""
        return asdict(self)


def paired_difference(a: ArrayLike, b: ArrayLike, confidence: float = 0.95) -> PairedDifference:
    """Compare two models' per-seed scores with a paired Student-t interval for the mean difference.

    The differences are ``d_i = a_i - b_i``; the interval is ``mean ± t_{(1+confidence)/2, n-1} · std / √n`` with
    the sample standard deviation (ddof=1). With a single pair, ``std`` is 0 and the interval is NaN.

    Args:
        a: scores of model A, one per seed.
        b: scores of model B on the same seeds, in the same order.
        confidence: two-sided confidence level, strictly between 0 and 1.

    Raises:
        ValueError: on unequal lengths, empty input, non-1-D input, any NaN/inf value, or a bad confidence.
    """
    conf = _check_confidence(confidence)
    xa = _as_finite_1d(a, "a")
    xb = _as_finite_1d(b, "b")
    if xa.size != xb.size:
        raise ValueError(f"a and b must have the same length (one score per seed), got {xa.size} and {xb.size}")
    d = xa - xb
    n = int(d.size)
    mean = float(d.mean())
    wins = int(np.count_nonzero(d >= TIE_TOLERANCE))
    losses = int(np.count_nonzero(d <= -TIE_TOLERANCE))
    ties = n - wins - losses
    if n < 2:
        return PairedDifference(
            n=n,
            mean=mean,
            std=0.0,
            ci_low=math.nan,
            ci_high=math.nan,
            wins=wins,
            losses=losses,
            ties=ties,
            confidence=conf,
        )
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + conf / 2.0, n - 1)) * std / math.sqrt(n)
    return PairedDifference(
        n=n,
        mean=mean,
        std=std,
        ci_low=mean - half,
        ci_high=mean + half,
        wins=wins,
        losses=losses,
        ties=ties,
        confidence=conf,
    )


def bootstrap_ci(
    diffs: ArrayLike, confidence: float = 0.95, resamples: int = 10000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval for the mean of ``diffs``.

    Draws ``resamples`` resamples of ``diffs`` with replacement (NumPy ``default_rng(seed)``, so the result is
    reproducible), takes each resample's mean, and returns the ``(1-confidence)/2`` and ``(1+confidence)/2``
    percentiles. This is an alternative to the paired t interval of :func:`paired_difference`; the benchmark
    reports the paired t (with few seeds the bootstrap interval is too narrow).

    Raises:
        ValueError: on empty input, any NaN/inf value, ``resamples < 1`` or a bad confidence.
    """
    conf = _check_confidence(confidence)
    d = _as_finite_1d(diffs, "diffs")
    if int(resamples) < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    resamples = int(resamples)
    n = int(d.size)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, min(resamples, 4_000_000 // n))  # bound memory to ~32 MB of indices per chunk
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    alpha = 1.0 - conf
    low, high = np.percentile(means, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Return ``(mean, sample std)`` of ``values`` (ddof=1; std is 0 for a single value).

    Raises:
        ValueError: on empty input or any NaN/inf value.
    """
    v = _as_finite_1d(values, "values")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation of ``x`` and ``y``, ties given their average rank.

    Equals the Pearson correlation of the average ranks (what :func:`scipy.stats.spearmanr` computes). Returns NaN
    when there are fewer than 3 pairs or either side is constant.

    Raises:
        ValueError: on unequal lengths, empty input or any NaN/inf value.
    """
    xs = _as_finite_1d(x, "x")
    ys = _as_finite_1d(y, "y")
    if xs.size != ys.size:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    if xs.size < 3:
        return math.nan
    rx = stats.rankdata(xs, method="average")
    ry = stats.rankdata(ys, method="average")
    rx = rx - rx.mean()
    ry = ry - ry.mean()
    denom = math.sqrt(float(np.dot(rx, rx)) * float(np.dot(ry, ry)))
    if denom == 0.0:
        return math.nan
    return float(np.clip(np.dot(rx, ry) / denom, -1.0, 1.0))


def verdict(claim: str, diff: PairedDifference, unit: str = "mAP", *, digits: int = 1) -> str:
    """One line saying whether the claim "A > B" is supported by ``diff`` (the differences A − B).

    Supported when ``ci_low > 0``, contradicted when ``ci_high < 0``, otherwise not resolved; with fewer than two
    seeds it is always "not resolved (one seed)". Example::

        CG-CLIP > TF-CLIP (sports): supported — +2.3 mAP [+0.8, +3.8], 7 of 8 seeds

    Args:
        claim: the claim's label, e.g. ``"CG-CLIP > TF-CLIP (sports)"``; A is the model on the left.
        diff: the result of :func:`paired_difference` with A's scores first.
        unit: the scores' unit, written after the mean difference (empty for none).
        digits: decimals for the mean and the interval.
    """
    sep = f" {unit}" if unit else ""
    mean = f"{diff.mean:+.{digits}f}{sep}"
    seeds = f"{diff.wins} of {diff.n} seed{'s' if diff.n != 1 else ''}"
    if diff.n < 2:
        return f"{claim}: not resolved (one seed) — {mean}, {seeds}"
    interval = f"[{diff.ci_low:+.{digits}f}, {diff.ci_high:+.{digits}f}]"
    return f"{claim}: {diff.outcome} — {mean} {interval}, {seeds}"
