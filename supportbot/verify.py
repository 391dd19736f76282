"""Answer verification: keep only the sentences the sources support.

Small models ignore "say you don't know"; this check is what keeps the bot honest. For
every sentence of a generated answer:

1. citations ``[n]`` that point at no source are dropped;
2. its *critical tokens* (numbers, prices, codes, part numbers, versions) must all occur
   in the evidence, because a wrong number is the most harmful hallucination;
3. its content words must mostly occur in the evidence (``min_overlap``), or it must be
   close in meaning to one evidence sentence (``min_similarity``, MiniLM cosine).

The evidence is the passages the sentence cites, or every retrieved passage when it
cites none. A sentence supported by a passage it did not cite is kept and re-cited; one
supported by nothing is removed, and the reason is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from supportbot.embed import Embedder
from supportbot.keyword import tokenize
from supportbot.safety.hygiene import INJECTION_MARKER, neutralise_instructions
from supportbot.types import Hit, Removed

MIN_CLAIM_WORDS = 3
"""Sentences with fewer content words ("Yes, I do.") cannot be checked, so they go."""

_CITATION = re.compile(r"\s*\[(\d{1,2})\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")
_CRITICAL = re.compile(r"\b[A-Za-z]+(?:-[A-Za-z0-9]+)+|\$?\d[\d,.:]*%?")


@dataclass
class Verification:
    """The verified answer and the record of what the check changed."""

    text: str
    cited: list[int] = field(default_factory=list)
    kept: int = 0
    removed: list[Removed] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)

    @property
    def supported_share(self) -> float:
        """Kept sentences over all sentences with content (1.0 when nothing was said)."""
        total = self.kept + len(self.removed)
        return self.kept / total if total else 0.0


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer, keeping decimals, versions and menu paths whole."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def critical_tokens(sentence: str) -> set[str]:
    """Numbers, prices, codes and part numbers, normalised for comparison."""
    out = set()
    for m in _CRITICAL.finditer(sentence):
        tok = m.group(0).lower().rstrip(".,:").replace(",", "")
        if tok and any(ch.isdigit() for ch in tok):
            out.add(tok)
    return out


def _normalised_text(text: str) -> str:
    return text.lower().replace(",", "")


class AnswerVerifier:
    """Checks answer sentences against retrieved passages.

    Example:
        >>> v = AnswerVerifier(embedder)
        >>> v.verify("Hold reset for 15 seconds [1].", hits).text
        'Hold reset for 15 seconds [1].'
    """

    def __init__(
        self, embedder: Embedder | None, min_overlap: float = 0.6, min_similarity: float = 0.72
    ) -> None:
        self.embedder = embedder
        self.min_overlap = min_overlap
        self.min_similarity = min_similarity

    def verify(self, answer: str, hits: Sequence[Hit]) -> Verification:
        """Return the supported part of ``answer`` with valid citations only."""
        result = Verification(text="")
        sentences = split_sentences(answer)
        if not sentences or not hits:
            result.removed = [Removed(s, "no sources to support it") for s in sentences]
            return result
        # Text addressed to the assistant is neither shown nor accepted as evidence (nor is
        # the marker that replaced it: a model echoing the marker says nothing supported).
        passages = [
            neutralise_instructions(h.chunk.text).replace(INJECTION_MARKER, " ") for h in hits
        ]
        passage_tokens = [set(tokenize(p)) for p in passages]
        similarity = _LazySimilarity(self.embedder, passages) if self.embedder else None
        kept: list[str] = []
        seen: set[str] = set()
        for raw in sentences:
            cites = [int(n) for n in _CITATION.findall(raw)]
            valid = [n for n in cites if 1 <= n <= len(hits)]
            result.dropped_citations += [n for n in cites if n not in valid]
            bare = _CITATION.sub("", raw).strip()
            words = {w for w in tokenize(bare) if not w.replace(".", "").isdigit()}
            key = " ".join(sorted(words))
            if not words or key in seen:
                continue  # list numbers, filler ("Sure!") and repeats are not claims
            seen.add(key)
            if len(words) < MIN_CLAIM_WORDS:
                result.removed.append(Removed(bare, "too short to check against the sources"))
                continue
            order = [n - 1 for n in dict.fromkeys(valid)] or list(range(len(hits)))
            order += [j for j in range(len(hits)) if j not in order]
            support, reason = self._find_support(
                bare, words, order, passages, passage_tokens, similarity
            )
            if support is None:
                result.removed.append(Removed(bare, reason))
                continue
            sentence = bare.rstrip()
            end = sentence[-1] if sentence[-1] in ".!?" else "."
            body = sentence[:-1] if sentence[-1] in ".!?" else sentence
            kept.append(f"{body.rstrip()} [{support + 1}]{end}")
            if support + 1 not in result.cited:
                result.cited.append(support + 1)
        result.kept = len(kept)
        result.text = " ".join(kept)
        return result

    def _find_support(
        self,
        sentence: str,
        words: set[str],
        order: list[int],
        passages: list[str],
        passage_tokens: list[set[str]],
        similarity: _LazySimilarity | None,
    ) -> tuple[int | None, str]:
        """Index of the first passage (cited ones first) that supports ``sentence``."""
        critical = critical_tokens(sentence)
        candidates: list[int] = []
        reason = ""
        for j in order:
            text = _normalised_text(passages[j])
            missing = sorted(t for t in critical if t not in text)
            if missing:
                reason = reason or f"not in the sources: {', '.join(missing)}"
                continue
            overlap = len(words & passage_tokens[j]) / len(words)
            if overlap >= self.min_overlap:
                return j, ""
            candidates.append(j)
            reason = reason or f"not supported by the sources (word overlap {overlap:.2f})"
        if similarity is not None and candidates:
            scores = similarity.best(sentence)
            best = max(candidates, key=lambda j: scores[j])
            if scores[best] >= self.min_similarity:
                return best, ""
            reason = f"{reason}, similarity {scores[best]:.2f}" if reason else reason
        return None, reason or "not supported by the sources"


class _LazySimilarity:
    """Sentence embeddings of the passages, computed only if some sentence needs them."""

    def __init__(self, embedder: Embedder, passages: list[str]) -> None:
        self.embedder = embedder
        self.passage_sents = [split_sentences(p) or [p] for p in passages]
        self._vecs: list[list[list[float]]] | None = None

    def best(self, sentence: str) -> list[float]:
        """Best cosine of ``sentence`` to any sentence of each passage."""
        if self._vecs is None:
            flat = [s for ps in self.passage_sents for s in ps]
            vecs = self.embedder.embed(flat)
            self._vecs, start = [], 0
            for ps in self.passage_sents:
                self._vecs.append(vecs[start : start + len(ps)])
                start += len(ps)
        sv = self.embedder.embed_query(sentence)
        return [
            max((sum(a * b for a, b in zip(sv, pv, strict=True)) for pv in pvs), default=0.0)
            for pvs in self._vecs
        ]


def best_sentences(question_vec: list[float], hit: Hit, embedder: Embedder, n: int = 2) -> str:
    """The ``n`` sentences of a passage closest to the question, in passage order.

    Used as the honest fallback when nothing the model wrote survives verification.
    """
    sents = [
        s
        for s in split_sentences(neutralise_instructions(hit.chunk.text))
        if INJECTION_MARKER not in s
    ] or [INJECTION_MARKER]
    if len(sents) <= n:
        return " ".join(sents)
    vecs = embedder.embed(sents)
    scored = sorted(
        range(len(sents)),
        key=lambda i: -sum(a * b for a, b in zip(question_vec, vecs[i], strict=True)),
    )
    keep = sorted(scored[:n])
    return " ".join(sents[i] for i in keep)
