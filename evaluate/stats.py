"""Confidence intervals and ranking quality for evaluation figures.

A figure from 55 or 110 questions moves by several points with the sample: every rate
the evaluation reports carries a 95% interval, so a change is read against its noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["auroc", "bootstrap_ci", "wilson"]

T = TypeVar("T")

Z95 = 1.959964


def wilson(successes: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion (sound at 0 and n, unlike the normal one)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """Area under the ROC curve: chance a random positive scores above a random negative.

    Computed by scikit-learn's ``roc_auc_score``; None when a class is empty.
    """
    if not positive or not negative:
        return None
    from sklearn.metrics import roc_auc_score

    labels = [1] * len(positive) + [0] * len(negative)
    return float(roc_auc_score(labels, [*positive, *negative]))


def bootstrap_ci(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float | None],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of ``statistic`` over ``items`` (resampled rows).

    Deterministic for a given seed, so two runs of the same evaluation print the same
    interval.
    """
    if len(items) < 2:
        return None
    rng = random.Random(seed)
    values: list[float] = []
    for _ in range(resamples):
        sample = [items[rng.randrange(len(items))] for _ in items]
        value = statistic(sample)
        if value is not None:
            values.append(value)
    if not values:
        return None
    values.sort()
    low = values[int(0.025 * (len(values) - 1))]
    high = values[int(0.975 * (len(values) - 1))]
    return (round(low, 4), round(high, 4))
