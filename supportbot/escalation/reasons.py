"""What the escalation policy decides and why: reason codes, evidence and the decision.

Plain data, shared by the policy, its signal detectors, hand-off packets and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Action", "Decision", "Evidence", "Reason"]

Action = Literal["answer", "clarify", "escalate"]


class Reason(StrEnum):
    """Why a conversation is handed to a human.

    The values are stable codes: they are stored with hand-offs, used as labels in
    ``kb/eval/questions.jsonl`` and read by helpdesk integrations, so never rename one.
    """

    NO_RELEVANT_CONTEXT = "NO_RELEVANT_CONTEXT"
    UNSUPPORTED_ANSWER = "UNSUPPORTED_ANSWER"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    HUMAN_REQUESTED = "HUMAN_REQUESTED"
    FRUSTRATION = "FRUSTRATION"
    REPEATED_FAILURE = "REPEATED_FAILURE"
    SENSITIVE_TOPIC = "SENSITIVE_TOPIC"
    ACCOUNT_SPECIFIC = "ACCOUNT_SPECIFIC"


@dataclass(frozen=True)
class Evidence:
    """One signal that fired, in a form an agent can read.

    Attributes:
        reason: the reason this evidence supports.
        detail: a short human-readable explanation (shown in the agent console).
        score: the measured value behind it (sentiment, similarity, relevance,
            confidence, rating count) or None for a plain pattern match.
        matched: the phrases or patterns that matched, so a wrong escalation can be
            traced to the rule that caused it.
    """

    reason: Reason
    detail: str
    score: float | None = None
    matched: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "score": None if self.score is None else round(self.score, 4),
            "matched": list(self.matched),
        }


@dataclass(frozen=True)
class Decision:
    """What to do with one turn.

    Attributes:
        action: ``answer``, ``clarify`` or ``escalate``.
        reasons: the reasons for escalating, in a stable order (empty otherwise).
        evidence: what fired for each reason.
        confidence: how sure the policy is of ``action``, 0..1 (a heuristic that lets a
            helpdesk sort or sample decisions; it is not a calibrated probability).

    Example:
        >>> d = Decision("escalate", (Reason.HUMAN_REQUESTED,), (), 0.95)
        >>> d.escalate, d.to_dict()["reasons"]
        (True, ['HUMAN_REQUESTED'])
    """

    action: Action
    reasons: tuple[Reason, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 1.0

    @property
    def escalate(self) -> bool:
        """True when the conversation goes to a human."""
        return self.action == "escalate"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for hand-off packets, logs and the API."""
        return {
            "action": self.action,
            "escalate": self.escalate,
            "reasons": [r.value for r in self.reasons],
            "evidence": [e.to_dict() for e in self.evidence],
            "confidence": round(self.confidence, 4),
        }
