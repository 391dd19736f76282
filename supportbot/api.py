"""The SupportBot facade: what a helpdesk embeds, and what the CLI and web UI call.

A question goes through: hygiene -> follow-up resolution -> hybrid retrieval ->
(curated FAQ answer | generation with numbered sources) -> sentence verification ->
Reply. Generation streams: :meth:`SupportBot.stream` yields text pieces as the model
produces them, then the final :class:`Reply`, whose ``answer`` is the *verified* text
(what the UI should show once the stream ends).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from supportbot.config import Settings
from supportbot.conversation import ConversationStore, Turn, retrieval_query
from supportbot.embed import Embedder
from supportbot.generate import Generator
from supportbot.hygiene import clean_question, neutralise_instructions
from supportbot.prompt import STOP, build_prompt
from supportbot.retrieve import HybridRetriever, Retrieval
from supportbot.store import ChromaStore
from supportbot.types import Hit
from supportbot.verify import AnswerVerifier, Removed, best_sentences

AnswerMode = Literal["faq", "generated", "extract", "none"]

NO_ANSWER = "I could not find this in the documentation I have. A support agent can help with it."


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
class Reply:
    """The bot's answer to one question.

    ``mode`` says where the answer came from: a curated FAQ entry, the model (verified),
    sentences extracted from the best passage (when nothing generated was supported), or
    nothing at all. ``escalation`` is filled by the escalation policy.
    """

    conversation_id: str
    question: str
    answer: str
    citations: list[Citation]
    confidence: float
    verified: bool
    mode: AnswerMode
    timings: Timings
    hits: list[Hit] = field(default_factory=list)
    removed: list[Removed] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    raw_answer: str = ""
    retrieval_query: str = ""
    notices: list[str] = field(default_factory=list)
    escalation: Any = None


def _citation(n: int, hit: Hit) -> Citation:
    c = hit.chunk
    text = neutralise_instructions(c.text)
    snippet = text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + "..."
    return Citation(
        n=n,
        source=c.source,
        title=c.title,
        heading=c.heading,
        page=c.page,
        snippet=snippet,
        score=round(hit.score, 4),
        chunk_id=c.id,
    )


class SupportBot:
    """Answers customer questions from the knowledge base, with verified citations.

    Example:
        >>> bot = SupportBot.from_settings()
        >>> reply = bot.ask("What does E-104 mean?")
        >>> print(reply.answer, [c.label for c in reply.citations])
    """

    def __init__(
        self,
        embedder: Embedder,
        store: ChromaStore,
        generator: Generator,
        conversations: ConversationStore,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.embedder = embedder
        self.store = store
        self.generator = generator
        self.conversations = conversations
        r = self.settings.retrieval
        self.retriever = HybridRetriever(embedder, store, candidates=r.candidates, rrf_k=r.rrf_k)
        v = self.settings.verify
        self.verifier = AnswerVerifier(embedder, v.min_overlap, v.min_similarity)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SupportBot:
        """Build every part from settings (see :mod:`supportbot.factory`)."""
        from supportbot.factory import build_bot

        return build_bot(settings or Settings())

    def ask(self, question: str, conversation_id: str | None = None) -> Reply:
        """Answer ``question`` (blocking); see :meth:`stream` for the streaming form."""
        reply: Reply | None = None
        for item in self.stream(question, conversation_id):
            if isinstance(item, Reply):
                reply = item
        assert reply is not None
        return reply

    def stream(self, question: str, conversation_id: str | None = None) -> Iterator[str | Reply]:
        """Yield answer text as it is generated, then the final, verified :class:`Reply`.

        Raises:
            InputError: the question is empty after cleaning.
        """
        started = time.perf_counter()
        cs = self.settings.conversation
        text, notices = clean_question(question, cs.max_question_chars)
        conv_id = conversation_id or uuid.uuid4().hex
        history = (
            self.conversations.history(conv_id)[-cs.history_turns :] if cs.history_turns else []
        )
        query = retrieval_query(text, history)
        retrieval = self.retriever.retrieve(query, k=self.settings.retrieval.top_k)
        t_retrieval = time.perf_counter() - started
        first_token: float | None = None

        faq = self._faq_answer(retrieval)
        raw = ""
        removed: list[Removed] = []
        dropped: list[int] = []
        if faq is not None:
            mode: AnswerMode = "faq"
            answer = f"{neutralise_instructions(faq.chunk.text).rstrip('.')} [1]."
            cited = [_citation(1, faq)]
            confidence = faq.extra.get("faq_question_cosine", faq.score)
            first_token = time.perf_counter() - started
            yield answer
        elif not retrieval.hits:
            mode, answer, cited, confidence = "none", NO_ANSWER, [], 0.0
            first_token = time.perf_counter() - started
            yield answer
        else:
            llm = self.settings.llm
            prompt, used = build_prompt(
                text,
                retrieval.hits,
                self.generator.count_tokens,
                llm.context_tokens,
                [(t.role, t.text) for t in history],
            )
            pieces: list[str] = []
            for piece in self.generator.stream(prompt, llm.max_tokens, STOP):
                if first_token is None:
                    first_token = time.perf_counter() - started
                pieces.append(piece)
                yield piece
            raw = "".join(pieces).strip()
            if self.settings.verify.enabled:
                check = self.verifier.verify(raw, used)
                removed, dropped = check.removed, check.dropped_citations
                answer, numbers = check.text, check.cited
                share = check.supported_share
            else:
                answer, numbers, share = raw, list(range(1, len(used) + 1)), 1.0
            if answer:
                mode = "generated"
                if 1 not in numbers and self.settings.verify.quote_best:
                    # The model skipped the best passage: add its most relevant sentence.
                    quote = best_sentences(
                        self.embedder.embed_query(text), used[0], self.embedder, n=1
                    )
                    answer = f"{answer} {quote.rstrip('.')} [1]."
                    numbers = [1, *numbers]
                cited = [_citation(n, used[n - 1]) for n in numbers]
                confidence = retrieval.top_score * share
            else:
                mode = "extract"
                best = used[0]
                quote = best_sentences(self.embedder.embed_query(text), best, self.embedder)
                answer = f'From "{_citation(1, best).label}": {quote.rstrip(".")} [1].'
                cited = [_citation(1, best)]
                confidence = best.score * 0.5
        total = time.perf_counter() - started
        reply = Reply(
            conversation_id=conv_id,
            question=text,
            answer=answer,
            citations=cited,
            confidence=round(confidence, 4),
            verified=mode in ("faq", "extract")
            or (mode == "generated" and self.settings.verify.enabled),
            mode=mode,
            timings=Timings(
                round(t_retrieval, 4),
                round(first_token, 4) if first_token is not None else None,
                round(total, 4),
            ),
            hits=retrieval.hits,
            removed=removed,
            dropped_citations=dropped,
            raw_answer=raw,
            retrieval_query=query,
            notices=notices,
        )
        self.conversations.append(conv_id, Turn("user", text))
        self.conversations.append(
            conv_id,
            Turn(
                "assistant",
                answer,
                meta={
                    "mode": mode,
                    "confidence": reply.confidence,
                    "citations": [c.chunk_id for c in cited],
                },
            ),
        )
        yield reply

    def _faq_answer(self, retrieval: Retrieval) -> Hit | None:
        hit = retrieval.faq_hit
        if hit is None:
            return None
        similarity = hit.extra.get("faq_question_cosine", 0.0)
        return hit if similarity >= self.settings.retrieval.faq_match else None
