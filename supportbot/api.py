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
from collections.abc import Callable, Iterator
from collections.abc import Generator as Generator_
from dataclasses import dataclass, field
from typing import Any, Literal

from supportbot.config import MessagesSettings, Settings
from supportbot.conversation import ConversationStore, Turn, retrieval_query
from supportbot.embed import Embedder
from supportbot.errors import SupportBotError
from supportbot.escalate import Decision, EscalationPolicy, Evidence, Reason
from supportbot.generate import Generator
from supportbot.guard import StreamGuard, config_values, guard_answer
from supportbot.handoff import (
    BackgroundSink,
    HandoffPacket,
    HandoffSink,
    SqliteHandoffQueue,
    WebhookSink,
    build_packet,
    build_sinks,
    deliver_packet,
)
from supportbot.hygiene import clean_question, neutralise_instructions
from supportbot.prompt import STOP, build_prompt
from supportbot.ratelimit import RateLimiter
from supportbot.retrieve import HybridRetriever, Retrieval
from supportbot.store import ChromaStore
from supportbot.types import Hit
from supportbot.verify import AnswerVerifier, Removed, best_sentences

AnswerMode = Literal["faq", "generated", "extract", "none", "handoff", "clarify"]
BOT_ANSWER_MODES: frozenset[str] = frozenset({"faq", "generated", "extract"})
"""Modes in which the bot itself answered (what thumbs rate and "answered" counts cover)."""

# The fixed messages are settings (Settings.messages); these module names are kept for
# callers that compare against the defaults.
_DEFAULT_MESSAGES = MessagesSettings()
NO_ANSWER = _DEFAULT_MESSAGES.no_answer
HANDED_OVER = _DEFAULT_MESSAGES.handed_over
WITH_AGENT = _DEFAULT_MESSAGES.with_agent
HANDED_BACK = _DEFAULT_MESSAGES.handed_back
CLARIFY = _DEFAULT_MESSAGES.clarify


def _suppressed(history: list[Turn]) -> frozenset[Reason]:
    """Reasons an agent just handed back: not re-escalated on the very next message."""
    for turn in reversed(history):
        if turn.role == "assistant":
            return frozenset(Reason(r) for r in turn.meta.get("handed_back", []))
    return frozenset()


@dataclass
class _Draft:
    """An answer before the escalation policy has seen it."""

    mode: AnswerMode
    answer: str
    cited: list[Citation]
    confidence: float
    share: float
    first_token: float | None
    raw: str = ""
    removed: list[Removed] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


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
    sentences extracted from the best passage (when nothing generated was supported),
    nothing at all, a question back to the customer (``clarify``), or a hand-off to a
    human (``handoff``, with ``handoff_id``). ``escalation`` is the policy's decision,
    with reason codes and evidence; ``draft_answer`` keeps what the bot would have said.
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
    escalation: Decision | None = None
    handoff_id: str | None = None
    draft_answer: str = ""


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
        on_handoff: Callable[[HandoffPacket], None] | None = None,
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
        self.policy = EscalationPolicy(self.settings.escalation)
        cs = self.settings.conversation
        # Per conversation, shared by every conversation this bot serves (one process).
        self.rate_limiter = RateLimiter(cs.rate_limit_messages, cs.rate_limit_window)
        self.handoff_queue = SqliteHandoffQueue(self.settings.handoff_queue_path)
        # The queue is the system of record (lifecycle state); other sinks also get packets.
        # Webhooks run in the background so a slow helpdesk never delays the customer.
        self.sinks: list[HandoffSink] = [
            BackgroundSink(sink) if isinstance(sink, WebhookSink) else sink
            for sink in build_sinks(
                self.settings.handoff, self.settings.handoff_queue_path, callback=on_handoff
            )
            if not isinstance(sink, SqliteHandoffQueue)
        ]

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        on_handoff: Callable[[HandoffPacket], None] | None = None,
    ) -> SupportBot:
        """Build every part from settings (see :mod:`supportbot.factory`)."""
        from supportbot.factory import build_bot

        return build_bot(settings or Settings(), on_handoff)

    def warm_up(self) -> None:
        """Load everything the first question needs, so the first customer does not wait.

        Models and indexes load on first use (that keeps ``import supportbot`` and bot
        construction fast); a server calls this once at start-up, e.g. in a background
        thread. Loads the embedder, the keyword index, the local model (a remote server is
        not contacted) and, when hand-offs are redacted, the PII detector (6-10 s).
        """
        self.embedder.embed_query("warm up")
        self.retriever.keyword.refresh()
        self.generator.count_tokens("warm up")
        if self.settings.handoff.redact_pii:
            from supportbot.redact import redact

            redact("warm up: jane@example.com")

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

        Every turn goes through the escalation policy: signals in the message itself
        (a request for a person, frustration, a sensitive or account-specific matter, a
        repeated question) or no relevant passage hand the conversation over *before*
        generation; an answer that verification could not support, or with too little
        confidence, hands it over after. While a human owns the conversation the bot does
        not answer; it says so.

        Raises:
            InputError: the question is empty after cleaning.
            RateLimited: the conversation sent more than ``rate_limit_messages`` within
                ``rate_limit_window`` seconds; checked before any retrieval or generation.
        """
        started = time.perf_counter()
        cs = self.settings.conversation
        conv_id = conversation_id or uuid.uuid4().hex
        self.rate_limiter.check(conv_id)
        text, notices = clean_question(question, cs.max_question_chars)
        full_history = self.conversations.history(conv_id)
        history = full_history[-cs.history_turns :] if cs.history_turns else []

        owner = self.handoff_queue.get_by_conversation(conv_id, open_only=True)
        if owner is not None:
            message = self.settings.messages.with_agent.format(ref=owner.id[:8])
            yield message
            reply = Reply(
                conv_id,
                text,
                message,
                [],
                0.0,
                False,
                "handoff",
                Timings(0.0, 0.0, round(time.perf_counter() - started, 4)),
                notices=notices,
                handoff_id=owner.id,
            )
            self._record(conv_id, reply, {"handoff": owner.id})
            yield reply
            return

        query = retrieval_query(text, history)
        retrieval = self.retriever.retrieve(query, k=self.settings.retrieval.top_k)
        t_retrieval = time.perf_counter() - started
        suppress = _suppressed(full_history)
        decision = self.policy.decide(
            text, full_history, top_score=retrieval.top_score, suppress=suppress
        )
        draft: _Draft | None = None
        faq = self._faq_answer(retrieval)
        if decision.action == "answer" or (faq is not None and not decision.escalate):
            draft = yield from self._draft(text, history, retrieval, started)
            decision = self.policy.decide(
                text,
                full_history,
                top_score=retrieval.top_score,
                reply_mode=draft.mode,
                confidence=draft.confidence,
                supported_share=draft.share,
                suppress=suppress,
            )
        handoff_id: str | None = None
        if decision.escalate:
            packet = self._hand_over(
                conv_id, full_history + [Turn("user", text)], decision, retrieval.hits, draft
            )
            handoff_id = packet.id
            answer = self.settings.messages.handed_over.format(ref=packet.id[:8])
            mode: AnswerMode = "handoff"
            yield ("\n\n" if draft else "") + answer
            cited: list[Citation] = []
            confidence = 0.0
        elif decision.action == "clarify" and draft is None:
            answer, mode, cited, confidence = self.settings.messages.clarify, "clarify", [], 0.0
            yield answer
        else:
            assert draft is not None
            answer, mode, cited, confidence = (
                draft.answer,
                draft.mode,
                draft.cited,
                draft.confidence,
            )
        first = draft.first_token if draft else time.perf_counter() - started
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
                round(first, 4) if first is not None else None,
                round(time.perf_counter() - started, 4),
            ),
            hits=retrieval.hits,
            removed=draft.removed if draft else [],
            dropped_citations=draft.dropped if draft else [],
            raw_answer=draft.raw if draft else "",
            retrieval_query=query,
            notices=notices + (draft.notices if draft and mode != "handoff" else []),
            escalation=decision,
            handoff_id=handoff_id,
            draft_answer=draft.answer if (draft and mode == "handoff") else "",
        )
        self._record(conv_id, reply, {"handoff": handoff_id} if handoff_id else {})
        yield reply

    def _record(self, conv_id: str, reply: Reply, extra: dict[str, Any]) -> None:
        self.conversations.append(conv_id, Turn("user", reply.question))
        meta: dict[str, Any] = {
            "mode": reply.mode,
            "confidence": reply.confidence,
            "citations": [c.chunk_id for c in reply.citations],
            # What a UI needs to show the sources again after a page reload.
            "sources": [
                {
                    "n": c.n,
                    "label": c.label,
                    "source": c.source,
                    "page": c.page,
                    "snippet": c.snippet,
                }
                for c in reply.citations
            ],
            **extra,
        }
        if reply.escalation is not None:
            meta["decision"] = reply.escalation.action
            meta["reasons"] = [r.value for r in reply.escalation.reasons]
        self.conversations.append(conv_id, Turn("assistant", reply.answer, meta=meta))

    def _draft(
        self, text: str, history: list[Turn], retrieval: Retrieval, started: float
    ) -> Generator_[str, None, _Draft]:
        """Produce an answer (FAQ, generated and verified, or extracted), streaming it."""
        faq = self._faq_answer(retrieval)
        if faq is not None:
            answer = f"{neutralise_instructions(faq.chunk.text).rstrip('.')} [1]."
            at = time.perf_counter() - started
            yield answer
            return _Draft(
                "faq",
                answer,
                [_citation(1, faq)],
                faq.extra.get("faq_question_cosine", faq.score),
                1.0,
                at,
            )
        if not retrieval.hits:
            no_answer = self.settings.messages.no_answer
            yield no_answer
            return _Draft("none", no_answer, [], 0.0, 0.0, time.perf_counter() - started)
        llm = self.settings.llm
        prompt, used = build_prompt(
            text,
            retrieval.hits,
            self.generator.count_tokens,
            llm.context_tokens,
            [(t.role, t.text) for t in history],
        )
        pieces: list[str] = []
        first: float | None = None
        notices: list[str] = []
        # Wall-clock bound on generation (waiting for the shared model included): past
        # it the stream is closed, which stops the model, and the answer keeps its text.
        deadline = time.perf_counter() + llm.generation_timeout
        tokens = self.generator.stream(prompt, llm.max_tokens, STOP)
        secrets = config_values(self.settings, self.generator.name)
        live = StreamGuard(secrets)
        try:
            for piece in tokens:
                if first is None:
                    first = time.perf_counter() - started
                pieces.append(piece)
                shown = live.feed(piece)
                if shown:
                    yield shown
                if time.perf_counter() > deadline:
                    notices.append(
                        "This answer was cut off: it took longer than the "
                        f"{llm.generation_timeout:g}-second limit for one answer. Ask a shorter, "
                        "more specific question for the rest."
                    )
                    break
        finally:
            close = getattr(tokens, "close", None)
            if close is not None:
                close()
        rest = live.flush()
        if rest:
            yield rest
        if not notices and len(pieces) >= llm.max_tokens:  # one piece per token
            notices.append(
                f"This answer reached the length limit for one answer ({llm.max_tokens} tokens) "
                "and may be incomplete. Ask about one thing at a time for a complete answer."
            )
        raw = "".join(pieces).strip()
        removed: list[Removed] = []
        dropped: list[int] = []
        if self.settings.verify.enabled:
            check = self.verifier.verify(raw, used)
            removed, dropped = check.removed, check.dropped_citations
            answer, numbers, share = check.text, check.cited, check.supported_share
        else:
            answer, numbers, share = raw, list(range(1, len(used) + 1)), 1.0
        # Never show the prompt's instructions or configuration values (supportbot/guard.py).
        answer, leaked = guard_answer(answer, self.settings, self.generator.name, secrets)
        if leaked:
            removed = [*removed, *leaked]
            numbers = [n for n in numbers if f"[{n}]" in answer]
        if answer:
            if 1 not in numbers and self.settings.verify.quote_best:
                # The model skipped the best passage: add its most relevant sentence.
                quote = best_sentences(self.embedder.embed_query(text), used[0], self.embedder, n=1)
                answer = f"{answer} {quote.rstrip('.')} [1]."
                numbers = [1, *numbers]
            return _Draft(
                "generated",
                answer,
                [_citation(n, used[n - 1]) for n in numbers],
                retrieval.top_score * share,
                share,
                first,
                raw,
                removed,
                dropped,
                notices,
            )
        best = used[0]
        quote = best_sentences(self.embedder.embed_query(text), best, self.embedder)
        answer = f'From "{_citation(1, best).label}": {quote.rstrip(".")} [1].'
        return _Draft(
            "extract",
            answer,
            [_citation(1, best)],
            best.score * 0.5,
            share,
            first,
            raw,
            removed,
            dropped,
            notices,
        )

    # -- hand-off lifecycle ------------------------------------------------------------

    def _hand_over(
        self,
        conv_id: str,
        transcript: list[Turn],
        decision: Decision,
        hits: list[Hit],
        draft: _Draft | None,
    ) -> HandoffPacket:
        evidence = [
            {
                "reason": e.reason.value,
                "detail": e.detail,
                "score": e.score,
                "matched": list(e.matched),
            }
            for e in decision.evidence
        ]
        suggestion = None
        if draft is not None and draft.mode in ("faq", "generated", "extract"):
            suggestion = draft.answer
        packet = build_packet(
            conv_id,
            transcript,
            [r.value for r in decision.reasons],
            evidence,
            hits,
            suggestion,
            redact_pii=self.settings.handoff.redact_pii,
            allow=self.settings.handoff.redact_allow,
        )
        self.handoff_queue.deliver(packet)
        deliver_packet(packet, self.sinks)  # a failing helpdesk never breaks the reply
        return packet

    def escalate(
        self, conversation_id: str, reason: Reason | str = "HUMAN_REQUESTED", note: str = ""
    ) -> HandoffPacket:
        """Hand a conversation to a human now (the UI's "talk to a person" button)."""
        code = Reason(reason if isinstance(reason, str) else reason.value)
        existing = self.handoff_queue.get_by_conversation(conversation_id, open_only=True)
        if existing is not None:
            return existing
        decision = Decision(
            "escalate",
            (code,),
            (Evidence(code, note or "requested through the API", None, ()),),
            1.0,
        )
        history = self.conversations.history(conversation_id)
        packet = self._hand_over(conversation_id, history, decision, [], None)
        self.conversations.append(
            conversation_id,
            Turn(
                "assistant",
                self.settings.messages.handed_over.format(ref=packet.id[:8]),
                meta={"mode": "handoff", "handoff": packet.id, "reasons": [code.value]},
            ),
        )
        return packet

    def handoffs(self, status: str | None = None) -> list[HandoffPacket]:
        """Hand-off packets, highest priority and newest first."""
        return self.handoff_queue.list(status)

    def claim(self, handoff_id: str, agent: str) -> HandoffPacket:
        """An agent takes the conversation."""
        return self._set_status(handoff_id, "claimed", agent)

    def agent_reply(self, handoff_id: str, agent: str, text: str) -> None:
        """Send an agent's message into the customer's conversation."""
        packet = self._packet(handoff_id)
        self.handoff_queue.add_agent_message(packet.conversation_id, agent, text)
        self.conversations.append(
            packet.conversation_id, Turn("assistant", text, meta={"agent": agent})
        )

    def resolve(self, handoff_id: str, agent: str | None = None) -> HandoffPacket:
        """Close the hand-off; the next message from the customer is answered by the bot."""
        return self._set_status(handoff_id, "resolved", agent)

    def hand_back(self, handoff_id: str, agent: str | None = None) -> HandoffPacket:
        """Give the conversation back to the bot, which then answers again.

        The reasons that caused this hand-off are suppressed for the customer's next
        message (loop prevention); anything new still escalates.
        """
        packet = self._set_status(handoff_id, "handed_back", agent)
        self.conversations.append(
            packet.conversation_id,
            Turn(
                "assistant",
                self.settings.messages.handed_back,
                meta={"handed_back": list(packet.reasons), "agent": agent or ""},
            ),
        )
        return packet

    def feedback(self, conversation_id: str, helpful: bool, turn: int | None = None) -> bool:
        """Thumbs up/down on an answer (thumbs-down twice escalates).

        Args:
            conversation_id: the conversation.
            helpful: thumbs up (True) or down (False).
            turn: index in ``conversations.history()`` of the answer rated; the latest
                answer when omitted. A UI shows thumbs under every answer, so a
                customer may rate an older one.

        Returns:
            False when there is no such answer.
        """
        value = "up" if helpful else "down"
        if turn is None:
            return self.conversations.annotate_last(conversation_id, "assistant", feedback=value)
        history = self.conversations.history(conversation_id)
        if not 0 <= turn < len(history) or history[turn].role != "assistant":
            return False
        return self.conversations.annotate_at(conversation_id, turn, feedback=value)

    def _packet(self, handoff_id: str) -> HandoffPacket:
        packet = self.handoff_queue.get(handoff_id)
        if packet is None:
            raise SupportBotError(
                f"No hand-off with id {handoff_id!r}; list them with bot.handoffs()."
            )
        return packet

    def _set_status(self, handoff_id: str, status: str, agent: str | None) -> HandoffPacket:
        self._packet(handoff_id)
        self.handoff_queue.update_status(handoff_id, status, agent)
        return self._packet(handoff_id)

    def _faq_answer(self, retrieval: Retrieval) -> Hit | None:
        hit = retrieval.faq_hit
        if hit is None:
            return None
        similarity = hit.extra.get("faq_question_cosine", 0.0)
        return hit if similarity >= self.settings.retrieval.faq_match else None
