"""Retrieval: a question in, scored passages out.

:class:`HybridRetriever` fuses two rankings with reciprocal rank fusion (RRF):

* dense: cosine similarity of MiniLM vectors in Chroma (FAQ entries are also matched
  question-to-question, through the extra vector of their question);
* keyword: BM25 over the same chunks, which is what finds exact identifiers (E-104,
  BW-PSU-12-2A, firmware 3.4.2) that embeddings blur.

RRF decides the *order*. Each passage also gets a **calibrated relevance score**, the
estimated probability that it answers the question:
``sigmoid(a + b * cosine + c * bm25 / (bm25 + 10))``, with ``(a, b, c)`` fitted by
logistic regression on one half of kb/eval's labelled (question, passage) pairs and
checked on the other half (``python bench/calibrate.py``). Escalation thresholds rely on
this number, so it has to mean the same thing whichever side found the passage.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace

from supportbot.embed import Embedder
from supportbot.errors import StoreError
from supportbot.keyword import KeywordIndex
from supportbot.relevance import GENERIC_FLOOR, META_KEY, RelevanceModel, question_features
from supportbot.store import SCHEMA_VERSION, ChromaStore
from supportbot.types import Chunk, Hit

log = logging.getLogger(__name__)
_warned: dict[str, bool] = {}

# Fitted by bench/calibrate.py on the even-numbered kb/eval questions.
CALIBRATION = (-3.888, 3.115, 4.744)
BM25_HALF = 10.0


def calibrated_score(
    cosine: float, bm25: float, coef: tuple[float, float, float] = CALIBRATION
) -> float:
    """Probability-like relevance in [0, 1] from the two raw signals."""
    a, b, c = coef
    bm = bm25 / (bm25 + BM25_HALF) if bm25 > 0 else 0.0
    z = a + b * cosine + c * bm
    return 1.0 / (1.0 + math.exp(-z))


_IDENTIFIER = re.compile(r"\b[a-z]{1,4}-?\d[\w-]*|\b[a-z]+-[a-z0-9]+(?:-[a-z0-9]+)*\b")


def identifiers(text: str) -> set[str]:
    """Codes, part and model numbers in ``text`` (lower case, hyphens removed)."""
    found = set()
    for m in _IDENTIFIER.finditer(text.lower()):
        tok = m.group(0)
        if any(ch.isdigit() for ch in tok):
            found.add(tok.replace("-", ""))
    return found


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class DenseRetriever:
    """Embeds the question and asks the vector store for its nearest passages.

    Example:
        >>> retriever = DenseRetriever(embedder, store)
        >>> [h.chunk.source for h in retriever.search("reset the router", k=3)]
    """

    def __init__(self, embedder: Embedder, store: ChromaStore) -> None:
        self.embedder = embedder
        self.store = store

    def check_index(self) -> None:
        """Refuse to search an empty index or one built with another embedding model.

        First brings the store's view up to date with what other processes ingested.

        Raises:
            StoreError: the index is empty or was built with a different model.
        """
        self.store.refresh()  # another process may have ingested since the last search
        stamp = self.store.stamp()
        if stamp is None:
            raise StoreError(
                f"The index '{self.store.name}' is empty. Run `supportbot ingest PATH` first "
                "(e.g. `supportbot ingest kb/docs`)."
            )
        if stamp[0] != self.embedder.name:
            self.store.ensure_model(self.embedder.name, self.embedder.dimension)
        if self.store.schema() < SCHEMA_VERSION and not _warned.get(self.store.name):
            _warned[self.store.name] = True
            log.warning(
                "The index '%s' was built before passages were checked for instructions to the "
                "assistant: run `supportbot ingest PATH...` once to check them (nothing is "
                "re-embedded).",
                self.store.name,
            )

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages closest to ``question``, best first, scored by cosine in [0, 1]."""
        self.check_index()
        return self.store.query(self.embedder.embed_query(question), k=k)


@dataclass(frozen=True)
class Retrieval:
    """What a search found: fused passages, and the best FAQ-question match if any."""

    hits: list[Hit]
    faq_hit: Hit | None = None
    relevance: float | None = None
    """The index's own relevance model's verdict on the question (0.5: its boundary)."""
    floor: float = GENERIC_FLOOR
    """The relevance below which the question counts as out of scope for this index."""

    @property
    def top_score(self) -> float:
        """Relevance of the question (0 when nothing was found).

        The index's relevance model when one is fitted, else the best passage's score.
        """
        if self.relevance is not None:
            return self.relevance
        return max((h.score for h in self.hits), default=0.0)


class HybridRetriever(DenseRetriever):
    """Dense + BM25 with reciprocal rank fusion and calibrated scores.

    Example:
        >>> r = HybridRetriever(embedder, store)
        >>> r.retrieve("what is E-104").hits[0].chunk.section
        'E-104 DNS Resolution Failure'
    """

    def __init__(
        self,
        embedder: Embedder,
        store: ChromaStore,
        candidates: int = 20,
        rrf_k: int = 60,
        keyword: KeywordIndex | None = None,
        calibrated: bool = True,
    ) -> None:
        super().__init__(embedder, store)
        self.calibrated = calibrated
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.keyword = keyword or KeywordIndex(store)
        self._model: tuple[object, RelevanceModel | None] = (object(), None)

    def relevance_model(self) -> RelevanceModel | None:
        """The index's fitted relevance model (re-read whenever the index changed)."""
        self.keyword.refresh()
        seen, model = self._model
        current = (self.keyword.fingerprint, self.store.stamp())
        if seen != current:
            stored = self.store.get_meta(META_KEY)
            model = RelevanceModel.from_json(stored) if stored else None
            self._model = (current, model)
        return model

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` best fused passages."""
        return self.retrieve(question, k).hits

    def retrieve(
        self,
        question: str,
        k: int = 5,
        dense: bool = True,
        sparse: bool = True,
        vector: list[float] | None = None,
    ) -> Retrieval:
        """Fuse both rankings; ``dense``/``sparse`` switch a side off (for measurements).

        ``vector`` is the question's embedding when the caller already has it (a batch).
        """
        self.check_index()
        qvec = vector if vector is not None else self.embedder.embed_query(question)
        dense_hits = self.store.query(qvec, k=self.candidates) if dense else []
        keyword_hits = self.keyword.search(question, k=self.candidates) if sparse else []

        fused: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        cosine: dict[str, float] = {}
        bm25: dict[str, float] = {}
        faq_q: dict[str, float] = {}
        for rank, hit in enumerate(dense_hits, start=1):
            cid = hit.chunk.id
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.rrf_k + rank)
            chunks[cid] = hit.chunk
            if "faq_question_cosine" in hit.extra:
                faq_q[cid] = hit.extra["faq_question_cosine"]
        for rank, (chunk, score) in enumerate(keyword_hits, start=1):
            fused[chunk.id] = fused.get(chunk.id, 0.0) + 1.0 / (self.rrf_k + rank)
            chunks.setdefault(chunk.id, chunk)
            bm25[chunk.id] = score
        # A third ranking: passages whose own heading (or FAQ question) names an identifier
        # of the question ("E-116", "BW-R1P"), so the section *about* it beats passages that
        # merely mention it.
        wanted = identifiers(question) if sparse else set()
        if wanted:
            titled = [
                c
                for c in chunks.values()
                if wanted & identifiers(f"{c.heading} {c.question or ''}")
            ]
            titled.sort(key=lambda c: -fused[c.id])
            for rank, chunk in enumerate(titled, start=1):
                fused[chunk.id] += 1.0 / (self.rrf_k + rank)
        if not fused:
            return Retrieval(hits=[])
        order = sorted(fused, key=lambda c: fused[c], reverse=True)[: max(k, 1)]
        # Cosine of the passage vector itself (not the FAQ-question vector) for every hit.
        vectors = self.store.vectors(order)
        for cid in order:
            if cid in vectors:
                cosine[cid] = max(0.0, _cos(qvec, vectors[cid]))
        # An agent's answer is matched by the centre of its customers' wordings, which
        # decides only whether it is *the* answer (gaps.answer_match); as a source it is
        # as relevant as its own text, like any passage.
        asked = {c: v for c, v in faq_q.items() if not chunks[c].author}
        hits = [
            Hit(
                chunk=chunks[cid],
                score=calibrated_score(
                    max(cosine.get(cid, 0.0), asked.get(cid, 0.0)), bm25.get(cid, 0.0)
                ),
                rank=i,
                matched="faq_question" if cid in faq_q else "passage",
                extra={
                    "cosine": round(cosine.get(cid, 0.0), 4),
                    "bm25": round(bm25.get(cid, 0.0), 4),
                    "rrf": round(fused[cid], 5),
                    **({"faq_question_cosine": round(faq_q[cid], 4)} if cid in faq_q else {}),
                },
            )
            for i, cid in enumerate(order, start=1)
        ]
        faq_hit = None
        if faq_q:
            best = max(faq_q, key=lambda c: faq_q[c])
            found = next((h for h in hits if h.chunk.id == best), None)
            if found is None:
                found = Hit(
                    chunk=chunks[best],
                    score=calibrated_score(faq_q[best], 0.0),
                    rank=0,
                    matched="faq_question",
                    extra={"faq_question_cosine": faq_q[best]},
                )
            faq_hit = replace(found, extra={**found.extra, "faq_question_cosine": faq_q[best]})
        model = self.relevance_model() if (dense and sparse and self.calibrated) else None
        if model is None:
            return Retrieval(hits=hits, faq_hit=faq_hit)
        return Retrieval(
            hits, faq_hit, relevance=model.relevance(question_features(hits)), floor=0.5
        )

    def features(self, questions: list[str], k: int = 5) -> list[list[float]]:
        """The relevance model's features for each question (to fit or study the model).

        Questions are embedded in one batch, which is what makes fitting fast.
        """
        self.check_index()
        vectors = self.embedder.embed(questions) if questions else []
        out = []
        for question, vector in zip(questions, vectors, strict=True):
            found = self.retrieve(question, k, vector=vector)
            out.append(question_features(found.hits))
        return out
