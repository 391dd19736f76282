"""Fit the index's relevance model from the knowledge base alone (``supportbot calibrate``).

When to answer and when to hand over depends on the documents: how long, how varied,
how close to other products. So after an ingest that changed the knowledge base enough
(and on demand), this module fits :class:`supportbot.relevance.RelevanceModel` for the
index, with no labelled question from anyone:

* **in-scope probes** are written from the knowledge base itself: its section headings
  turned into questions, and "keyword questions" drawn from its passages (a few of a
  sentence's content words behind a question opener, as a customer types them);
* **out-of-scope probes** come from the bank the package ships
  (``supportbot/data/out_of_scope.jsonl``: other products' support questions, small
  talk, CLINC150's out-of-scope queries).

Each probe is retrieved like a customer question, its features go into scikit-learn's
logistic regression, and the answer/hand-over boundary is set where only
``calibration.out_of_scope_rate`` of the bank would be answered. The model, the rates
expected and what it was fitted on are stored in the index.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from supportbot.config import Settings
from supportbot.embed import Embedder
from supportbot.keyword import STOPWORDS
from supportbot.relevance import FEATURES, META_KEY, RelevanceModel
from supportbot.retrieve import HybridRetriever
from supportbot.store import ChromaStore, chunk_from_record
from supportbot.types import Chunk

__all__ = ["CalibrationReport", "calibrate", "in_scope_probes", "out_of_scope_probes"]

_OPENERS = ("how do I", "what is", "how to", "why does", "can I", "what does", "", "help with")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_+./-]*|\d+(?:[.-]\d+)*")
_NUMBERING = re.compile(r"^\s*(?:[A-Z]?\d+(?:\.\d+)*[.:)]?|[A-Z][.:)])\s*")
MIN_PASSAGES = 10


@dataclass(frozen=True)
class CalibrationReport:
    """What a calibration did (``supportbot calibrate`` prints it)."""

    model: RelevanceModel | None
    in_scope_probes: int
    out_of_scope_probes: int
    seconds: float
    skipped: str = ""


def content_words(text: str) -> list[str]:
    """The words of ``text`` that say something (no stopwords, no single letters)."""
    return [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]


def passages_of(store: ChromaStore) -> list[Chunk]:
    """The index's passages answers may use (quarantined ones left out), in store order."""
    out = []
    for cid, doc, meta, _ in store.iter_records(include_embeddings=False):
        if meta.get("record") != "passage" or meta.get("quarantined") is True:
            continue
        out.append(chunk_from_record(cid, doc, meta))
    return out


def in_scope_probes(passages: Sequence[Chunk], limit: int, seed: int = 0) -> list[str]:
    """Questions the knowledge base answers, written from its own text.

    One per sampled passage, spread over the documents: the passage's heading as a
    question when the heading says something (not just "3.1:"), else a keyword question
    from one of its sentences. FAQ entries give their own question.
    """
    rng = random.Random(seed)
    by_source: dict[str, list[Chunk]] = {}
    for chunk in passages:
        by_source.setdefault(chunk.source, []).append(chunk)
    order: list[Chunk] = []
    pools = [rng.sample(chunks, len(chunks)) for _, chunks in sorted(by_source.items())]
    while len(order) < len(passages) and any(pools):
        for pool in pools:  # round robin: every document contributes
            if pool:
                order.append(pool.pop())
    probes: list[str] = []
    seen: set[str] = set()
    for chunk in order:
        if len(probes) >= limit:
            break
        probe = _probe(chunk, rng)
        if probe and probe.lower() not in seen:
            seen.add(probe.lower())
            probes.append(probe)
    return probes


def _probe(chunk: Chunk, rng: random.Random) -> str | None:
    if chunk.kind == "faq" and chunk.question:
        return chunk.question
    heading = _NUMBERING.sub("", chunk.section)
    if len(content_words(heading)) >= 2 and rng.random() < 0.5:
        return f"{rng.choice(_OPENERS)} {heading}?".strip()
    sentences = [
        s
        for s in re.split(r"(?<=[.!?])\s+|\n+", chunk.text)
        if 6 <= len(s.split()) <= 60 and not s.strip().startswith(("$", "%", "#", "-", "|"))
    ]
    if not sentences:
        return None
    words = content_words(rng.choice(sentences))
    if len(words) < 3:
        return None
    keep = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(3, 6))))
    return f"{rng.choice(_OPENERS)} {' '.join(words[i] for i in keep)}?".strip()


def out_of_scope_probes(limit: int, seed: int = 0) -> list[str]:
    """A deterministic sample of the shipped bank of other products' questions."""
    path = files("supportbot") / "data" / "out_of_scope.jsonl"
    rows = [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]
    rng = random.Random(seed)
    return rng.sample(rows, min(limit, len(rows)))


def _fit(x: list[list[float]], y: list[int], seed: int) -> tuple[Any, list[float]]:
    """Logistic regression on standardised features, and held-out probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pipeline() -> Any:
        return make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000)
        )

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    held_out = cross_val_predict(pipeline(), x, y, cv=folds, method="predict_proba")[:, 1]
    return pipeline().fit(x, y), [float(p) for p in held_out]


def _boundary(
    probabilities: Sequence[float], y: Sequence[int], held_out: Sequence[float], rate: float
) -> tuple[float, dict[str, float]]:
    """The threshold that lets through ``rate`` of the out-of-scope bank, and what to expect.

    The bank is real questions, just about other things, so its score distribution on
    this index is trustworthy; the in-scope probes are written from the documents and
    score lower than customers' questions (a few keywords of a sentence), so they set
    no threshold: they are reported, with the fold-held-out AUROC, as a sanity check.
    """
    from sklearn.metrics import roc_auc_score

    neg = sorted((p for p, label in zip(probabilities, y, strict=True) if not label), reverse=True)
    pos = [p for p, label in zip(probabilities, y, strict=True) if label]
    allowed = int(rate * len(neg))
    threshold = neg[allowed] + 1e-9 if allowed < len(neg) else 0.0
    return threshold, {
        "out_of_scope_answered": round(sum(1 for p in neg if p >= threshold) / len(neg), 4),
        "in_scope_probes_handed_over": round(sum(1 for p in pos if p < threshold) / len(pos), 4),
        "probe_auroc": round(float(roc_auc_score(list(y), list(held_out))), 4),
        "in_scope_probes": float(len(pos)),
        "out_of_scope_probes": float(len(neg)),
    }


def calibrate(
    settings: Settings,
    store: ChromaStore,
    embedder: Embedder,
    *,
    in_scope: int | None = None,
    out_of_scope: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationReport:
    """Fit and store the index's relevance model; returns what was done.

    Args:
        settings: retrieval settings (candidates, RRF) used for the probes.
        store: the index (its passages are read, its metadata written).
        embedder: the model the index was built with.
        in_scope: how many probes to write from the knowledge base (default: setting).
        out_of_scope: how many bank questions to sample (default: setting).
        seed: fixes every random choice, so a calibration can be repeated.
        progress: called with (done, total) while probes are retrieved.
    """
    started = time.perf_counter()
    passages = passages_of(store)
    if len(passages) < MIN_PASSAGES:
        return CalibrationReport(
            None, 0, 0, 0.0, f"only {len(passages)} passages: too few to fit a model"
        )
    c = settings.calibration
    inside = in_scope_probes(passages, in_scope or c.in_scope_probes, seed)
    outside = out_of_scope_probes(out_of_scope or c.out_of_scope_probes, seed)
    r = settings.retrieval
    retriever = HybridRetriever(embedder, store, candidates=r.candidates, rrf_k=r.rrf_k)
    x: list[list[float]] = []
    probes = [*inside, *outside]
    for start in range(0, len(probes), 64):
        x += retriever.features(probes[start : start + 64], k=r.top_k)
        if progress is not None:
            progress(len(x), len(probes))
    y = [1] * len(inside) + [0] * len(outside)
    pipeline, held_out = _fit(x, y, seed)
    fitted = [float(p) for p in pipeline.predict_proba(x)[:, 1]]
    threshold, expected = _boundary(fitted, y, held_out, c.out_of_scope_rate)
    scaler, logistic = pipeline[0], pipeline[1]
    model = RelevanceModel(
        mean=[float(v) for v in scaler.mean_],
        scale=[float(v) for v in scaler.scale_],
        coef=[float(v) for v in logistic.coef_[0]],
        intercept=float(logistic.intercept_[0]),
        threshold=float(threshold),
        expected=expected,
        fitted_on={
            "passages": len(passages),
            "files": len(store.files()),
            "seed": seed,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "features": list(FEATURES),
        },
    )
    store.set_meta(META_KEY, model.to_json())
    return CalibrationReport(model, len(inside), len(outside), time.perf_counter() - started)


def stored_model(store: ChromaStore) -> RelevanceModel | None:
    """The relevance model stored with the index, if any."""
    text = store.get_meta(META_KEY)
    return RelevanceModel.from_json(text) if text else None


def needs_refit(store: ChromaStore, changed_share: float) -> bool:
    """True when the index has no model, or its passages changed by ``changed_share`` or more."""
    model = stored_model(store)
    if model is None:
        return True
    before = int(model.fitted_on.get("passages", 0) or 0)
    now = store.count()
    return before == 0 or abs(now - before) / max(before, 1) >= changed_share
