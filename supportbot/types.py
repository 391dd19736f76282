"""Plain data passed between the stages: chunks in the store, hits out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    """What the index remembers about one ingested file, for incremental re-runs."""

    source: str
    file_hash: str
    chunk_count: int
    ingested_at: str
    size: int
    root: str = ""
