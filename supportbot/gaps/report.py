"""The gap report: questions the documents did not answer, grouped, most asked first.

:class:`GapFinder` reads the questions back (:mod:`supportbot.gaps.collect`), embeds them
with the index's embedder (vectors are cached for the life of the process, so the agent
console can redraw the report cheaply), groups them (:mod:`supportbot.gaps.cluster`) and
describes each group as a :class:`Gap`: a short label (the most typical customer wording),
how many customers asked, examples, first and last seen, whether an agent answered one of
them, and which approved agent answer covers it, if any.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from supportbot.config import GapsSettings
from supportbot.conversation import ConversationStore
from supportbot.embed import Embedder
from supportbot.gaps.answers import AgentAnswer, AgentAnswers
from supportbot.gaps.cluster import centre, cosine, group, medoid_order
from supportbot.gaps.collect import AskedQuestion, collect_questions, handoff_question
from supportbot.handoff.packet import HandoffPacket
from supportbot.handoff.queue import SqliteHandoffQueue

__all__ = ["Gap", "GapFinder", "GapReport"]

_LABEL_CHARS = 80
_CACHE_LIMIT = 50_000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _LABEL_CHARS:
        return text
    return text[: _LABEL_CHARS - 3].rsplit(" ", 1)[0] + "..."


@dataclass(frozen=True)
class Gap:
    """Questions the documents did not answer that mean the same thing.

    Attributes:
        id: stable while the gap's first question stays in the report.
        label: its most typical wording, shortened.
        customers: how many customers (conversations) asked.
        asked: how many times it was asked (a customer may ask twice).
        examples: distinct wordings, most typical first, PII redacted.
        first_seen, last_seen: Unix times.
        answered_by_agent: an agent replied to at least one of them.
        handed_over, thumbs_down: how many came from hand-offs and from thumbs-down.
        entry: the id of an approved agent answer that covers it ("" when none does).
        wordings: every distinct wording, most typical first (an FAQ entry made from the
            gap keeps up to ``gaps.also_asked`` of them, to be matched by).
        questions: the questions themselves (for the console's "make an FAQ entry").
    """

    id: str
    label: str
    customers: int
    asked: int
    examples: tuple[str, ...]
    first_seen: float
    last_seen: float
    answered_by_agent: bool
    handed_over: int
    thumbs_down: int
    entry: str = ""
    wordings: tuple[str, ...] = field(default=(), repr=False)
    questions: tuple[AskedQuestion, ...] = field(default=(), repr=False)

    def agent_replies(self) -> list[AskedQuestion]:
        """Its questions an agent answered, newest first: drafts for an FAQ entry."""
        return sorted((q for q in self.questions if q.agent_reply), key=lambda q: -q.ts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (what ``supportbot gaps --json`` prints)."""
        return {
            "id": self.id,
            "label": self.label,
            "customers": self.customers,
            "asked": self.asked,
            "examples": list(self.examples),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "answered_by_agent": self.answered_by_agent,
            "handed_over": self.handed_over,
            "thumbs_down": self.thumbs_down,
            "entry": self.entry or None,
            "handoffs": [q.handoff_id for q in self.questions if q.handoff_id],
        }


@dataclass(frozen=True)
class GapReport:
    """Every gap since a moment, most asked first."""

    gaps: list[Gap]
    questions: int
    since: float | None
    distance: float
    seconds: float = 0.0

    def timeline(self, top: int = 5) -> list[tuple[str, str, int]]:
        """``(day, label, questions)`` per day (UTC) for the ``top`` gaps; "other" for the rest."""
        counts: Counter[tuple[str, str]] = Counter()
        for rank, gap in enumerate(self.gaps):
            name = gap.label if rank < top else "other"
            for q in gap.questions:
                day = datetime.fromtimestamp(q.ts, UTC).strftime("%Y-%m-%d")
                counts[(day, name)] += 1
        return sorted((day, name, n) for (day, name), n in counts.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (``supportbot gaps --json``)."""
        return {
            "since": _iso(self.since) if self.since is not None else None,
            "questions": self.questions,
            "group_distance": self.distance,
            "gaps": [g.to_dict() for g in self.gaps],
        }


class GapFinder:
    """Builds the gap report from the conversation store and the hand-off queue.

    Example:
        >>> report = services.gaps.report()
        >>> [(g.label, g.customers) for g in report.gaps[:3]]
    """

    def __init__(
        self,
        settings: GapsSettings,
        *,
        embedder: Embedder,
        conversations: ConversationStore,
        queue: SqliteHandoffQueue,
        answers: AgentAnswers,
        allow: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.answers = answers
        self._embedder = embedder
        self._conversations = conversations
        self._queue = queue
        self._allow = tuple(allow)
        self._vectors: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def questions(self, since: float | None = None) -> list[AskedQuestion]:
        """The questions the documents did not answer since ``since`` (default: ``since_days``)."""
        return collect_questions(self._conversations, self._queue, self._since(since), self._allow)

    def from_handoff(self, packet: HandoffPacket) -> AskedQuestion | None:
        """A hand-off's unanswered question and the agent's reply (None: not a gap).

        Replies after the conversation's next hand-off (a bot turn naming another one)
        are not counted as this one's.
        """
        turns = self._conversations.history(packet.conversation_id)
        created = datetime.fromisoformat(packet.created_at.replace("Z", "+00:00")).timestamp()
        later = [
            t.ts for t in turns if t.ts > created and t.meta.get("handoff") not in (None, packet.id)
        ]
        return handoff_question(packet, turns, min(later, default=None), self._allow)

    def report(self, since: float | None = None) -> GapReport:
        """The questions since ``since``, grouped into gaps, most customers first."""
        started = time.perf_counter()
        since = self._since(since)
        asked = self.questions(since)[-self.settings.max_questions :]
        return self.group(asked, since, started)

    def group(
        self, asked: Sequence[AskedQuestion], since: float | None = None, started: float = 0.0
    ) -> GapReport:
        """Group given questions (what :meth:`report` does after collecting them)."""
        started = started or time.perf_counter()
        vectors = self.embed([q.text for q in asked])
        labels = group(vectors, self.settings.group_distance)
        members: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            members.setdefault(label, []).append(i)
        entries = [(e, self._entry_centre(e)) for e in self.answers.entries("approved")]
        gaps = [
            self._gap([asked[i] for i in idx], [vectors[i] for i in idx], entries)
            for idx in members.values()
        ]
        gaps.sort(key=lambda g: (-g.customers, -g.asked, -g.last_seen))
        return GapReport(
            gaps,
            len(asked),
            since,
            self.settings.group_distance,
            round(time.perf_counter() - started, 3),
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts``, from the cache where seen before."""
        with self._lock:
            got = {t: self._vectors[t] for t in set(texts) if t in self._vectors}
        todo = [t for t in dict.fromkeys(texts) if t not in got]
        if todo:
            got.update(zip(todo, self._embedder.embed(todo), strict=True))
            with self._lock:
                if len(self._vectors) + len(todo) > _CACHE_LIMIT:
                    self._vectors.clear()
                self._vectors.update({t: got[t] for t in todo})
        return [got[t] for t in texts]

    def _since(self, since: float | None) -> float | None:
        if since is not None:
            return since
        days = self.settings.since_days
        return time.time() - days * 86400 if days else None

    def _entry_centre(self, entry: AgentAnswer) -> list[float]:
        return centre(self.embed([entry.question, *entry.also_asked]))

    def _gap(
        self,
        questions: list[AskedQuestion],
        vectors: list[list[float]],
        entries: list[tuple[AgentAnswer, list[float]]],
    ) -> Gap:
        order = medoid_order(vectors)
        examples: list[str] = []
        for i in order:
            text = questions[i].text
            if text not in examples:
                examples.append(text)
        first = min(questions, key=lambda q: q.ts)
        middle = centre(vectors)
        handoffs = {q.handoff_id for q in questions if q.handoff_id}
        covering = ""
        best = self.settings.answer_match
        for entry, vec in entries:
            sim = cosine(middle, vec)
            if entry.handoff and entry.handoff in handoffs:
                sim = max(sim, 1.0)
            if sim >= best:
                covering, best = entry.id, sim
        digest = hashlib.sha256(f"{first.conversation_id}\x00{first.text}".encode()).hexdigest()
        return Gap(
            id=digest[:10],
            label=_label(examples[0]),
            customers=len({q.conversation_id for q in questions}),
            asked=len(questions),
            examples=tuple(examples[: self.settings.examples]),
            first_seen=first.ts,
            last_seen=max(q.ts for q in questions),
            answered_by_agent=any(q.agent_reply for q in questions),
            handed_over=sum(q.origin == "handed_over" for q in questions),
            thumbs_down=sum(q.origin == "thumbs_down" for q in questions),
            entry=covering,
            wordings=tuple(examples),
            questions=tuple(sorted(questions, key=lambda q: q.ts)),
        )
