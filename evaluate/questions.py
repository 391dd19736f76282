"""Labelled question sets (``kb/eval/questions.jsonl``) and retrieval metrics over them.

One JSON object per line::

    {"id": "q001", "question": "light is amber, no internet??",
     "history": [{"role": "user", "content": "..."}],            # optional
     "gold": [{"source": "nexa-user-manual.md", "section": "LED color and pattern table"},
              {"source": "faq.yaml", "question": "What does a solid amber light mean?"}],
     "facts": ["solid amber"],          # strings a correct answer contains
     "decision": "answer",              # answer | clarify | escalate
     "reasons": [],                     # expected escalation reason codes
     "answer_text": "..."}              # optional: a reference answer (token F1, recall)

A retrieved chunk matches a gold entry when the source is the same and the section
(innermost heading) or the FAQ question is the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from supportbot.errors import ConfigError
from supportbot.types import Chunk, Hit


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


class Gold(BaseModel):
    """A place in the knowledge base that answers the question."""

    source: str
    section: str | None = None
    question: str | None = None

    @model_validator(mode="after")
    def _one_locator(self) -> Gold:
        if not (self.section or self.question):
            raise ValueError("a gold entry needs a 'section' or an FAQ 'question'")
        return self

    def matches(self, chunk: Chunk) -> bool:
        """True when ``chunk`` comes from this gold location."""
        if chunk.source != self.source:
            return False
        if self.question is not None:
            return chunk.question == self.question
        return chunk.section == self.section


class EvalQuestion(BaseModel):
    """One labelled customer question."""

    id: str
    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    gold: list[Gold] = Field(default_factory=list)
    facts: list[str] = Field(default_factory=list)
    decision: Literal["answer", "clarify", "escalate"] = "answer"
    reasons: list[str] = Field(default_factory=list)
    answer_text: str | None = None  # a reference answer: scored by token overlap

    @property
    def answerable(self) -> bool:
        """Has gold passages to retrieve."""
        return self.decision == "answer" and bool(self.gold)


def load_questions(path: Path | str) -> list[EvalQuestion]:
    """Read and validate a question set.

    Raises:
        ConfigError: a line is not JSON or misses required fields; names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Question set {path} does not exist.")
    out: list[EvalQuestion] = []
    ids: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            q = EvalQuestion.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg}).") from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{path}:{number}: {problems}.") from exc
        if q.id in ids:
            raise ConfigError(f"{path}:{number}: duplicate id {q.id!r}.")
        ids.add(q.id)
        out.append(q)
    if not out:
        raise ConfigError(f"Question set {path} holds no questions.")
    return out


@dataclass
class RetrievalScores:
    """Recall@k and MRR over answerable questions."""

    n: int = 0
    recall: dict[int, float] = field(default_factory=dict)
    mrr: float = 0.0
    misses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, float | int]:
        """Flat form for tables and JSON."""
        return {
            "n": self.n,
            **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
        }


def first_gold_rank(question: EvalQuestion, hits: Sequence[Hit]) -> int | None:
    """1-based rank of the first hit from a gold location, or None."""
    for position, hit in enumerate(hits, start=1):
        if any(g.matches(hit.chunk) for g in question.gold):
            return position
    return None


def score_retrieval(
    results: Sequence[tuple[EvalQuestion, Sequence[Hit]]], ks: Sequence[int] = (1, 5, 10)
) -> RetrievalScores:
    """Recall@k (a gold passage among the first k) and mean reciprocal rank."""
    scores = RetrievalScores()
    ranks: list[int | None] = []
    for question, hits in results:
        if not question.answerable:
            continue
        rank = first_gold_rank(question, hits)
        ranks.append(rank)
        if rank is None:
            scores.misses.append(question.id)
    scores.n = len(ranks)
    if not ranks:
        return scores
    for k in ks:
        scores.recall[k] = sum(1 for r in ranks if r is not None and r <= k) / len(ranks)
    scores.mrr = sum(1.0 / r for r in ranks if r is not None) / len(ranks)
    return scores
