"""Statistics behind the cost tables: spread, ratio intervals, significance, geometric mean."""
import math

import numpy as np
import pytest

from pagelab_host import stats


def test_cv_is_sample_stddev_over_mean():
    assert stats.cv([9.0, 11.0]) == pytest.approx(math.sqrt(2) / 10)
    assert stats.cv([5.0]) is None


def test_bootstrap_interval_holds_the_true_ratio():
    rng = np.random.default_rng(1)
    base = rng.normal(100, 3, 20)
    other = rng.normal(150, 4, 20)
    ratio, lo, hi, p = stats.bootstrap_ratio(base, other)
    assert lo < 1.5 < hi
    assert ratio == pytest.approx(np.median(other) / np.median(base))
    assert p < 0.01


def test_no_interval_or_test_below_three_samples():
    assert stats.bootstrap_ratio([1.0, 2.0], [2.0, 3.0])[1:] == (None, None, None)
    assert stats.significance([1.0, 2.0], [2.0, 3.0]) == (None, "n<3")


def test_same_distribution_is_not_significant():
    rng = np.random.default_rng(2)
    a, b = rng.normal(100, 5, 15), rng.normal(100, 5, 15)
    p, _ = stats.significance(list(a), list(b))
    assert p > 0.05 and stats.mark(p) == ""


def test_separated_samples_are_marked():
    p, name = stats.significance([1.0, 1.1, 1.2, 1.05, 1.15], [2.0, 2.1, 2.2, 2.05, 2.15])
    assert p < 0.05 and stats.mark(p) in ("*", "**")
    assert name in ("Mann-Whitney U", "bootstrap")


def test_geomean_ignores_missing_values():
    assert stats.geomean([2.0, 8.0, None]) == pytest.approx(4.0)
    assert stats.geomean([None]) is None


def test_bootstrap_stands_in_without_scipy(monkeypatch):
    monkeypatch.setattr(stats, "_scipy_stats", None)
    p, name = stats.significance([1.0, 1.1, 1.2, 1.05, 1.15], [2.0, 2.1, 2.2, 2.05, 2.15])
    assert name == "bootstrap" and p < 0.05
    assert stats.test_name() == "bootstrap of the ratio of medians"
