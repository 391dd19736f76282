"""The escalation policy: when a conversation goes to a human, and why.

A small model that answers from the manual is only useful if it knows when *not* to
answer. :class:`EscalationPolicy` looks at one turn and returns a :class:`Decision`:

* ``answer``: the bot may answer;
* ``clarify``: the message is too vague to search for ("help", "app problem"), so the bot
  asks what the customer needs instead of guessing or bothering an agent;
* ``escalate``: hand the conversation to a person, with every :class:`Reason` that
  fired and the :class:`Evidence` behind it, so the agent sees at a glance why.

Reasons come from two places. *Message signals* need only the text and the history:
an explicit request for a person, frustration, a sensitive topic (legal, safety,
payment disputes), a question about the customer's own records, or a question the bot
already failed to answer. *Answer signals* come from retrieval and generation: no
relevant passage, an unsupported answer, low confidence.

The policy is pure and deterministic: regular expressions, the VADER sentiment
lexicon and thresholds from :class:`~supportbot.config.EscalationSettings`; no model
call, so it is table-tested and cheap enough to run on every turn. The product's own
vocabulary (names, vague words, identifier formats) comes from
:class:`~supportbot.config.ProductSettings`; the rules themselves name no product.

Example:
    >>> policy = EscalationPolicy(EscalationSettings())
    >>> policy.decide("can i talk to a real person pls", [], top_score=0.9).reasons
    (<Reason.HUMAN_REQUESTED: 'HUMAN_REQUESTED'>,)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from supportbot.config import EscalationSettings, ProductSettings
from supportbot.conversation import Turn
from supportbot.escalation.reasons import Action, Decision, Evidence, Reason
from supportbot.escalation.signals import (
    acronym_words,
    detect_account_specific,
    detect_frustration,
    detect_human_request,
    detect_repeated_failure,
    is_vague,
    sensitive_matcher,
    vague_tokens,
)
from supportbot.keyword import tokenize
from supportbot.relevance import GENERIC_FLOOR

__all__ = ["Action", "Decision", "EscalationPolicy", "Evidence", "Reason", "Screening"]


# -------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Screening:
    """What the message alone says about a turn (see :meth:`EscalationPolicy.screen`)."""

    message: tuple[Evidence, ...]
    vague: bool
    suppress: frozenset[Reason] = frozenset()
    empty: bool = False
    enabled: bool = True


_ORDER = {reason: i for i, reason in enumerate(Reason)}
# How much each kind of pattern evidence is worth, for Decision.confidence.
_STRENGTH = {
    Reason.HUMAN_REQUESTED: 0.95,
    Reason.SENSITIVE_TOPIC: 0.9,
    Reason.ACCOUNT_SPECIFIC: 0.85,
    Reason.REPEATED_FAILURE: 0.85,
    Reason.UNSUPPORTED_ANSWER: 0.8,
}


def _margin(value: float, threshold: float) -> float:
    """How far below ``threshold`` ``value`` lies, scaled to 0..1."""
    return min(1.0, max(0.0, (threshold - value) / threshold)) if threshold > 0 else 1.0


class EscalationPolicy:
    """Decides, for each turn, whether to answer, ask back, or hand over to a human.

    Example:
        >>> policy = EscalationPolicy(settings.escalation)
        >>> decision = policy.decide(text, history, top_score=retrieval.top_score)
        >>> decision.action, [r.value for r in decision.reasons]
    """

    def __init__(
        self, settings: EscalationSettings, product: ProductSettings | None = None
    ) -> None:
        self.settings = settings
        self.product = product or ProductSettings()
        self._sensitive = sensitive_matcher(settings.sensitive_topics)
        terms = self.product.terms()
        self._vague = vague_tokens([*self.product.vague_words, *terms])
        self._acronyms = acronym_words(terms)
        self._identifiers = [re.compile(p) for p in self.product.identifier_patterns.values()]

    def message_signals(self, question: str, history: Sequence[Turn]) -> list[Evidence]:
        """Reasons that need no retrieval: the message and the conversation alone.

        Cheap enough to run before retrieval, e.g. to skip generation when the customer
        only asks for a person.

        Args:
            question: the customer's (cleaned) message.
            history: earlier turns of the conversation, oldest first.
        """
        s = self.settings
        found = [
            detect_human_request(question),
            detect_frustration(question, s.frustration, self._acronyms),
            self._sensitive(question),
            detect_account_specific(question, self._identifiers),
            detect_repeated_failure(question, history, s.repeat_similarity, s.thumbs_down_limit),
        ]
        return [e for e in found if e is not None]

    def answer_signals(
        self,
        *,
        top_score: float | None,
        reply_mode: str | None = None,
        confidence: float | None = None,
        supported_share: float | None = None,
        floor: float | None = None,
    ) -> list[Evidence]:
        """Reasons that come from retrieval and generation.

        Args:
            top_score: calibrated relevance of the best passage (None: nothing found).
            reply_mode: ``Reply.mode`` (``faq``, ``generated``, ``extract``, ``none``) or
                None before generation.
            confidence: ``Reply.confidence`` or None before generation.
            supported_share: share of generated sentences the verifier kept, if known.
            floor: the index's relevance boundary (``Retrieval.floor``); the
                ``min_relevance`` setting wins when it is set.
        """
        s = self.settings
        floor = self.floor(floor)
        out: list[Evidence] = []
        if top_score is None or top_score < floor:
            out.append(
                Evidence(
                    Reason.NO_RELEVANT_CONTEXT,
                    "The knowledge base has no passage relevant to the question"
                    + (
                        f" (relevance {top_score:.2f} < {floor:.2f})."
                        if top_score is not None
                        else " (nothing retrieved)."
                    ),
                    top_score,
                )
            )
        # An extract quotes a passage verbatim, so it is grounded; whether it is relevant
        # enough is LOW_CONFIDENCE's call. (Escalating every extract was measured: recall
        # 0.92 but 37% false escalations on the tuning split; see docs/measured.md.)
        unsupported = reply_mode == "none"
        if reply_mode == "generated" and supported_share is not None and supported_share < 0.5:
            unsupported = True
        if unsupported:
            out.append(
                Evidence(
                    Reason.UNSUPPORTED_ANSWER,
                    f"The sources do not support an answer (mode {reply_mode}).",
                    supported_share if supported_share is not None else confidence,
                    (f"mode={reply_mode}",),
                )
            )
        if confidence is not None and confidence < s.min_confidence:
            out.append(
                Evidence(
                    Reason.LOW_CONFIDENCE,
                    f"Answer confidence {confidence:.2f} is below {s.min_confidence:.2f}.",
                    confidence,
                )
            )
        return out

    def screen(
        self, question: str, history: Sequence[Turn], suppress: frozenset[Reason] = frozenset()
    ) -> Screening:
        """Message signals and vagueness: everything that needs only the conversation.

        Run once per turn, before retrieval; :meth:`review` then adds the answer signals
        (once before generation, once after) without running the detectors again.

        Args:
            question: the customer's (cleaned) message.
            history: earlier turns, oldest first.
            suppress: reasons to ignore, e.g. after an agent hands the conversation
                back, so the same reason does not bounce it straight back to them.
        """
        if not self.settings.enabled:
            return Screening((), False, suppress, enabled=False)
        message = tuple(
            e for e in self.message_signals(question, history) if e.reason not in suppress
        )
        vague = not message and is_vague(question, history, self._vague)
        return Screening(message, vague, suppress, empty=not tokenize(question))

    def review(
        self,
        screening: Screening,
        *,
        top_score: float | None,
        reply_mode: str | None = None,
        confidence: float | None = None,
        supported_share: float | None = None,
        floor: float | None = None,
    ) -> Decision:
        """The action for one turn, from its screening and the answer signals.

        Message signals escalate first. A vague first message ("help", "router") is
        then answered with a question, even when retrieval found nothing: its low
        relevance says the *message* is vague, not that the knowledge base lacks the
        answer. Otherwise any answer signal escalates.

        Args:
            screening: :meth:`screen` of this turn.
            top_score: calibrated relevance of the best retrieved passage, or None.
            reply_mode: ``Reply.mode`` once an answer exists, else None.
            confidence: ``Reply.confidence`` once an answer exists, else None.
            supported_share: share of generated sentences the verifier kept, if known.
            floor: the index's relevance boundary (see :meth:`answer_signals`).
        """
        if not screening.enabled:
            return Decision("answer", (), (), 1.0)
        if screening.vague:
            return Decision("clarify", (), (), 0.7 if screening.empty else 0.6)
        answer = [
            e
            for e in self.answer_signals(
                top_score=top_score,
                reply_mode=reply_mode,
                confidence=confidence,
                supported_share=supported_share,
                floor=floor,
            )
            if e.reason not in screening.suppress
        ]
        evidence = sorted([*screening.message, *answer], key=lambda e: _ORDER[e.reason])
        if evidence:
            reasons = tuple(dict.fromkeys(e.reason for e in evidence))
            return Decision("escalate", reasons, tuple(evidence), self._sureness(evidence, floor))
        return Decision("answer", (), (), self._answer_sureness(top_score, confidence, floor))

    def decide(
        self,
        question: str,
        history: Sequence[Turn],
        *,
        top_score: float | None,
        reply_mode: str | None = None,
        confidence: float | None = None,
        supported_share: float | None = None,
        suppress: frozenset[Reason] = frozenset(),
    ) -> Decision:
        """:meth:`screen` then :meth:`review`, for one-off decisions (tests, benches)."""
        return self.review(
            self.screen(question, history, suppress),
            top_score=top_score,
            reply_mode=reply_mode,
            confidence=confidence,
            supported_share=supported_share,
        )

    def floor(self, index_floor: float | None = None) -> float:
        """The relevance boundary: the setting, else the index's, else the generic one."""
        if self.settings.min_relevance is not None:
            return self.settings.min_relevance
        return index_floor if index_floor is not None else GENERIC_FLOOR

    def _sureness(self, evidence: Sequence[Evidence], floor: float | None = None) -> float:
        """Noisy-OR of the evidence strengths: two weak signals beat one."""
        s = self.settings
        min_relevance = self.floor(floor)
        doubt = 1.0
        for e in evidence:
            if e.reason in _STRENGTH:
                strength = _STRENGTH[e.reason]
            elif e.reason is Reason.FRUSTRATION:
                strength = 0.6 + 0.4 * min(1.0, (s.frustration - (e.score or 0.0)) / 0.5)
            elif e.reason is Reason.NO_RELEVANT_CONTEXT:
                strength = 1.0 if e.score is None else 0.5 + 0.5 * _margin(e.score, min_relevance)
            else:  # LOW_CONFIDENCE
                strength = 0.5 + 0.5 * _margin(e.score or 0.0, s.min_confidence)
            doubt *= 1.0 - strength
        return round(1.0 - doubt, 4)

    def _answer_sureness(
        self, top_score: float | None, confidence: float | None, floor: float | None = None
    ) -> float:
        """Higher the further the answer's numbers clear their thresholds."""
        s = self.settings
        min_relevance = self.floor(floor)
        parts = []
        if top_score is not None:
            parts.append((top_score - min_relevance) / max(1e-9, 1.0 - min_relevance))
        if confidence is not None:
            parts.append((confidence - s.min_confidence) / max(1e-9, 1.0 - s.min_confidence))
        if not parts:
            return 0.5
        return round(0.5 + 0.5 * min(1.0, max(0.0, min(parts))), 4)
