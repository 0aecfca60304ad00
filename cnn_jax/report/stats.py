"""Statistics for comparing accuracies: summaries over seeds, Student-t intervals, the paired
bootstrap over test examples and the exact sign test (McNemar's test when each side is one
run). Pure math and numpy, because scipy is not a dependency of the package.

Two sources of noise are kept apart. Seeds (training randomness) are summarised with
Student's t, which suits the handful of seeds a suite trains. The test set (which examples
happened to be drawn) is handled per example, pairing both runs on the same images.
"""

import math
from fractions import Fraction

import numpy as np

# The sign test sums binomial terms exactly with Python integers up to this many untied
# examples (under a second at the limit; the whole ImageNet validation set is 50,000
# images); beyond it the cost grows with the square of the count, so the same sum runs in
# log space in floating point (relative error about 1e-9).
EXACT_SIGN_TEST_LIMIT = 50_000


def mean_and_std(values) -> tuple:
    """(mean, sample standard deviation with n - 1 in the denominator); the std is None for one value."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the CDF of the Beta(a, b) distribution at x."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side; use symmetry on the other
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(1.0 - x, b, a) / b


def student_t_cdf(t: float, df: float) -> float:
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    tail = 0.5 * regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, by bisection on the CDF (to about 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, not {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if student_t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_interval(values, level: float = 0.95):
    """The Student-t confidence interval of the mean over seeds, (low, high); None for one value."""
    mean, std = mean_and_std(values)
    if std is None:
        return None
    half = student_t_quantile(0.5 + level / 2.0, len(values) - 1) * std / math.sqrt(len(values))
    return mean - half, mean + half


def consistent_with(values, constant: float, level: float = 0.95):
    """Whether `constant` lies inside the mean's t interval: a two-sided one-sample t-test at
    1 - level does not reject "the expected value is `constant`". None for a single value."""
    interval = mean_interval(values, level)
    if interval is None:
        return None
    return interval[0] <= constant <= interval[1]


def welch_interval(a, b, level: float = 0.95):
    """The difference of means mean(a) - mean(b) with Welch's t interval, for two groups of
    seeds with possibly different spreads: (difference, low, high, degrees of freedom).
    None when either side has a single value (no spread to estimate)."""
    (mean_a, std_a), (mean_b, std_b) = mean_and_std(a), mean_and_std(b)
    if std_a is None or std_b is None:
        return None
    va, vb = std_a**2 / len(a), std_b**2 / len(b)
    diff = mean_a - mean_b
    if va + vb == 0.0:  # every seed scored the same: the difference has no spread to test
        return diff, diff, diff, math.inf
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = student_t_quantile(0.5 + level / 2.0, df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half, df


def paired_bootstrap_interval(differences, resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> tuple:
    """Percentile interval of mean(differences) when the test examples are resampled with
    replacement: `differences[i]` is A's score minus B's on example i, so each resample keeps
    the pairs together. Returns (low, high).

    A resample's mean depends only on how often each distinct difference is drawn, so the
    draws are multinomial counts over the distinct values: the same distribution as
    resampling indices, at a cost that does not grow with the number of examples.
    """
    differences = np.asarray(differences, dtype=np.float64)
    n = differences.size
    if n == 0:
        raise ValueError("the paired bootstrap needs at least one example")
    values, counts = np.unique(differences, return_counts=True)
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(n, counts / n, size=int(resamples))
    means = drawn @ values / n
    low, high = np.quantile(means, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return float(low), float(high)


def _binomial_lower_tail_exact(k: int, n: int) -> Fraction:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly."""
    term = total = 1  # C(n, 0)
    for i in range(k):
        term = term * (n - i) // (i + 1)  # C(n, i + 1), exact: C(n, i) * (n - i) is divisible by i + 1
        total += term
    return Fraction(total, 2**n)


def _binomial_lower_tail_log(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (for n too large to sum exactly)."""
    i = np.arange(k, dtype=np.float64)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log(n - i) - np.log(i + 1.0))]) - n * math.log(2.0)
    top = float(log_terms.max())
    return math.exp(top + math.log(float(np.exp(log_terms - top).sum())))


def sign_test(wins_a: int, wins_b: int) -> tuple:
    """Two-sided exact sign test of "A and B are equally likely to win an untied example":
    p = min(1, 2 P(X <= min(wins))) with X ~ Binomial(wins_a + wins_b, 1/2). With one run on
    each side the wins are the discordant pairs (A right and B wrong, and the reverse) and
    this is McNemar's exact test. Returns (p, method): method is "exact", or "log-space"
    beyond EXACT_SIGN_TEST_LIMIT untied examples (the same sum in floating point)."""
    n, k = int(wins_a) + int(wins_b), min(int(wins_a), int(wins_b))
    if n <= EXACT_SIGN_TEST_LIMIT:
        return float(min(Fraction(1), 2 * _binomial_lower_tail_exact(k, n))), "exact"
    return min(1.0, 2.0 * _binomial_lower_tail_log(k, n)), "log-space"
