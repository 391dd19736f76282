"""Training pairs for ``supportbot tune``, written from the knowledge base alone.

A pair is a question-like *anchor* and the passage that answers it (as the index embeds
it), optionally with a *hard negative*: a passage BM25 ranks high for the anchor that
belongs to another section. Three sources, none of which sees an evaluation question:

* ``faq``: FAQ entries (CSV/JSON/YAML files) give their question and answer; so do
  manual sections whose own heading is a question ("How do I reset the router?");
* ``heading``: a section's heading path ("Zsh Line Editor > Keymaps") and its text,
  when the heading says something (not just a number such as "G1." or "3.1:");
* ``pseudo``: a question the local language model writes for a sampled passage, from a
  few-shot prompt whose examples are about no product in particular. Optional: on the
  dev sets, they did not add enough to pay for their minutes (docs/measured.md).

Hard negatives make the contrastive loss learn the product's own distinctions: an
in-batch negative is usually easy, the passage next door that shares the anchor's
words is not.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ingest.calibrate import content_words, passages_of
from supportbot.generate import Generator, PromptParts
from supportbot.keyword import tokenize
from supportbot.store import ChromaStore
from supportbot.types import Chunk

__all__ = [
    "PAIR_KINDS",
    "PairKind",
    "TrainingPair",
    "add_hard_negatives",
    "faq_pairs",
    "heading_pairs",
    "pseudo_pairs",
    "sentence_pairs",
    "stored_passages",
]

PairKind = Literal["faq", "heading", "sentence", "pseudo"]
PAIR_KINDS: tuple[PairKind, ...] = ("faq", "heading", "sentence", "pseudo")

# "G1.", "3.1:", "A)", "12.4.1" at the start of a heading: a number, not a topic.
_NUMBERING = re.compile(r"^\s*(?:[A-Z]?\d+(?:\.\d+)*[.:)]?|[A-Z][.:)])\s*")
_QUESTION_WORDS = frozenset(
    "how what why when where which who whom whose can could do does did is are was were "
    "will would should shall may might must has have".split()
)


@dataclass(frozen=True)
class TrainingPair:
    """An anchor, the passage it should find, and optionally a passage it should not.

    Attributes:
        anchor: the question-like text (an FAQ question, a heading path, a pseudo-question).
        positive: the passage as the index embeds it (heading path, then text).
        kind: where the pair came from.
        chunk_id: the positive passage's id (to keep its own section out of negatives).
        negative: a hard negative passage, as embedded, or None.
    """

    anchor: str
    positive: str
    kind: PairKind
    chunk_id: str
    negative: str | None = None


def stored_passages(store: ChromaStore) -> list[Chunk]:
    """The index's passages that answers may use, in document order (a fixed sample)."""
    return sorted(passages_of(store), key=lambda c: (c.source, c.position, c.id))


def _topic(heading: str) -> str:
    """A heading without its numbering ("G1. Why ..." -> "Why ...")."""
    return _NUMBERING.sub("", heading).strip(" :.-\t\n")


def _is_question(text: str) -> bool:
    words = text.split()
    return (
        text.rstrip().endswith("?")
        and len(words) >= 3
        and (words[0].lower() in _QUESTION_WORDS or len(content_words(text)) >= 2)
    )


def faq_pairs(chunks: Iterable[Chunk]) -> list[TrainingPair]:
    """FAQ questions and their answers.

    FAQ files' entries, and manual sections whose innermost heading is a question
    ("How can I use fetchmail with Exchange?"); the answer side is the passage text
    without the question, so the pair teaches what an answer to such a question says.
    """
    pairs = []
    for chunk in chunks:
        if chunk.kind == "faq" and chunk.question:
            pairs.append(TrainingPair(chunk.question.strip(), chunk.text, "faq", chunk.id))
            continue
        topic = _topic(chunk.section.replace("\n", " "))
        if _is_question(topic):
            pairs.append(TrainingPair(topic, chunk.text, "faq", chunk.id))
    return pairs


def heading_pairs(chunks: Iterable[Chunk]) -> list[TrainingPair]:
    """Heading paths and the text of their sections, where the heading names a topic.

    The anchor is the document title and heading path with numbering stripped; the
    positive is the passage text alone, so the model must relate the topic to what the
    section says rather than to its own heading. Headings that are questions are FAQ
    pairs instead, and headings with fewer than two content words ("G1.", "Notes")
    teach nothing and are skipped.
    """
    pairs = []
    for chunk in chunks:
        if chunk.kind == "faq":
            continue
        parts = [_topic(p.replace("\n", " ")) for p in chunk.heading.split(" > ") if p]
        parts = [p for p in parts if p]
        if not parts or _is_question(parts[-1]) or len(content_words(parts[-1])) < 2:
            continue
        path = " > ".join(dict.fromkeys([chunk.title.strip(), *parts]) if chunk.title else parts)
        pairs.append(TrainingPair(path, chunk.text, "heading", chunk.id))
    return pairs


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")


def sentence_pairs(
    chunks: Iterable[Chunk], *, per_passage: int = 1, seed: int = 0
) -> list[TrainingPair]:
    """A sentence of a passage and the rest of that passage (the inverse cloze task).

    The sentence is cut out of the positive, so the pair cannot be matched by shared
    words alone: the model learns which statements belong with which context in these
    documents, which is the product's vocabulary in use. Sentences of 6 to 40 words
    that are not code or table rows are used, ``per_passage`` at most from each.
    """
    rng = random.Random(seed)
    pairs = []
    for chunk in chunks:
        if chunk.kind == "faq":
            continue
        sentences = [s.strip() for s in _SENTENCE.split(chunk.text) if s.strip()]
        usable = [
            i
            for i, s in enumerate(sentences)
            if 6 <= len(s.split()) <= 40
            and not s.startswith(("$", "%", "#", "|", "<"))
            and len(content_words(s)) >= 3
        ]
        if len(sentences) < 2 or not usable:
            continue
        for i in rng.sample(usable, min(per_passage, len(usable))):
            rest = " ".join(s for j, s in enumerate(sentences) if j != i)
            prefix = " > ".join(p for p in (chunk.title, chunk.heading) if p)
            positive = f"{prefix}\n{rest}" if prefix else rest
            pairs.append(TrainingPair(sentences[i], positive, "sentence", chunk.id))
    return pairs


PSEUDO_INSTRUCTIONS = """Write the one question a customer would ask that the source answers. \
Use the customer's own words, not the source's headings. Examples:

Source: To reset the router, hold the recessed button on the back for ten seconds until \
the power light blinks, then wait two minutes for it to restart.
Question: Write one question a customer would ask that this source answers.
Answer: How do I reset my router to factory settings?

Source: Refunds are issued to the original payment method within 14 days. Gift cards \
cannot be refunded.
Question: Write one question a customer would ask that this source answers.
Answer: Can I get my money back for a gift card?

Source: If sync stops with error 403, your access token has expired. Sign out, sign in \
again, and sync will resume where it stopped.
Question: Write one question a customer would ask that this source answers.
Answer: Why does syncing fail with a 403 error?"""
PSEUDO_ASK = "Write one question a customer would ask that this source answers."
PSEUDO_MAX_SOURCE_CHARS = 700
_EXAMPLE_QUESTIONS = frozenset(re.findall(r"^Answer: (.+)$", PSEUDO_INSTRUCTIONS, re.M))


def _clean_question(text: str) -> str | None:
    """The first line of the model's output if it reads as a question, else None."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(?:answer|question|q)\s*[:.-]\s*", "", line, flags=re.I).strip(" \"'")
    if "?" in line:
        line = line[: line.index("?") + 1]
    words = line.split()
    if not 3 <= len(words) <= 30 or not line.endswith("?"):
        return None
    if line.lower().startswith(PSEUDO_ASK.lower()[:20]) or line in _EXAMPLE_QUESTIONS:
        return None  # the model repeated the prompt's own question, or an example's
    return line


def pseudo_pairs(
    chunks: Sequence[Chunk],
    generator: Generator,
    *,
    limit: int,
    seed: int = 0,
    deadline: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[TrainingPair]:
    """Questions the local model writes for up to ``limit`` sampled passages.

    Passages are sampled evenly across the documents. Generation stops early at
    ``deadline`` (a ``time.monotonic()`` value) with what it has. ``progress`` gets
    (done, total) after each passage.
    """
    docs = [c for c in chunks if c.kind == "doc" and len(c.text.split()) >= 12]
    rng = random.Random(seed)
    by_source: dict[str, list[Chunk]] = {}
    for chunk in docs:
        by_source.setdefault(chunk.source, []).append(chunk)
    pools = [rng.sample(cs, len(cs)) for _, cs in sorted(by_source.items())]
    order: list[Chunk] = []
    while len(order) < min(limit, len(docs)):
        for pool in pools:  # round robin: every document contributes
            if pool and len(order) < limit:
                order.append(pool.pop())
    pairs: list[TrainingPair] = []
    seen: set[str] = set()
    for done, chunk in enumerate(order, start=1):
        if deadline is not None and time.monotonic() > deadline:
            break
        source = chunk.text[:PSEUDO_MAX_SOURCE_CHARS]
        prompt = PromptParts(PSEUDO_INSTRUCTIONS, f"Source: {source}", PSEUDO_ASK)
        question = _clean_question("".join(generator.stream(prompt, 40, ["\n"])))
        if question and question.lower() not in seen:
            seen.add(question.lower())
            pairs.append(TrainingPair(question, chunk.embedding_text(), "pseudo", chunk.id))
        if progress is not None:
            progress(done, len(order))
    return pairs


def add_hard_negatives(
    pairs: Sequence[TrainingPair],
    chunks: Sequence[Chunk],
    *,
    seed: int = 0,
    depth: int = 10,
) -> list[TrainingPair]:
    """Give each pair a passage BM25 ranks high for its anchor, from another section.

    The negative is drawn at random from the ``depth`` best BM25 matches that are not in
    the positive's section (same source and heading): passages of the positive's own
    section may answer the anchor too. When BM25 finds none (the anchor shares no word
    with other sections), a random passage of another section stands in, so every pair
    keeps the same shape; only a knowledge base of one section leaves pairs without.
    """
    import bm25s

    if not pairs or not chunks:
        return list(pairs)
    corpus = [
        tokenize(f"{c.title} {c.heading} {c.question or ''} {c.text}") or ["__empty__"]
        for c in chunks
    ]
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    vocab = getattr(index, "vocab_dict", {}) or {}
    by_id = {c.id: c for c in chunks}
    rng = random.Random(seed)
    out = []
    k = min(depth + 8, len(chunks))
    for pair in pairs:
        own = by_id.get(pair.chunk_id)
        if own is None:
            out.append(pair)
            continue
        section = (own.source, own.heading)
        tokens = [t for t in tokenize(pair.anchor) if t in vocab]
        candidates: list[Chunk] = []
        if tokens:
            docs, scores = index.retrieve([tokens], k=k, show_progress=False, n_threads=1)
            candidates = [
                chunks[int(i)]
                for i, s in zip(docs[0], scores[0], strict=True)
                if float(s) > 0 and (chunks[int(i)].source, chunks[int(i)].heading) != section
            ][:depth]
        if not candidates:
            others = [
                c
                for c in rng.sample(chunks, min(len(chunks), 8))
                if (c.source, c.heading) != section
            ]
            candidates = others[:1]
        if not candidates:
            out.append(pair)
            continue
        negative = rng.choice(candidates)
        # The negative is written the way the positive is (with or without its heading
        # path), so the heading's presence never tells the two apart.
        framed = pair.positive == own.embedding_text()
        out.append(replace(pair, negative=negative.embedding_text() if framed else negative.text))
    return out
