"""Plain data passed between the stages: chunks in the store, hits out of it, replies out.

Frozen dataclasses only, no behaviour beyond formatting, so every part can import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from supportbot.escalation.reasons import Decision

ChunkKind = Literal["doc", "faq"]


@dataclass(frozen=True)
class Chunk:
    """A passage of a source document, the unit that is embedded, stored and cited.

    ``id`` is a content hash, so re-ingesting unchanged text yields the same ids and
    nothing is embedded twice.
    """

    id: str
    text: str
    source: str
    title: str
    heading: str = ""
    page: int | None = None
    position: int = 0
    kind: ChunkKind = "doc"
    question: str | None = None
    also_asked: tuple[str, ...] = ()
    """Other wordings of an FAQ question (customers' own): its question vector is the
    centre of them all. Used when it is embedded, not stored."""
    author: str = ""
    """Who wrote it when not the documents: ``agent`` for an approved agent answer
    (:mod:`supportbot.gaps`), which the bot matches with ``gaps.answer_match``."""

    @property
    def section(self) -> str:
        """The innermost heading, the 'section' a citation names."""
        return self.heading.rsplit(" > ", 1)[-1] if self.heading else ""

    def embedding_text(self) -> str:
        """Text given to the embedder: the heading path adds context the passage lacks."""
        if self.kind == "faq" and self.question:
            return f"{self.question}\n{self.text}"
        prefix = " > ".join(p for p in (self.title, self.heading) if p)
        return f"{prefix}\n{self.text}" if prefix else self.text


@dataclass(frozen=True)
class Hit:
    """A chunk returned for a query, with its relevance score in [0, 1] (higher is better)."""

    chunk: Chunk
    score: float
    rank: int
    matched: Literal["passage", "faq_question"] = "passage"
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRecord:
    """What the index remembers about one ingested file, for incremental re-runs.

    A file is identified by where it came from: ``root`` (the folder it was ingested
    from) and ``rel`` (its path under that folder). ``source`` is its unique name in the
    index: ``rel`` itself, or ``<root label>/<rel>`` when another root already holds a
    file with that name. ``quarantined`` counts its passages held back from answers.
    """

    source: str
    file_hash: str
    chunk_count: int
    ingested_at: str
    size: int
    root: str = ""
    rel: str = ""
    quarantined: int = 0

    @property
    def path(self) -> str:
        """The file on disk it was read from (empty when the root is unknown)."""
        if not self.root:
            return ""
        return str(PurePath(self.root) / (self.rel or self.source))


@dataclass(frozen=True)
class Removed:
    """A sentence taken out of the answer, and why."""

    sentence: str
    reason: str


AnswerMode = Literal["faq", "generated", "extract", "none", "handoff", "clarify"]
BOT_ANSWER_MODES: frozenset[str] = frozenset({"faq", "generated", "extract"})
"""Modes in which the bot itself answered (what thumbs rate and "answered" counts cover)."""


@dataclass(frozen=True)
class Citation:
    """A source the answer cites as ``[n]``."""

    n: int
    source: str
    title: str
    heading: str
    page: int | None
    snippet: str
    score: float
    chunk_id: str
    section: str = ""
    """The whole section the snippet comes from (what "see the whole section" shows)."""

    @property
    def label(self) -> str:
        """``Title > Heading (p. 3)``."""
        return " > ".join(p for p in (self.title, self.heading) if p) + (
            f" (p. {self.page})" if self.page else ""
        )


@dataclass(frozen=True)
class Timings:
    """Seconds spent, measured from the moment the question arrived."""

    retrieval: float = 0.0
    first_token: float | None = None
    total: float = 0.0


@dataclass(frozen=True)
class Trace:
    """How an answer came about: for evaluation, debugging and the CLI's ``--json``.

    A customer UI needs none of it; it is kept apart from :class:`Reply` so what a UI
    shows is obvious.

    Attributes:
        retrieval_query: what was searched (a follow-up borrows the earlier question).
        hits: the passages retrieved, best first.
        raw_answer: the model's text before verification ("" when nothing was generated).
        removed: sentences verification or the output guard removed, with why.
        dropped_citations: citation numbers that pointed at no passage used.
        tokens: pieces (tokens) the model generated.
    """

    retrieval_query: str = ""
    hits: list[Hit] = field(default_factory=list)
    raw_answer: str = ""
    removed: list[Removed] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    tokens: int = 0


@dataclass(frozen=True)
class Reply:
    """The bot's answer to one question: what a customer UI shows.

    ``mode`` says where the answer came from: a curated FAQ entry, the model (verified),
    sentences extracted from the best passage (when nothing generated was supported),
    nothing at all, a question back to the customer (``clarify``), or a hand-off to a
    human (``handoff``, with ``handoff_id``). ``escalation`` is the policy's decision,
    with reason codes and evidence; ``trace`` says how the answer came about.
    """

    conversation_id: str
    question: str
    answer: str
    citations: list[Citation]
    confidence: float
    verified: bool
    mode: AnswerMode
    timings: Timings
    notices: list[str] = field(default_factory=list)
    escalation: Decision | None = None
    handoff_id: str | None = None
    trace: Trace = field(default_factory=Trace)
