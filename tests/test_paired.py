"""Tests for cgclip.eval.paired: paired-t intervals, sign counts, verdicts, Spearman, bootstrap, errors."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from cgclip.eval.paired import PairedDifference, bootstrap_ci, mean_std, paired_difference, spearman, verdict


def test_hand_computed_interval():
    d = paired_difference([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0])
    assert d.n == 4
    assert d.mean == pytest.approx(2.5)
    assert d.std == pytest.approx(1.2909944, abs=1e-6)
    # t(0.975, 3) = 3.1824463; half width = 3.1824463 * 1.2909944 / 2 = 2.0542
    assert d.ci_low == pytest.approx(0.4457, abs=1e-3)
    assert d.ci_high == pytest.approx(4.5543, abs=1e-3)
    assert (d.wins, d.losses, d.ties) == (4, 0, 0)
    assert d.confidence == 0.95
    assert d.method == "paired t"


def test_other_confidence_is_wider_or_narrower():
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0] * 4
    d90 = paired_difference(a, b, confidence=0.90)
    d99 = paired_difference(a, b, confidence=0.99)
    d95 = paired_difference(a, b)
    assert d90.ci_high - d90.ci_low < d95.ci_high - d95.ci_low < d99.ci_high - d99.ci_low
    assert d99.confidence == 0.99


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_matches_scipy_ttest_rel(confidence):
    rng = np.random.default_rng(3)
    a = rng.normal(50, 5, size=8)
    b = a - rng.normal(1.5, 2.0, size=8)
    res = stats.ttest_rel(a, b)
    if not hasattr(res, "confidence_interval"):
        pytest.skip("this scipy's ttest_rel has no confidence_interval")
    ci = res.confidence_interval(confidence_level=confidence)
    d = paired_difference(a, b, confidence=confidence)
    assert d.ci_low == pytest.approx(ci.low, rel=1e-9, abs=1e-12)
    assert d.ci_high == pytest.approx(ci.high, rel=1e-9, abs=1e-12)
    assert d.mean == pytest.approx(float(np.mean(a - b)))


def test_sign_counts_with_ties():
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [0.5, 2.0, 3.5, 4.0 + 1e-12, 4.0, 6.0 - 1e-10]
    d = paired_difference(a, b)
    assert (d.wins, d.losses, d.ties) == (2, 1, 3)
    assert d.wins + d.losses + d.ties == d.n


def test_single_pair():
    d = paired_difference([3.0], [1.0])
    assert d.n == 1 and d.mean == 2.0 and d.std == 0.0
    assert math.isnan(d.ci_low) and math.isnan(d.ci_high)
    assert (d.wins, d.losses, d.ties) == (1, 0, 0)
    assert verdict("A > B", d) == "A > B: not resolved (one seed) — +2.0 mAP, 1 of 1 seed"


def test_constant_differences_give_point_interval():
    d = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert d.std == pytest.approx(0.0, abs=1e-12)
    assert d.ci_low == pytest.approx(1.0) and d.ci_high == pytest.approx(1.0)
    assert d.outcome == "supported"


def test_to_dict_and_frozen():
    d = paired_difference([1.0, 2.0, 3.0, 4.0], [0.0] * 4)
    out = d.to_dict()
    assert set(out) == {"n", "mean", "std", "ci_low", "ci_high", "wins", "losses", "ties", "confidence", "method"}
    assert out["n"] == 4 and out["method"] == "paired t"
    json.dumps(out)
    with pytest.raises(AttributeError):
        d.mean = 0.0  # type: ignore[misc]


def test_verdict_supported_exact_format():
    d = PairedDifference(n=8, mean=2.3, std=1.8, ci_low=0.8, ci_high=3.8, wins=7, losses=1, ties=0)
    assert verdict("CG-CLIP > TF-CLIP (sports)", d) == (
        "CG-CLIP > TF-CLIP (sports): supported — +2.3 mAP [+0.8, +3.8], 7 of 8 seeds"
    )


def test_verdict_three_outcomes_from_data():
    b = [50.0, 52.0, 48.0, 51.0, 49.0]
    better = paired_difference([x + 2.0 + 0.1 * i for i, x in enumerate(b)], b)
    worse = paired_difference([x - 2.0 - 0.1 * i for i, x in enumerate(b)], b)
    mixed = paired_difference([x + s for x, s in zip(b, [1.0, -1.0, 0.5, -0.7, 0.1])], b)
    v_better = verdict("A > B", better)
    v_worse = verdict("A > B", worse, unit="R1")
    v_mixed = verdict("A > B", mixed, unit="")
    assert v_better.startswith("A > B: supported — +2.2 mAP [")
    assert v_better.endswith(", 5 of 5 seeds")
    assert v_worse.startswith("A > B: contradicted — -2.2 R1 [")
    assert v_worse.endswith(", 0 of 5 seeds")
    assert v_mixed.startswith("A > B: not resolved — ")
    assert mixed.ci_low < 0 < mixed.ci_high
    assert v_mixed.endswith(", 3 of 5 seeds")
    assert "mAP" not in v_mixed
    assert "\n" not in v_better + v_worse + v_mixed


def test_verdict_digits():
    d = PairedDifference(n=3, mean=0.0234, std=0.01, ci_low=0.004, ci_high=0.05, wins=3, losses=0, ties=0)
    assert verdict("A > B", d, digits=3) == "A > B: supported — +0.023 mAP [+0.004, +0.050], 3 of 3 seeds"


def test_spearman_with_ties_matches_scipy():
    x = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 8.0]
    y = [2.0, 1.0, 4.0, 4.0, 3.0, 7.0, 6.0, 9.0]
    expected = stats.spearmanr(x, y).statistic
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12)


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = 1, 2.5, 2.5, 4 against y = 1, 2, 3, 4: rho = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5.0))


def test_spearman_nan_cases():
    assert math.isnan(spearman([1.0, 2.0], [2.0, 1.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]))
    with pytest.raises(ValueError, match="same length"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])


def test_mean_std():
    m, s = mean_std([1.0, 2.0, 3.0, 4.0])
    assert m == pytest.approx(2.5) and s == pytest.approx(1.2909944, abs=1e-6)
    assert mean_std([7.0]) == (7.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        mean_std([])


def test_bootstrap_reproducible_and_contains_mean():
    rng = np.random.default_rng(0)
    diffs = rng.normal(2.0, 1.5, size=8)
    lo1, hi1 = bootstrap_ci(diffs, seed=7, resamples=5000)
    lo2, hi2 = bootstrap_ci(diffs, seed=7, resamples=5000)
    assert (lo1, hi1) == (lo2, hi2)
    assert lo1 < float(diffs.mean()) < hi1
    lo3, hi3 = bootstrap_ci(diffs, seed=8, resamples=5000)
    assert (lo3, hi3) != (lo1, hi1)
    lo99, hi99 = bootstrap_ci(diffs, confidence=0.99, seed=7, resamples=5000)
    assert lo99 <= lo1 and hi99 >= hi1
    # with few seeds the bootstrap interval is no wider than the paired t interval
    t = paired_difference(diffs, np.zeros_like(diffs))
    assert hi1 - lo1 < t.ci_high - t.ci_low


def test_bootstrap_degenerate_and_errors():
    assert bootstrap_ci([1.5]) == (1.5, 1.5)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci([1.0, 2.0], resamples=0)


def test_paired_difference_errors():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="non-finite.*nan"):
        paired_difference([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite.*inf"):
        paired_difference([1.0, 2.0], [float("inf"), 2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        paired_difference([[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1.0, 2.0], [0.0, 0.0], confidence=1.0)
