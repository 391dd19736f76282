"""Grouping questions by meaning: the same question in other words lands in one gap.

Questions are embedded with the index's own embedder and grouped by scikit-learn's
:class:`~sklearn.cluster.AgglomerativeClustering` on cosine distance with **average
linkage** and a distance threshold (``gaps.group_distance``), so the number of gaps is not
fixed in advance: two groups merge while the mean distance between their questions stays
under the threshold. Average linkage was chosen over single linkage (which chains unrelated
questions through intermediate ones) and complete linkage (which splits paraphrases that
are close to most of their group but far from one member). The threshold was fitted on
public intent data that the replay test does not use (``python bench/gaps.py --fit``,
``docs/measured.md``).

A group's **centre** (the normalised mean of its questions' vectors) is also how an
approved agent answer is matched later: the managed FAQ stores the customers' own wordings
with the answer and ingestion gives the entry their centre as its question vector
(``ingest/pipeline.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["centre", "cosine", "group", "medoid_order"]


def centre(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The normalised mean of ``vectors``: the direction a group of questions points in.

    Raises:
        ValueError: no vectors, or they cancel out (a zero mean has no direction).
    """
    if not vectors:
        raise ValueError("centre() needs at least one vector")
    dim = len(vectors[0])
    total = [0.0] * dim
    for vec in vectors:
        for i, x in enumerate(vec):
            total[i] += float(x)
    norm = math.sqrt(sum(x * x for x in total))
    if norm == 0.0:
        raise ValueError("the vectors cancel out: their mean has no direction")
    return [x / norm for x in total]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    dot = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float(x) * float(x) for x in a))
    nb = math.sqrt(sum(float(y) * float(y) for y in b))
    return dot / (na * nb) if na and nb else 0.0


def group(vectors: Sequence[Sequence[float]], distance: float) -> list[int]:
    """A group number per vector (0, 1, ...), biggest group first, ties by first member.

    Args:
        vectors: one embedding per question.
        distance: average-linkage cosine distance at which groups stop merging (0..2).

    Example:
        >>> group([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], 0.5)
        [0, 0, 1]
    """
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [0]
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering

    matrix = np.asarray(vectors, dtype=float)
    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=distance,
    ).fit_predict(matrix)
    sizes: dict[int, int] = {}
    first: dict[int, int] = {}
    for i, label in enumerate(int(x) for x in labels):
        sizes[label] = sizes.get(label, 0) + 1
        first.setdefault(label, i)
    order = sorted(sizes, key=lambda lab: (-sizes[lab], first[lab]))
    renumber = {lab: i for i, lab in enumerate(order)}
    return [renumber[int(x)] for x in labels]


def medoid_order(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of ``vectors`` from the most typical (closest to the centre) to the least.

    The first is the group's label: a real customer's wording, not a made-up summary.
    """
    if not vectors:
        return []
    middle = centre(vectors)
    return sorted(range(len(vectors)), key=lambda i: (-cosine(vectors[i], middle), i))
