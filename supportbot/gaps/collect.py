"""Which customer questions the documents did not answer: read back from what is stored.

Nothing extra is logged for the gap report. The hand-off queue and the conversation store
already hold every question the bot handed over, every answer a customer rated, and every
reply an agent wrote; :func:`collect_questions` reads them and returns one
:class:`AskedQuestion` per case:

* a **hand-off for want of knowledge**: no relevant passage, an unsupported answer, low
  confidence, or the same question asked again after an answer (``GAP_REASONS``);
* a hand-off of any other kind **that an agent answered** (the customer asked for a
  person, or was frustrated, and an agent replied): the reply is kept with the question,
  as the first draft of an FAQ entry;
* a reply of the bot the customer gave a **thumbs-down** (an answer, "I could not find
  that", or a question back).

Hand-offs the policy sends to a person whatever the documents say (a sensitive topic, the
customer's own records) are left out: an FAQ entry could never be served for them.
Every text is PII-redacted here (:func:`supportbot.safety.redact.redact`), whatever
``handoff.redact_pii`` says, so no gap report, example or FAQ draft shows personal data.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from supportbot.conversation import ConversationStore, Turn, retrieval_query
from supportbot.escalation.reasons import Reason
from supportbot.escalation.signals import detect_human_request
from supportbot.handoff.packet import SMALLTALK, HandoffPacket
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.safety.redact import redact
from supportbot.types import BOT_ANSWER_MODES

__all__ = [
    "GAP_REASONS",
    "NEEDS_PERSON",
    "AskedQuestion",
    "collect_questions",
    "handoff_question",
]

GAP_REASONS = frozenset(
    {
        Reason.NO_RELEVANT_CONTEXT.value,
        Reason.UNSUPPORTED_ANSWER.value,
        Reason.LOW_CONFIDENCE.value,
        Reason.REPEATED_FAILURE.value,
    }
)
"""Hand-off reasons that say the documents did not answer the question."""
NEEDS_PERSON = frozenset({Reason.SENSITIVE_TOPIC.value, Reason.ACCOUNT_SPECIFIC.value})
"""Hand-off reasons that need a person whatever the documents say: never a gap."""

RATED_MODES = BOT_ANSWER_MODES | {"none", "clarify"}
"""Replies whose thumbs-down makes a gap: an answer, "no answer", or a question back."""

Origin = Literal["handed_over", "thumbs_down"]


@dataclass(frozen=True)
class AskedQuestion:
    """One customer question the documents did not answer, PII redacted.

    Attributes:
        text: the question (a follow-up is joined to the question it follows).
        ts: when it was asked (Unix time).
        conversation_id: whose question it was (customers are counted by conversation).
        origin: ``handed_over`` or ``thumbs_down``.
        reasons: the hand-off's reason codes (empty for a thumbs-down).
        handoff_id: the hand-off, when there was one.
        agent_reply: what the agent replied after the hand-off ("" when none did).
        agent: who replied.
    """

    text: str
    ts: float
    conversation_id: str
    origin: Origin
    reasons: tuple[str, ...] = ()
    handoff_id: str | None = None
    agent_reply: str = ""
    agent: str = ""

    @property
    def answered_by_agent(self) -> bool:
        """Whether an agent replied to it."""
        return bool(self.agent_reply)


def _ts(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _asks(text: str) -> bool:
    """Whether a message asks something: not a greeting or a bare request for a person."""
    words = re.findall(r"[\w']+", text)
    if len(words) < 2 or (len(words) <= 4 and SMALLTALK.match(text)):
        return False
    return len(words) > 10 or detect_human_request(text) is None


def _question(user_texts: list[str]) -> str | None:
    """The customer's latest message that asks something (a follow-up joined to its question)."""
    for i in range(len(user_texts) - 1, -1, -1):
        if _asks(user_texts[i]):
            # The same question typed again is not a follow-up of itself.
            earlier = [Turn("user", t) for t in user_texts[:i] if _key(t) != _key(user_texts[i])]
            return retrieval_query(user_texts[i], earlier)
    return None


def _agent_reply(turns: list[Turn], after: float, until: float | None) -> tuple[str, str]:
    """An agent's messages in a conversation between two moments, and the agent's name."""
    texts, agent = [], ""
    for turn in turns:
        if turn.ts <= after or (until is not None and turn.ts >= until):
            continue
        if turn.role == "assistant" and turn.meta.get("agent"):
            texts.append(turn.text.strip())
            agent = agent or str(turn.meta["agent"])
    return "\n\n".join(t for t in texts if t), agent


def handoff_question(
    packet: HandoffPacket,
    turns: list[Turn],
    until: float | None = None,
    allow: Collection[str] = (),
) -> AskedQuestion | None:
    """The question a hand-off left unanswered, with an agent's reply; None if it is no gap.

    Args:
        packet: the hand-off.
        turns: its conversation (raw turns; the agent's reply is read from them).
        until: when the conversation's next hand-off began (replies after it are not this
            one's).
        allow: public values redaction keeps.
    """
    reasons = set(packet.reasons)
    if reasons & NEEDS_PERSON:
        return None
    created = _ts(packet.created_at)
    reply, agent = _agent_reply(turns, created, until)
    if not (reasons & GAP_REASONS or reply):
        return None
    said = [str(t.get("text", "")) for t in packet.transcript if t.get("role") == "user"]
    text = _question(said)
    if text is None:
        return None
    return AskedQuestion(
        text=redact(text, allow).strip(),
        ts=created,
        conversation_id=packet.conversation_id,
        origin="handed_over",
        reasons=tuple(packet.reasons),
        handoff_id=packet.id,
        agent_reply=redact(reply, allow).strip(),
        agent=agent,
    )


def _from_handoffs(
    packets: Iterable[HandoffPacket],
    conversations: ConversationStore,
    since: float | None,
    allow: Collection[str],
) -> list[AskedQuestion]:
    by_conversation: dict[str, list[HandoffPacket]] = {}
    for packet in packets:
        if since is None or _ts(packet.created_at) >= since:
            by_conversation.setdefault(packet.conversation_id, []).append(packet)
    found: list[AskedQuestion] = []
    for conv_id, handed in by_conversation.items():
        handed.sort(key=lambda p: p.created_at)
        turns = conversations.history(conv_id)
        for i, packet in enumerate(handed):
            until = _ts(handed[i + 1].created_at) if i + 1 < len(handed) else None
            asked = handoff_question(packet, turns, until, allow)
            if asked is not None:
                found.append(asked)
    return found


def _from_ratings(
    conversations: ConversationStore, since: float | None, allow: Collection[str]
) -> list[AskedQuestion]:
    turns_by: dict[str, list[Turn]] = {}
    for conv_id, turn in conversations.since(since or 0.0):
        turns_by.setdefault(conv_id, []).append(turn)
    found: list[AskedQuestion] = []
    for conv_id, turns in turns_by.items():
        if not any(t.meta.get("feedback") == "down" for t in turns):
            continue
        history = conversations.history(conv_id)  # the whole conversation, for follow-ups
        for i, turn in enumerate(history):
            rated_down = turn.role == "assistant" and turn.meta.get("feedback") == "down"
            if not rated_down or turn.meta.get("mode") not in RATED_MODES:
                continue
            said = [t.text for t in history[:i] if t.role == "user"]
            text = _question(said)
            if text is None:
                continue
            asked_at = next((t.ts for t in reversed(history[:i]) if t.role == "user"), turn.ts)
            if since is not None and asked_at < since:
                continue
            found.append(
                AskedQuestion(
                    text=redact(text, allow).strip(),
                    ts=asked_at,
                    conversation_id=conv_id,
                    origin="thumbs_down",
                )
            )
    return found


def collect_questions(
    conversations: ConversationStore,
    queue: SqliteHandoffQueue,
    since: float | None = None,
    allow: Collection[str] = (),
) -> list[AskedQuestion]:
    """Every question the documents did not answer since ``since``, oldest first.

    A question both rated down and then handed over in one conversation is counted once
    (the hand-off, which may carry the agent's reply).

    Args:
        conversations: the conversation store the bot and the agents write to.
        queue: the hand-off queue.
        since: Unix time; None for everything kept.
        allow: public values redaction keeps (``settings.public_values``).
    """
    handed = _from_handoffs(queue.list(), conversations, since, allow)
    seen = {(q.conversation_id, _key(q.text)) for q in handed}
    rated = [
        q
        for q in _from_ratings(conversations, since, allow)
        if (q.conversation_id, _key(q.text)) not in seen
    ]
    found = [q for q in [*handed, *rated] if q.text]
    return sorted(found, key=lambda q: (q.ts, q.conversation_id))
