"""Confidence intervals, ranking quality and answer overlap for evaluation figures.

A figure from 55 or 110 questions moves by several points with the sample: every rate
the evaluation reports carries a 95% interval, so a change is read against its noise.

Answers are scored against a reference text (a question's ``answer_text``) by token
overlap (:func:`token_scores`), the SQuAD-style F1 without its article removal.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["TokenScores", "answer_tokens", "auroc", "bootstrap_ci", "token_scores", "wilson"]

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


_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_WORD = re.compile(r"[^\W_]+")


def answer_tokens(text: str) -> list[str]:
    """The words an answer is scored on: lowercased runs of letters and digits.

    Citation markers (``[1]``, ``[1, 2]``) are dropped: they are not content. Punctuation
    splits words ("E-104" is "e", "104"; "don't" is "don", "t"). Stopwords are *kept*,
    so the figure is comparable with the usual SQuAD-style token F1 (which keeps them too,
    removing only articles); it rewards answers that use the reference's own wording.
    """
    return _WORD.findall(_CITATION.sub(" ", text).lower())


@dataclass(frozen=True)
class TokenScores:
    """Token overlap of an answer with a reference text (each in 0..1)."""

    precision: float
    recall: float
    f1: float


def token_scores(answer: str, reference: str) -> TokenScores:
    """Precision, recall and F1 of the answer's tokens against the reference's.

    Tokens are counted as multisets (a word said twice counts twice only if the reference
    has it twice). Recall is the share of the reference's tokens the answer holds: with a
    long reference (a whole FAQ entry) recall and F1 are low even for a right answer, so
    compare models on the same references rather than reading the figure alone. An empty
    answer or reference scores 0.
    """
    got, want = Counter(answer_tokens(answer)), Counter(answer_tokens(reference))
    common = sum((got & want).values())
    if not common:
        return TokenScores(0.0, 0.0, 0.0)
    precision = common / sum(got.values())
    recall = common / sum(want.values())
    return TokenScores(precision, recall, 2 * precision * recall / (precision + recall))
