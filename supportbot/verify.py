"""Answer verification: keep only the sentences one source sentence supports.

Small models ignore "say you don't know"; this check is what keeps the bot honest. Every
sentence of a generated answer is checked on its own:

1. citations ``[n]`` that point at no source are dropped;
2. **fragments** go: a sentence that announces what it does not give (ends in a colon)
   or stops mid-phrase (ends in "with", "and", "the");
3. **echoes** go: a sentence whose content words are all the question's own (plus
   generic support words: "use", "following", "steps") says nothing;
4. it must be supported by **one source sentence, or two adjacent ones**, not by words
   scattered over passages: its *critical tokens* (numbers, prices, codes, versions) must
   all occur there, and its content words must mostly occur there (``min_overlap``), or
   it must be close in meaning to one source sentence (``min_similarity``, MiniLM cosine);
5. its **polarity** must match that source: "yes", "can", "is supported" against "no",
   "cannot", "unusable" is a contradiction, whatever the shared words.

The evidence is the passages the sentence cites first, then the others. A sentence
supported by a passage it did not cite is kept and re-cited; one supported by nothing is
removed, and the reason is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from supportbot.embed import Embedder
from supportbot.keyword import tokenize
from supportbot.safety.hygiene import INJECTION_MARKER, neutralise_instructions
from supportbot.span import split_units
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


_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")

NEGATIONS = frozenset(
    """not no never cannot can't won't don't doesn't isn't aren't wasn't weren't hasn't
    haven't hadn't shouldn't couldn't wouldn't mustn't didn't nothing none neither nor
    nobody nowhere unable unusable unsupported impossible""".split()
)
"""Words that turn a statement negative (English; "n't" forms are matched whole)."""

GENERIC = frozenset(
    """use uses used using way ways following follow steps step able need needs want help
    set setup make sure simply just like also get getting possible option options case
    thing things work works working question answer information details detail section
    manual guide documentation refer see check try yes sure course certainly""".split()
)
"""Words that say nothing about a product: a sentence made of these and the question's
own words restates the question."""

_DANGLING = frozenset(
    """a an the and or but nor of with for from is are was were be been being its their
    your our such including via""".split()
)
"""A sentence ending in one of these stopped mid-phrase."""


def _stem(word: str) -> str:
    """Crude English stem, enough to see that "using" restates "use"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _share(words: set[str], tokens: frozenset[str]) -> float:
    """Share of ``words`` found in ``tokens`` (1.0 when there are no words to find)."""
    return len(words & tokens) / len(words) if words else 1.0


def negated(text: str) -> bool:
    """True when the text states something negative ("cannot", "is not", "unusable")."""
    return any(w in NEGATIONS or w.endswith("n't") for w in _WORDS.findall(text.lower()))


def restates(sentence: str, question: str) -> bool:
    """True when the sentence adds fewer than two content words to the question's own.

    A number or code the question does not hold is information on its own ("90 minutes"
    answers "how many minutes"), and so is the opposite polarity ("cannot" answers
    "can I").
    """
    if not question.strip() or critical_tokens(sentence) - critical_tokens(question):
        return False
    if negated(sentence) != negated(question):
        return False  # "cannot" answers "can I"
    asked = {_stem(w) for w in tokenize(question)}
    new = {
        _stem(w)
        for w in tokenize(sentence)
        if w not in GENERIC and _stem(w) not in asked and not w.replace(".", "").isdigit()
    }
    return len(new - {_stem(g) for g in GENERIC}) < 2


_START = re.compile(r"[\w\"'(`\u201c\u2018$./~]")
"""How a whole sentence can begin: a word, a number, a quote, a path or a variable."""
_UNSURE = re.compile(
    r"^\W*(?:i'm|i am|i)\s+(?:not sure|not certain|unsure|don't know|do not know|"
    r"cannot (?:say|tell|answer|help)|can't (?:say|tell|answer|help)|am unable|'m unable|"
    r"have no information|don't have|do not have)|^\W*(?:sorry|i'm sorry|i am sorry)\b",
    re.IGNORECASE,
)
"""The model speaking of what it does not know: no claim about the product."""


def _unmentioned(words: set[str], asked: set[str], source: frozenset[str]) -> list[str]:
    """The question's words the sentence repeats that its source never mentions.

    ``asked`` holds the question's stemmed words, ``source`` the source's tokens. A word
    counts as mentioned when a source word starts with its first six letters (stemmed),
    so "charging" is found in "charge".
    """
    seen = {_stem(t) for t in source}
    out = []
    for w in sorted(words):
        if w in GENERIC or _stem(w) not in asked or w.replace(".", "").isdigit():
            continue
        head = _stem(w)[:6]
        if not any(t.startswith(head) for t in seen):
            out.append(w)
    return out


def fragment(sentence: str) -> str:
    """Why the sentence is not a whole statement ("" when it is)."""
    body = sentence.rstrip().rstrip(".!?").rstrip()
    if sentence.rstrip().endswith(":") or body.endswith(":"):
        return "announces something it does not give"
    item = re.sub(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+", "", body)  # a list item's text
    if item and not _START.match(item):
        return "starts mid-sentence"  # a copied tail: '\n "Hi Joe', '<list@host>'
    if _UNSURE.match(item):
        return "says only that the model is unsure"
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", body.lower())
    if words and words[-1] in _DANGLING:
        return "stops mid-sentence"
    if body.count("(") != body.count(")") or body.count('"') % 2:
        return "stops mid-sentence"
    return ""


class AnswerVerifier:
    """Checks answer sentences against the sentences of the sources.

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

    def verify(self, answer: str, hits: Sequence[Hit], question: str = "") -> Verification:
        """Return the supported part of ``answer`` with valid citations only.

        Args:
            answer: the model's text.
            hits: the sources it was given, numbered from 1.
            question: the customer's question (sentences that only restate it go).
        """
        result = Verification(text="")
        sentences = split_sentences(answer)
        if not sentences or not hits:
            result.removed = [Removed(s, "no sources to support it") for s in sentences]
            return result
        # Text addressed to the assistant is neither shown nor accepted as evidence (nor is
        # the marker that replaced it: a model echoing the marker says nothing supported).
        evidence = [
            _Evidence(neutralise_instructions(h.chunk.text).replace(INJECTION_MARKER, " "))
            for h in hits
        ]
        similarity = _LazySimilarity(self.embedder, evidence) if self.embedder else None
        asked = {_stem(w) for w in tokenize(question)}
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
            broken = fragment(bare)
            if broken:
                result.removed.append(Removed(bare, f"not a whole sentence: it {broken}"))
                continue
            order = [n - 1 for n in dict.fromkeys(valid)] or list(range(len(hits)))
            order += [j for j in range(len(hits)) if j not in order]
            if restates(bare, question):
                # Restating the question answers it only where a source says exactly that
                # ("Is it Y2K-compliant?" "It is fully Y2K-compliant."): every word, one
                # sentence, same polarity. Otherwise it is an echo ("You can use it with X").
                support, _ = self._find_support(bare, words, words, order, evidence, None, 1.0)
                if support is None:
                    result.removed.append(Removed(bare, "only restates the question"))
                    continue
            else:
                novel = {w for w in words if _stem(w) not in asked and w not in GENERIC}
                support, reason = self._find_support(
                    bare, words, novel, order, evidence, similarity
                )
            if support is None:
                result.removed.append(Removed(bare, reason))
                continue
            absent = _unmentioned(words, asked, evidence[support].tokens)
            if absent:
                # "You can use it with HP OpenMail to forward mail" supported by a
                # sentence about forwarding: the question's subject is the claim.
                result.removed.append(
                    Removed(bare, f"names {', '.join(absent)}, which its source does not mention")
                )
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
        novel: set[str],
        order: list[int],
        evidence: list[_Evidence],
        similarity: _LazySimilarity | None,
        min_overlap: float | None = None,
    ) -> tuple[int | None, str]:
        """Index of the first passage (cited ones first) one of whose sentences supports it.

        ``novel`` are the words the sentence adds to the question: what it claims. The
        question's own words are in the sources anyway (that is why they were retrieved),
        so they must not carry a sentence's support on their own.
        """
        critical = critical_tokens(sentence)
        claim_negated = negated(sentence) or sentence.lower().startswith("no ")
        reason = ""
        close: list[tuple[int, int]] = []  # (passage, window) with the critical tokens
        for j in order:
            best_overlap = 0.0
            for w, window in enumerate(evidence[j].windows):
                if any(t not in window.normalised for t in critical):
                    continue
                close.append((j, w))
                overlap = min(_share(words, window.tokens), _share(novel, window.tokens))
                if overlap < (self.min_overlap if min_overlap is None else min_overlap):
                    best_overlap = max(best_overlap, overlap)
                    continue
                if negated(window.text) != claim_negated:
                    reason = reason or "contradicts its source (one says no, the other yes)"
                    continue
                return j, ""
            if not reason:
                missing = sorted(t for t in critical if t not in _normalised_text(evidence[j].text))
                if missing:
                    reason = f"not in the sources: {', '.join(missing)}"
                elif best_overlap:
                    reason = f"no one source sentence supports it (word overlap {best_overlap:.2f})"
        # Close in meaning counts only where the sentence's own claim is there in part.
        close = [(j, w) for j, w in close if _share(novel, evidence[j].windows[w].tokens) >= 0.5]
        # A yes or a no answers the question itself: only the words themselves support it.
        verdict = re.match(r"(?i)\s*(yes|no)\b", sentence) is not None
        if similarity is not None and close and not verdict:
            scores = similarity.scores(sentence)
            j, w = max(close, key=lambda jw: scores[jw[0]][jw[1]])
            if scores[j][w] >= self.min_similarity:
                if negated(evidence[j].windows[w].text) == claim_negated:
                    return j, ""
                return None, "contradicts its source (one says no, the other yes)"
            if not reason.startswith("contradicts"):
                reason = f"{reason or 'not supported'}, similarity {scores[j][w]:.2f}"
        return None, reason or "not supported by one source sentence"


@dataclass(frozen=True)
class _Window:
    """One source sentence, or two adjacent ones: the unit of support."""

    text: str
    tokens: frozenset[str]
    normalised: str


class _Evidence:
    """A source split into sentences (and list items), and windows of one or two."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = frozenset(tokenize(text))
        self.sentences = [u.text for u in split_units(text)] or [text]
        spans = [[s] for s in self.sentences]
        spans += [[a, b] for a, b in zip(self.sentences, self.sentences[1:], strict=False)]
        self.windows = [
            _Window(" ".join(p), frozenset(tokenize(" ".join(p))), _normalised_text(" ".join(p)))
            for p in spans
        ]


class _LazySimilarity:
    """Embeddings of the evidence windows, computed only if some sentence needs them."""

    def __init__(self, embedder: Embedder, evidence: list[_Evidence]) -> None:
        self.embedder = embedder
        self.evidence = evidence
        self._vecs: list[list[list[float]]] | None = None

    def scores(self, sentence: str) -> list[list[float]]:
        """Cosine of ``sentence`` to every window of every source."""
        if self._vecs is None:
            flat = [w.text for e in self.evidence for w in e.windows]
            vecs = self.embedder.embed(flat)
            self._vecs, start = [], 0
            for e in self.evidence:
                self._vecs.append(vecs[start : start + len(e.windows)])
                start += len(e.windows)
        sv = self.embedder.embed_query(sentence)
        return [
            [sum(a * b for a, b in zip(sv, pv, strict=True)) for pv in pvs] for pvs in self._vecs
        ]
