"""Is a question in scope for *this* knowledge base? A relevance model fitted per index.

A fixed threshold on a similarity score cannot be right for every company: a manual of
185 pages about one shell and three pages about a mail client put their in-scope and
out-of-scope questions at different scores. So each index carries its own model, fitted
from the knowledge base alone (``ingest/calibrate.py``: a bank of other products'
questions the package ships, retrieved against this index, sets where "out of scope"
starts; probes written from the documents' own headings and passages anchor the other
side) and stored in the index's metadata.

The model reads the best passage's (or FAQ question's) cosine similarity to the
question. Coverage of the question's words and the share of words the documents never
use were tried as further features and left out: probes written from the documents use
only the documents' words, so a model fitted on them over-trusted those features and
ranked real questions worse (``docs/measured.md``).

Its output is folded so that 0.5 is the fitted boundary between answering and handing
over: ``relevance >= 0.5`` reads "more likely answered by these documents than not".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from supportbot.types import Hit

__all__ = ["FEATURES", "GENERIC_FLOOR", "RelevanceModel", "question_features"]

FEATURES = ("cosine",)
GENERIC_FLOOR = 0.175
"""The relevance floor of an index without a fitted model (the generic passage score)."""
META_KEY = "supportbot:relevance"


def question_features(hits: Sequence[Hit]) -> list[float]:
    """The model's features (:data:`FEATURES`, in order) for the hits of one question."""
    cosine = max(
        (
            max(
                h.extra.get("cosine", 0.0),
                # An agent answer's wordings decide only whether it is the answer (bot.py).
                0.0 if h.chunk.author else h.extra.get("faq_question_cosine", 0.0),
            )
            for h in hits
        ),
        default=0.0,
    )
    return [cosine]


@dataclass(frozen=True)
class RelevanceModel:
    """A logistic model over :data:`FEATURES`, with the boundary folded to 0.5.

    Attributes:
        mean, scale: standardisation of each feature (from the fit).
        coef, intercept: the logistic regression on standardised features.
        threshold: the fitted probability above which the bot answers; folded into
            :meth:`relevance` so that it maps to 0.5.
        expected: rates measured on the probes when it was fitted (held-out folds):
            ``in_scope_handed_over``, ``out_of_scope_answered``, ``auroc`` and counts.
        fitted_on: what it was fitted on (passages, files, index fingerprint, when).
    """

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    expected: dict[str, float] = field(default_factory=dict)
    fitted_on: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES

    def probability(self, x: Sequence[float]) -> float:
        """The fitted probability that the question is in scope (before folding)."""
        z = self.intercept + sum(
            c * (v - m) / (s or 1.0)
            for c, v, m, s in zip(self.coef, x, self.mean, self.scale, strict=True)
        )
        return _sigmoid(z)

    def relevance(self, x: Sequence[float]) -> float:
        """In [0, 1], 0.5 at the fitted boundary: the score the escalation policy reads."""
        p = min(max(self.probability(x), 1e-9), 1 - 1e-9)
        t = min(max(self.threshold, 1e-9), 1 - 1e-9)
        return _sigmoid(math.log(p / (1 - p)) - math.log(t / (1 - t)))

    def to_json(self) -> str:
        """Stored in the index's metadata (:data:`META_KEY`)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RelevanceModel | None:
        """The stored model, or None when it is missing, damaged or for other features."""
        try:
            data = json.loads(text)
            model = cls(**{**data, "features": tuple(data.get("features", ()))})
        except (TypeError, ValueError):
            return None
        if model.features != FEATURES or len(model.coef) != len(FEATURES):
            return None
        return model


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
