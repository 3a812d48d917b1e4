"""Spread, ratios with confidence intervals, significance and geometric means."""
import math

import numpy as np

try:
    from scipy import stats as _scipy_stats
except ImportError:
    _scipy_stats = None

BOOTSTRAP_RESAMPLES = 2000
MIN_N_FOR_TEST = 3


def median(xs):
    return float(np.median(xs)) if len(xs) else None


def cv(xs):
    """Coefficient of variation (sample stddev / mean), None below two samples."""
    if len(xs) < 2:
        return None
    m = float(np.mean(xs))
    return float(np.std(xs, ddof=1)) / m if m else None


def bootstrap_ratio(base, other, seed=12345):
    """Ratio of medians other/base with a 95% bootstrap interval and a two-sided p-value."""
    base = np.asarray(base, dtype=float)
    other = np.asarray(other, dtype=float)
    ratio = float(np.median(other) / np.median(base))
    if len(base) < MIN_N_FOR_TEST or len(other) < MIN_N_FOR_TEST:
        return ratio, None, None, None
    rng = np.random.default_rng(seed)
    bi = rng.integers(0, len(base), size=(BOOTSTRAP_RESAMPLES, len(base)))
    oi = rng.integers(0, len(other), size=(BOOTSTRAP_RESAMPLES, len(other)))
    r = np.median(other[oi], axis=1) / np.median(base[bi], axis=1)
    lo, hi = np.percentile(r, [2.5, 97.5])
    p = 2.0 * min(float(np.mean(r <= 1.0)), float(np.mean(r >= 1.0)))
    return ratio, float(lo), float(hi), min(1.0, p)


def significance(base, other):
    """(p-value, test name), or (None, reason) when the samples are too few."""
    if len(base) < MIN_N_FOR_TEST or len(other) < MIN_N_FOR_TEST:
        return None, "n<%d" % MIN_N_FOR_TEST
    if _scipy_stats is not None:
        if len(set(base) | set(other)) == 1:
            return 1.0, "Mann-Whitney U"
        res = _scipy_stats.mannwhitneyu(base, other, alternative="two-sided")
        return float(res.pvalue), "Mann-Whitney U"
    return bootstrap_ratio(base, other)[3], "bootstrap"


def mark(p):
    if p is None:
        return ""
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return ""


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0 and math.isfinite(x)]
    if not xs:
        return None
    return float(math.exp(sum(math.log(x) for x in xs) / len(xs)))


def test_name():
    return "Mann-Whitney U (scipy)" if _scipy_stats is not None else "bootstrap of the ratio of medians"
