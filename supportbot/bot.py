"""The SupportBot facade: the customer side, what a helpdesk embeds and the shells call.

A turn goes through five named steps (:meth:`SupportBot.stream`):

1. **admit** - rate limit, clean the message, load the conversation; a conversation a
   human owns is not answered by the bot;
2. **plan** - follow-up resolution, hybrid retrieval, the FAQ match, the message signals
   of the escalation policy and a first decision (:meth:`SupportBot.plan`, which the
   offline evaluation calls too);
3. **draft** - a curated FAQ answer, or generation with numbered sources, verified
   sentence by sentence, or an extract of the best passage; streamed;
4. **review** - the answer signals (support, confidence) added to the plan's decision;
5. **finish** - hand over if the decision says so, build the one :class:`Reply`, record
   the turn.

The agent side (hand-off queue, claim, reply, resolve) is :class:`supportbot.desk.AgentDesk`.
Both receive their parts from :mod:`supportbot.factory`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator as Generator_
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from supportbot.config import Settings
from supportbot.conversation import ConversationStore, Turn, retrieval_query
from supportbot.embed import Embedder
from supportbot.errors import InputError
from supportbot.escalation import Decision, EscalationPolicy, Evidence, Reason
from supportbot.escalation.policy import Screening
from supportbot.gaps.answers import AGENT_AUTHOR
from supportbot.generate import Generator
from supportbot.handoff.dispatch import Dispatcher
from supportbot.handoff.packet import HandoffPacket
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.prompt import STOP, build_prompt
from supportbot.retrieve import HybridRetriever, Retrieval
from supportbot.safety.guard import StreamGuard, config_values, guard_answer
from supportbot.safety.hygiene import (
    check_id,
    check_text,
    clean_question,
    neutralise_instructions,
)
from supportbot.safety.ratelimit import RateLimiter
from supportbot.span import Selection, SpanSelector
from supportbot.types import AnswerMode, Citation, Hit, Removed, Reply, Timings, Trace
from supportbot.verify import AnswerVerifier

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Plan", "SupportBot"]


def _suppressed(history: list[Turn]) -> frozenset[Reason]:
    """Reasons an agent just handed back: not re-escalated on the very next message."""
    for turn in reversed(history):
        if turn.role == "assistant":
            return frozenset(Reason(r) for r in turn.meta.get("handed_back", []))
    return frozenset()


SECTION_CHARS = 6000
"""Most characters of a section a citation carries for "see the whole section"."""


def _citation(n: int, hit: Hit, section: str = "") -> Citation:
    c = hit.chunk
    text = neutralise_instructions(c.text)
    snippet = text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + "..."
    if len(section) > SECTION_CHARS:
        section = section[: SECTION_CHARS - 3].rsplit(" ", 1)[0] + "..."
    return Citation(
        n=n,
        source=c.source,
        title=c.title,
        heading=c.heading,
        page=c.page,
        snippet=snippet,
        score=round(hit.score, 4),
        chunk_id=c.id,
        section=section,
    )


def _covers(answer: str, span: str) -> bool:
    """True when the answer already holds most of the span's words (no need to quote it)."""
    from supportbot.keyword import tokenize

    words = set(tokenize(span))
    return not words or len(words & set(tokenize(answer))) >= 0.8 * len(words)


@dataclass(frozen=True)
class Plan:
    """What the bot knows about a turn before it writes anything.

    Attributes:
        question: the cleaned message.
        notices: what cleaning changed, in words the customer can read.
        history: earlier turns, oldest first (all of them; the prompt keeps the last few).
        query: what was searched (a follow-up borrows the earlier question).
        retrieval: the passages found and the best FAQ-question match.
        faq: the curated FAQ entry close enough to answer with, or None.
        screening: the message signals of the escalation policy.
        decision: the policy's decision before any answer exists.
        retrieval_seconds: time from the message's arrival to the end of retrieval.
    """

    question: str
    notices: list[str]
    history: list[Turn]
    query: str
    retrieval: Retrieval
    faq: Hit | None
    screening: Screening
    decision: Decision
    retrieval_seconds: float = 0.0

    @property
    def should_draft(self) -> bool:
        """True when the bot should write (or quote) an answer before deciding."""
        return self.decision.action == "answer" or (
            self.faq is not None and not self.decision.escalate
        )


@dataclass
class _Draft:
    """An answer before the escalation policy has reviewed it."""

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
    tokens: int = 0
    quoted: bool = False
    """The documents' own words follow the model's text (the answer is grounded in them)."""


class SupportBot:
    """Answers customer questions from the knowledge base, with verified citations.

    Build it with :func:`supportbot.build` (or :meth:`from_settings`); the constructor
    only receives parts, which keeps tests free to pass fakes.

    Example:
        >>> bot = SupportBot.from_settings()
        >>> reply = bot.ask("What does E-104 mean?")
        >>> print(reply.answer, [c.label for c in reply.citations])
    """

    def __init__(
        self,
        *,
        settings: Settings,
        embedder: Embedder,
        retriever: HybridRetriever,
        selector: SpanSelector,
        generator: Generator,
        verifier: AnswerVerifier,
        policy: EscalationPolicy,
        conversations: ConversationStore,
        handoffs: SqliteHandoffQueue,
        dispatcher: Dispatcher,
        rate_limiter: RateLimiter,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._retriever = retriever
        self._selector = selector
        self._generator = generator
        self._verifier = verifier
        self._policy = policy
        self._conversations = conversations
        self._handoffs = handoffs
        self._dispatcher = dispatcher
        self._rate_limiter = rate_limiter

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        on_handoff: Callable[[HandoffPacket], None] | None = None,
    ) -> SupportBot:
        """Build every part from settings (see :func:`supportbot.factory.build`)."""
        from supportbot.factory import build

        return build(settings, on_handoff).bot

    def warm_up(self) -> None:
        """Load everything the first question needs, so the first customer does not wait.

        Models and indexes load on first use (that keeps ``import supportbot`` and bot
        construction fast); a server calls this once at start-up, e.g. in a background
        thread. Loads the embedder, the keyword index, the local model (a remote server is
        not contacted) and, when hand-offs are redacted, the PII detector (6-10 s).
        """
        self._embedder.embed_query("warm up")
        self._retriever.keyword.refresh()
        self._generator.count_tokens("warm up")
        if self.settings.handoff.redact_pii:
            from supportbot.safety.redact import redact

            redact("warm up: jane@example.com")

    # -- reading state (what a UI shows) ----------------------------------------------

    def history(self, conversation_id: str) -> list[Turn]:
        """The conversation's turns, oldest first (bot, customer and agent messages)."""
        return self._conversations.history(check_id(conversation_id))

    def restore(self, conversation_id: str, turns: list[Turn]) -> None:
        """Append earlier turns to a conversation, e.g. carried over from another channel.

        Also how a UI keeps a question whose answer was interrupted: the turn is stored,
        so the conversation still shows it.
        """
        conv_id = check_id(conversation_id)
        for turn in turns:
            check_text(turn.text, "A restored turn's text")
            self._conversations.append(conv_id, turn)

    def open_handoff(self, conversation_id: str) -> HandoffPacket | None:
        """The hand-off that owns this conversation now (open or claimed), if any."""
        return self._handoffs.get_by_conversation(check_id(conversation_id), open_only=True)

    def indexed_chunks(self) -> int:
        """How many passages the knowledge base holds (0: nothing ingested yet)."""
        return self._retriever.store.count()

    def search(self, query: str, k: int | None = None) -> Retrieval:
        """Hybrid retrieval alone: what the bot would read for ``query``, best first."""
        return self._retriever.retrieve(query, k=k or self.settings.retrieval.top_k)

    # -- one turn ----------------------------------------------------------------------

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
        conv_id, text, notices, history = self._admit(question, conversation_id)
        owner = self.open_handoff(conv_id)
        if owner is not None:
            message = self.settings.messages.with_agent.format(ref=owner.id[:8])
            yield message
            yield self._finish(
                conv_id, text, notices, started, answer=message, mode="handoff", handoff=owner
            )
            return
        plan = self._plan(text, notices, history, started)
        draft: _Draft | None = None
        decision = plan.decision
        if plan.should_draft:
            draft = yield from self._draft(plan, started)
            decision = self._review(plan, draft)
        if decision.escalate:
            # One open hand-off per conversation: a concurrent one (another tab, another
            # process) wins, and this reply gives its reference.
            packet, _ = self._hand_over(
                conv_id, [*history, Turn("user", text)], decision, plan, draft
            )
            answer = self.settings.messages.handed_over.format(ref=packet.id[:8])
            yield ("\n\n" if draft else "") + answer
            yield self._finish(
                conv_id, text, notices, started, answer=answer, mode="handoff", handoff=packet,
                plan=plan, decision=decision, draft=draft,
            )  # fmt: skip
        elif draft is None:  # clarify: the message is too vague to search for
            answer = self.settings.messages.clarify
            yield answer
            yield self._finish(
                conv_id, text, notices, started, answer=answer, mode="clarify",
                plan=plan, decision=decision,
            )  # fmt: skip
        else:
            yield self._finish(
                conv_id, text, notices, started, answer=draft.answer, mode=draft.mode,
                plan=plan, decision=decision, draft=draft,
            )  # fmt: skip

    def plan(self, question: str, history: list[Turn] | None = None, k: int | None = None) -> Plan:
        """Steps 1-2 without side effects: clean, retrieve, screen, decide; write nothing.

        What the offline evaluation and the knowledge-base page's preview use to see
        what the bot would do, without generating, rate limiting or recording a turn.

        Raises:
            InputError: the question is empty after cleaning.
        """
        text, notices = self._clean(question)
        return self._plan(text, notices, list(history or []), time.perf_counter(), k)

    def _clean(self, question: object) -> tuple[str, list[str]]:
        return clean_question(question, self.settings.conversation.max_question_chars)

    def _admit(
        self, question: str, conversation_id: str | None
    ) -> tuple[str, str, list[str], list[Turn]]:
        """Step 1: rate limit, clean the message, load the conversation."""
        conv_id = uuid.uuid4().hex if conversation_id is None else check_id(conversation_id)
        self._rate_limiter.check(conv_id)
        text, notices = self._clean(question)
        return conv_id, text, notices, self._conversations.history(conv_id)

    def _plan(
        self,
        text: str,
        notices: list[str],
        history: list[Turn],
        started: float,
        k: int | None = None,
    ) -> Plan:
        """Step 2: retrieval, the FAQ match, the message signals and a first decision."""
        query = retrieval_query(text, history)
        retrieval = self._retriever.retrieve(query, k=k or self.settings.retrieval.top_k)
        seconds = time.perf_counter() - started
        faq = self._faq_answer(retrieval)
        # A curated answer to this very question is relevance enough: an agent's answer,
        # matched by its customers' wordings, may score under the passage floor.
        found = frozenset({Reason.NO_RELEVANT_CONTEXT}) if faq is not None else frozenset()
        screening = self._policy.screen(text, history, _suppressed(history) | found)
        decision = self._policy.review(
            screening, top_score=retrieval.top_score, floor=retrieval.floor
        )
        return Plan(text, notices, history, query, retrieval, faq, screening, decision, seconds)

    def _review(self, plan: Plan, draft: _Draft) -> Decision:
        """Step 4: the plan's message signals plus what the answer says about itself."""
        return self._policy.review(
            plan.screening,
            top_score=plan.retrieval.top_score,
            reply_mode=draft.mode,
            confidence=draft.confidence,
            # A quoted span is grounded as an extract is: the model sentences the verifier
            # removed are not shown, so they are no reason to hand over (LOW_CONFIDENCE
            # still weighs them). On kb/eval this rule fired only on answerable questions.
            supported_share=None if draft.quoted else draft.share,
            floor=plan.retrieval.floor,
        )

    def _finish(
        self,
        conv_id: str,
        text: str,
        notices: list[str],
        started: float,
        *,
        answer: str,
        mode: AnswerMode,
        handoff: HandoffPacket | None = None,
        plan: Plan | None = None,
        decision: Decision | None = None,
        draft: _Draft | None = None,
    ) -> Reply:
        """Step 5: the one place a :class:`Reply` is built and the turn recorded."""
        bot_answered = draft is not None and mode == draft.mode
        first = draft.first_token if draft else time.perf_counter() - started
        trace = Trace(
            retrieval_query=plan.query if plan else "",
            hits=plan.retrieval.hits if plan else [],
            raw_answer=draft.raw if draft else "",
            removed=draft.removed if draft else [],
            dropped_citations=draft.dropped if draft else [],
            tokens=draft.tokens if draft else 0,
        )
        reply = Reply(
            conversation_id=conv_id,
            question=text,
            answer=answer,
            citations=draft.cited if (draft and bot_answered) else [],
            confidence=round(draft.confidence, 4) if (draft and bot_answered) else 0.0,
            verified=mode in ("faq", "extract")
            or (mode == "generated" and self.settings.verify.enabled),
            mode=mode,
            timings=Timings(
                round(plan.retrieval_seconds, 4) if plan else 0.0,
                round(first, 4) if first is not None else None,
                round(time.perf_counter() - started, 4),
            ),
            notices=notices + (draft.notices if (draft and bot_answered) else []),
            escalation=decision,
            handoff_id=handoff.id if handoff else None,
            trace=trace,
        )
        self._record(reply, {"handoff": handoff.id} if handoff else {})
        return reply

    def _record(self, reply: Reply, extra: dict[str, Any]) -> None:
        conv_id = reply.conversation_id
        self._conversations.append(conv_id, Turn("user", reply.question))
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
                    "section": c.section,
                }
                for c in reply.citations
            ],
            **extra,
        }
        if reply.escalation is not None:
            meta["decision"] = reply.escalation.action
            meta["reasons"] = [r.value for r in reply.escalation.reasons]
        self._conversations.append(conv_id, Turn("assistant", reply.answer, meta=meta))

    def _faq_answer(self, retrieval: Retrieval) -> Hit | None:
        hit = retrieval.faq_hit
        if hit is None:
            return None
        similarity = hit.extra.get("faq_question_cosine", 0.0)
        # An approved agent answer is matched by the centre of its customers' wordings,
        # with its own threshold (supportbot/gaps, docs/knowledge-gaps.md).
        if hit.chunk.author == AGENT_AUTHOR:
            return hit if similarity >= self.settings.gaps.answer_match else None
        return hit if similarity >= self.settings.retrieval.faq_match else None

    # -- step 3: the draft ---------------------------------------------------------------

    def _draft(self, plan: Plan, started: float) -> Generator_[str, None, _Draft]:
        """Step 3: an answer (FAQ, generated and verified, or extracted), streamed."""
        text, retrieval, faq = plan.question, plan.retrieval, plan.faq
        turns = self.settings.conversation.history_turns
        history = plan.history[-turns:] if turns else []
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
        # Select, then write: the model reads only the span that answers (complete
        # sentences, lists whole), and is verified against it (supportbot/span.py).
        spans = self._selector.select(text, retrieval.hits)[:1]
        prompt, used = build_prompt(
            text,
            [s.as_hit() for s in spans] or retrieval.hits,
            self._generator.count_tokens,
            llm.context_tokens,
            [(t.role, t.text) for t in history],
        )
        sections = [s.section for s in spans] + [""] * len(used)
        pieces: list[str] = []
        first: float | None = None
        notices: list[str] = []
        # Wall-clock bound on generation (waiting for the shared model included): past
        # it the stream is closed, which stops the model, and the answer keeps its text.
        deadline = time.perf_counter() + llm.generation_timeout
        tokens = self._generator.stream(prompt, llm.max_tokens, STOP)
        secrets = config_values(self.settings, self._generator.name)
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
            check = self._verifier.verify(raw, used, question=text)
            removed, dropped = check.removed, check.dropped_citations
            answer, numbers, share = check.text, check.cited, check.supported_share
        else:
            answer, numbers, share = raw, list(range(1, len(used) + 1)), 1.0
        # Never show the prompt's instructions or configuration values (supportbot/guard.py).
        answer, leaked = guard_answer(answer, self.settings, self._generator.name, secrets)
        if leaked:
            removed = [*removed, *leaked]
            numbers = [n for n in numbers if f"[{n}]" in answer]
        # What every draft from the model's text shares, whichever form it ends in.
        written = partial(
            _Draft,
            first_token=first,
            raw=raw,
            removed=removed,
            dropped=dropped,
            notices=notices,
            tokens=len(pieces),
        )
        if answer:
            cited = [_citation(n, used[n - 1], sections[n - 1]) for n in numbers]
            quoted = bool(spans) and not _covers(answer, spans[0].quote)
            if quoted:
                # The model's verified sentences lead; the span they come from follows in
                # the documents' own words, so the customer has the whole step or reason.
                quote, source = self._quote(spans[0])
                answer = f"{answer}\n\n{quote}"
                yield f"\n\n{quote}"
                cited = [source, *(c for c in cited if c.n != 1)]
            return written(
                "generated", answer, cited, retrieval.top_score * share, share, quoted=quoted
            )
        # Nothing the model wrote survived: the selection itself, in the manual's words.
        answer, source = self._quote(spans[0]) if spans else self._quote_passage(used[0])
        return written("extract", answer, [source], used[0].score * 0.5, share)

    def _quote(self, span: Selection) -> tuple[str, Citation]:
        """The span as the answer: labelled as the documents' words, its section named."""
        cited = _citation(1, span.as_hit(quoted=True), span.section)
        body = span.quote
        if span.has_block:
            return f'From "{cited.label}" [1]:\n\n{body}', cited
        end = "" if body.endswith(":") else "."
        return f'From "{cited.label}": {body.rstrip(".")} [1]{end}', cited

    def _quote_passage(self, hit: Hit) -> tuple[str, Citation]:
        """A passage with no usable span (an FAQ entry): quoted whole, as written."""
        cited = _citation(1, hit)
        body = neutralise_instructions(hit.chunk.text).strip()
        return f'From "{cited.label}": {body.rstrip(".")} [1].', cited

    # -- hand-off ----------------------------------------------------------------------

    def _hand_over(
        self,
        conv_id: str,
        transcript: list[Turn],
        decision: Decision,
        plan: Plan | None,
        draft: _Draft | None,
    ) -> tuple[HandoffPacket, bool]:
        suggestion = None
        if draft is not None and draft.mode in ("faq", "generated", "extract"):
            suggestion = draft.answer
        hits = plan.retrieval.hits if plan else []
        return self._dispatcher.open_handoff(conv_id, transcript, decision, hits, suggestion)

    def escalate(
        self, conversation_id: str, reason: Reason | str = "HUMAN_REQUESTED", note: str = ""
    ) -> HandoffPacket:
        """Hand a conversation to a human now (the UI's "talk to a person" button).

        Returns the open hand-off when the conversation already has one: idempotent per
        open conversation, across threads and processes (one packet, one reference).

        Raises:
            InputError: ``reason`` is not a reason code, or the id or note is not usable.
        """
        conversation_id = check_id(conversation_id)
        note = check_text(note, "The note")
        try:
            code = Reason(reason if isinstance(reason, str) else reason.value)
        except ValueError as exc:
            raise InputError(
                f"Unknown hand-off reason {reason!r}; use one of {[r.value for r in Reason]}."
            ) from exc
        existing = self.open_handoff(conversation_id)
        if existing is not None:
            return existing
        decision = Decision(
            "escalate",
            (code,),
            (Evidence(code, note or "requested through the API", None, ()),),
            1.0,
        )
        history = self._conversations.history(conversation_id)
        packet, created = self._hand_over(conversation_id, history, decision, None, None)
        if not created:  # another thread or process handed it over first
            return packet
        self._conversations.append(
            conversation_id,
            Turn(
                "assistant",
                self.settings.messages.handed_over.format(ref=packet.id[:8]),
                meta={"mode": "handoff", "handoff": packet.id, "reasons": [code.value]},
            ),
        )
        return packet

    def feedback(self, conversation_id: str, helpful: bool, turn: int | None = None) -> bool:
        """Thumbs up/down on an answer (thumbs-down twice escalates).

        Args:
            conversation_id: the conversation.
            helpful: thumbs up (True) or down (False).
            turn: index in :meth:`history` of the answer rated; the latest answer when
                omitted. A UI shows thumbs under every answer, so a customer may rate an
                older one.

        Returns:
            False when there is no such answer.
        """
        conversation_id = check_id(conversation_id)
        if not isinstance(helpful, bool) or not (turn is None or isinstance(turn, int)):
            raise InputError("Feedback is helpful=True/False and an optional turn index.")
        value = "up" if helpful else "down"
        if turn is None:
            return self._conversations.annotate_last(conversation_id, "assistant", feedback=value)
        history = self._conversations.history(conversation_id)
        if not 0 <= turn < len(history) or history[turn].role != "assistant":
            return False
        return self._conversations.annotate_at(conversation_id, turn, feedback=value)
