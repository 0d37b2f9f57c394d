"""Estimates with intervals, and the three verdicts a finding can get.

A criterion of a finding (:mod:`keras_resnet_lab.findings.registry`) compares a statistic
with a threshold. The statistic is measured as an :class:`Estimate`: a value and a 95%
interval, over seeds (each seed trains its own networks) or by bootstrap (one trained model,
resampling test examples, channels or draws). The verdict follows from the interval alone:

- *held* when the whole interval lies on the claim's side of the threshold,
- *not held* when the whole interval lies on the other side,
- *inconclusive* otherwise (or when there is no interval: too few seeds, no data).

A finding with several criteria is held when all are, not held when any is not, and
inconclusive otherwise.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)
#: Two-sided coverage of every interval.
LEVEL = 0.95
#: Bootstrap resamples of every bootstrap interval.
RESAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured statistic: ``value`` with the interval ``[low, high]``.

    Attributes:
        value: the estimate (on all the data, or the mean over seeds).
        low, high: the 95% interval (NaN when it cannot be formed).
        n: how many units the interval is over (seeds, examples, channels, draws).
        method: how the interval was formed, in words (``"t interval over 3 seeds"``).
        samples: the per-seed (or per-task) values, where the interval is over seeds.
    """

    value: float
    low: float
    high: float
    n: int
    method: str
    samples: tuple = ()

    @property
    def has_interval(self):
        return all(math.isfinite(v) for v in (self.value, self.low, self.high))

    def to_dict(self):
        def number(v):
            return float(v) if math.isfinite(v) else None

        return {"value": number(self.value), "interval": [number(self.low), number(self.high)],
                "n": int(self.n), "method": self.method,
                "samples": [number(float(s)) for s in self.samples]}


def missing(reason):
    """An estimate that could not be measured (judged *inconclusive*)."""
    nan = float("nan")
    return Estimate(nan, nan, nan, 0, reason)


def over_seeds(values, unit="seeds"):
    """Mean of per-seed values with a Student-t 95% interval (``n >= 2``; else no interval).

    Example:
        >>> e = over_seeds([1.0, 2.0, 3.0])
        >>> round(e.value, 3), round(e.low, 2), round(e.high, 2)
        (2.0, -0.48, 4.48)
    """
    values = np.asarray([v for v in values if v is not None], dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return missing(f"no finite value over {unit}")
    mean = float(values.mean())
    if n < 2:
        return Estimate(mean, float("nan"), float("nan"), 1, f"one of the {unit}: no interval",
                        tuple(values))
    from scipy import stats

    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n, f"t interval over {n} {unit}",
                    tuple(values))


def over_range(values, unit="tasks"):
    """The median of values that every unit must satisfy, with ``[min, max]`` as interval:
    for exact computations (no sampling noise), where a claim must hold in each unit."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return missing(f"no finite value over {unit}")
    return Estimate(float(np.median(values)), float(values.min()), float(values.max()),
                    len(values), f"median, range over {len(values)} {unit}", tuple(values))


def bootstrap(statistic, n, unit="test examples", resamples=RESAMPLES, seed=0, groups=None):
    """A percentile bootstrap interval of ``statistic(indices)`` over ``n`` units.

    Args:
        statistic: callable of an index array (a resample of ``range(n)``) returning a float;
            called once on ``arange(n)`` for the estimate. With ``n`` a tuple, it takes one
            index array per entry, each resampled independently (e.g. the draws of a lesion
            and the test examples they are scored on).
        n: number of units (examples, draws, channels), or a tuple of such numbers.
        unit: what a unit is, for the method's description.
        resamples: bootstrap resamples.
        seed: seed of the resampling.
        groups: optional array of ``n`` group labels (one array per entry of a tuple ``n``,
            or None): units are resampled within each group (e.g. draws within each number
            of deleted blocks).

    Example:
        >>> x = np.arange(100.0)
        >>> e = bootstrap(lambda i: float(x[i].mean()), 100)
        >>> e.value, e.low < 49.5 < e.high
        (49.5, True)
    """
    sizes = tuple(n) if isinstance(n, (tuple, list)) else (n,)
    if isinstance(n, (tuple, list)):
        groups = [None] * len(sizes) if groups is None else list(groups)
    else:
        groups = [groups]
    if min(sizes) < 2:
        return missing(f"fewer than 2 {unit}")
    rng = np.random.default_rng(seed)
    value = float(statistic(*(np.arange(k) for k in sizes)))
    samplers = [_sampler(k, g) for k, g in zip(sizes, groups)]
    values = np.array([statistic(*(draw(rng) for draw in samplers))
                       for _ in range(resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < resamples // 2 or not math.isfinite(value):
        return missing(f"the statistic is undefined on most resamples of the {unit}")
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    count = " x ".join(str(k) for k in sizes)
    return Estimate(value, float(low), float(high), int(sizes[0]),
                    f"bootstrap over {count} {unit}, {resamples} resamples")


def _sampler(n, groups):
    """A function of a random generator drawing one bootstrap resample of ``range(n)``."""
    if groups is None:
        return lambda rng: rng.integers(0, n, n)
    groups = np.asarray(groups)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    return lambda rng: np.concatenate([rng.choice(m, len(m)) for m in members])


_SIDES = {"<=": (lambda hi, t: hi <= t, lambda lo, t: lo > t),
          "<": (lambda hi, t: hi < t, lambda lo, t: lo >= t),
          ">=": (lambda lo, t: lo >= t, lambda hi, t: hi < t),
          ">": (lambda lo, t: lo > t, lambda hi, t: hi <= t)}


def judge(comparison, threshold, estimate):
    """The verdict of ``estimate`` against ``comparison threshold`` (see the module)."""
    if comparison not in _SIDES:
        raise ValueError(f"`comparison` must be one of {sorted(_SIDES)}, got {comparison!r}.")
    if estimate is None or not estimate.has_interval:
        return INCONCLUSIVE
    clears, fails = _SIDES[comparison]
    if comparison in ("<=", "<"):
        if clears(estimate.high, threshold):
            return HELD
        return NOT_HELD if fails(estimate.low, threshold) else INCONCLUSIVE
    if clears(estimate.low, threshold):
        return HELD
    return NOT_HELD if fails(estimate.high, threshold) else INCONCLUSIVE


def combine(verdicts):
    """A finding's verdict from its criteria's: all held, any not held, else inconclusive."""
    verdicts = list(verdicts)
    if verdicts and all(v == HELD for v in verdicts):
        return HELD
    if any(v == NOT_HELD for v in verdicts):
        return NOT_HELD
    return INCONCLUSIVE


def tally(verdicts):
    """``{"held": n, "not held": n, "inconclusive": n}`` of a list of verdicts."""
    verdicts = list(verdicts)
    return {v: verdicts.count(v) for v in VERDICTS}
