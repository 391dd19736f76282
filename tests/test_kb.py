"""The sample knowledge base is as large and as well labelled as the project promises."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from conftest import KB_DOCS, ROOT

from evaluate.questions import load_questions
from ingest.load import Document, load_document
from supportbot.config import IngestSettings

QUESTIONS = ROOT / "kb" / "eval" / "questions.jsonl"
REASONS = {
    "NO_RELEVANT_CONTEXT",
    "UNSUPPORTED_ANSWER",
    "LOW_CONFIDENCE",
    "HUMAN_REQUESTED",
    "FRUSTRATION",
    "REPEATED_FAILURE",
    "SENSITIVE_TOPIC",
    "ACCOUNT_SPECIFIC",
}


@cache
def docs() -> dict[str, Document]:
    return {p.name: load_document(p, IngestSettings()) for p in sorted(KB_DOCS.iterdir())}


def _words(doc: Document) -> int:
    return sum(len(s.text.split()) for s in doc.sections)


def test_three_manuals_in_three_formats_total_15k_words() -> None:
    manuals = {n: d for n, d in docs().items() if Path(n).suffix in (".md", ".html", ".pdf")}
    assert {Path(n).suffix for n in manuals} == {".md", ".html", ".pdf"}
    assert sum(_words(d) for d in manuals.values()) >= 15_000


def test_faq_has_40_pairs() -> None:
    assert len(docs()["faq.yaml"].faq) >= 40


def test_corpus_has_error_codes_part_numbers_and_prices() -> None:
    text = " ".join(s.text for d in docs().values() for s in d.sections)
    assert len(set(re.findall(r"\bE-1\d\d\b", text))) == 20
    assert len(set(re.findall(r"\bBW-[A-Z0-9-]+\b", text))) >= 10
    assert "$49.99" in text and "$279" in text


def test_question_set_size_and_mix() -> None:
    qs = load_questions(QUESTIONS)
    assert len(qs) >= 60
    escalate = [q for q in qs if q.decision == "escalate"]
    assert len(escalate) >= 20
    assert all(q.reasons and set(q.reasons) <= REASONS for q in escalate)
    assert sum(1 for q in qs if q.history) >= 5


@pytest.mark.parametrize("q", load_questions(QUESTIONS), ids=lambda q: q.id)
def test_gold_labels_point_at_real_sections_that_hold_the_facts(q) -> None:  # type: ignore[no-untyped-def]
    texts: list[str] = []
    for gold in q.gold:
        doc = docs().get(gold.source)
        assert doc is not None, f"{q.id}: unknown source {gold.source}"
        if gold.question is not None:
            entries = [e for e in doc.faq if e.question == gold.question]
            assert entries, f"{q.id}: no FAQ question {gold.question!r}"
            texts += [e.answer for e in entries]
        else:
            found = [s.text for s in doc.sections if s.headings and s.headings[-1] == gold.section]
            assert found, f"{q.id}: no section {gold.section!r} in {gold.source}"
            texts += found
    joined = " ".join(texts).lower()
    for fact in q.facts:
        assert fact.lower() in joined, f"{q.id}: fact {fact!r} not in its gold sections"
