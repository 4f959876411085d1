"""Paired statistics over seeds: every method of a seed shares its data,
teacher and student initialisation, so methods are compared seed by seed."""
import math
from dataclasses import dataclass
from typing import Optional, Sequence


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (SciPy's ``t.ppf``)."""
    from scipy.stats import t
    return float(t.ppf(p, df))


@dataclass
class Paired:
    """Per-seed differences a - b of the seeds where both finished.

    Attributes:
        n (int): Seeds with both values.
        mean (float): Mean difference.
        low (float): Lower end of the 95% t-interval (nan for n < 2).
        high (float): Upper end.
        wins (int): Seeds where a > b.
    """
    n: int
    mean: float
    low: float
    high: float
    wins: int

    def text(self, scale: float = 100.0) -> str:
        """'+1.2 [−0.3, +2.7], 4/5' (points, interval, seeds won)."""
        if self.n == 0:
            return 'n/a'
        if self.n == 1:
            return f'{scale * self.mean:+.1f}, {self.wins}/1'
        return (f'{scale * self.mean:+.1f} [{scale * self.low:+.1f}, '
                f'{scale * self.high:+.1f}], {self.wins}/{self.n}')

    def verdict(self) -> str:
        """What the interval allows: 'better', 'worse' or 'unresolved'."""
        if self.n < 2:
            return 'unresolved'
        if self.low > 0:
            return 'better'
        if self.high < 0:
            return 'worse'
        return 'unresolved'


def paired(a: Sequence[float], b: Sequence[float],
           confidence: float = 0.95) -> Paired:
    """Mean of the per-seed differences a_i - b_i with its t-interval.

    Seeds where either value is missing (nan) are left out.

    Args:
        a (Sequence[float]): One value per seed.
        b (Sequence[float]): The same seeds' values of the reference.
        confidence (float): Of the two-sided interval. Defaults to 0.95.

    Raises:
        ValueError: If ``a`` and ``b`` differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f'{len(a)} values against {len(b)}: expected one '
                         'per seed on both sides')
    diffs = [x - y for x, y in zip(a, b)
             if not (math.isnan(x) or math.isnan(y))]
    n = len(diffs)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, 0)
    mean = sum(diffs) / n
    wins = sum(d > 0 for d in diffs)
    if n == 1:
        return Paired(1, mean, math.nan, math.nan, wins)
    sd = math.sqrt(sum((d - mean)**2 for d in diffs) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Paired(n, mean, mean - half, mean + half, wins)


def mean_std(values: Sequence[float], scale: float = 100.0) -> str:
    """'mean ± sample std' of the finite values, in points."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return 'n/a'
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f'{scale * mean:.1f}'
    std = math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1))
    return f'{scale * mean:.1f} ± {scale * std:.1f}'


def mean(values: Sequence[float]) -> Optional[float]:
    """Mean of the finite values, None if there are none."""
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else None
