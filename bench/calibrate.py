"""Fit and check the calibrated relevance score of retrieved passages.

    python bench/calibrate.py

Every kb/eval question (answerable and out-of-scope alike) is searched with the hybrid
retriever; each of its top-10 passages becomes one example with features
(cosine, bm25 / (bm25 + 10)) and label "comes from a gold section". A logistic regression
is fitted on the questions with an even position in the file and evaluated on the odd
ones (Brier score, AUC, reliability by bin), so the figures are not measured on the data
the coefficients were fitted on. Paste the printed coefficients into
``supportbot.retrieve.CALIBRATION``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KB_DOCS, QUESTIONS, machine, save  # noqa: E402

from evaluate.questions import load_questions  # noqa: E402
from ingest.pipeline import run_ingest  # noqa: E402
from supportbot.config import Settings  # noqa: E402
from supportbot.embed import SentenceTransformerEmbedder  # noqa: E402
from supportbot.factory import build_store  # noqa: E402
from supportbot.retrieve import BM25_HALF, HybridRetriever, calibrated_score  # noqa: E402


def examples(retriever: HybridRetriever, qs: list) -> list[tuple[float, float, int]]:  # type: ignore[type-arg]
    rows = []
    for q in qs:
        text = " ".join(t.content for t in q.history if t.role == "user") + " " + q.question
        for hit in retriever.retrieve(text.strip(), k=10).hits:
            cos = max(hit.extra.get("cosine", 0.0), hit.extra.get("faq_question_cosine", 0.0))
            bm = hit.extra.get("bm25", 0.0)
            label = int(any(g.matches(hit.chunk) for g in q.gold))
            rows.append((cos, bm / (bm + BM25_HALF) if bm > 0 else 0.0, label))
    return rows


def main() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    embedder = SentenceTransformerEmbedder()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-cal-")))
    run_ingest([KB_DOCS], settings, embedder=embedder)
    retriever = HybridRetriever(embedder, build_store(settings))
    qs = load_questions(QUESTIONS)
    fit_rows = examples(retriever, qs[0::2])
    test_rows = examples(retriever, qs[1::2])
    X = np.array([r[:2] for r in fit_rows])
    y = np.array([r[2] for r in fit_rows])
    model = LogisticRegression(C=10.0).fit(X, y)
    coef = (
        round(float(model.intercept_[0]), 3),
        round(float(model.coef_[0][0]), 3),
        round(float(model.coef_[0][1]), 3),
    )
    Xt = np.array([r[:2] for r in test_rows])
    yt = np.array([r[2] for r in test_rows])
    pt = np.array(
        [calibrated_score(c, (b * BM25_HALF / (1 - b)) if b > 0 else 0.0, coef) for c, b in Xt]
    )
    print(f"machine: {machine()}")
    print(f"fit on {len(fit_rows)} (question, passage) pairs, tested on {len(test_rows)}")
    print(f"CALIBRATION = {coef}")
    print(
        f"held-out Brier {brier_score_loss(yt, pt):.4f}  AUC {roc_auc_score(yt, pt):.3f}  "
        f"base rate {yt.mean():.3f}"
    )
    print("bin | pairs | mean predicted | observed relevant")
    bins = [0, 0.1, 0.25, 0.5, 0.75, 1.01]
    table = []
    for lo, hi in zip(bins, bins[1:], strict=False):
        mask = (pt >= lo) & (pt < hi)
        if mask.sum():
            row = (
                f"{lo:.2f}-{min(hi, 1):.2f}",
                int(mask.sum()),
                round(float(pt[mask].mean()), 3),
                round(float(yt[mask].mean()), 3),
            )
            table.append(row)
            print(" | ".join(map(str, row)))
    save(
        "calibration",
        {
            "coef": coef,
            "brier": float(brier_score_loss(yt, pt)),
            "auc": float(roc_auc_score(yt, pt)),
            "bins": table,
        },
    )


if __name__ == "__main__":
    main()
