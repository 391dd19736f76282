"""Escalation: when a conversation belongs to a human, and why.

``reasons`` holds the data (reason codes, evidence, the decision), ``signals`` the
detectors and their lexicons, ``policy`` the :class:`EscalationPolicy` that combines
message signals and answer signals into one decision per turn.
"""

from supportbot.escalation.policy import EscalationPolicy
from supportbot.escalation.reasons import Action, Decision, Evidence, Reason

__all__ = ["Action", "Decision", "EscalationPolicy", "Evidence", "Reason"]
