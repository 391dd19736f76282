"""Activity figures for the agent console: how much the bot handles, and why it hands over.

Counted from the conversation store and the hand-off queue, which already hold every
turn and packet; nothing extra is logged for it. The figures are aggregates (counts per
reason, rates), so no customer text reaches them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from supportbot.conversation import ConversationStore
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.types import BOT_ANSWER_MODES

__all__ = ["Activity", "activity", "start_of_today"]


@dataclass(frozen=True)
class Activity:
    """What happened since a moment (the console shows "today").

    ``answered`` counts conversations in which the bot gave at least one answer and
    that were never handed to a human: the bot's "resolution rate" numerator.
    """

    since: float
    conversations: int = 0
    answers: int = 0
    answered: int = 0
    escalated: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def thumbs_up_rate(self) -> float | None:
        """Share of rated answers rated up; None when nothing was rated."""
        rated = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / rated if rated else None


def start_of_today(now: float | None = None) -> float:
    """Local midnight before ``now`` as a Unix time (what "today" means in the console)."""
    local = datetime.fromtimestamp(time.time() if now is None else now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _packet_ts(created_at: str) -> float:
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def activity(conversations: ConversationStore, queue: SqliteHandoffQueue, since: float) -> Activity:
    """Count conversations, answers, hand-offs (per reason) and ratings.

    Args:
        conversations: the store the bot writes turns to.
        queue: the hand-off queue (the system of record for escalations).
        since: Unix time; only turns and packets from then on count.
    """
    turns = conversations.since(since)
    convs: set[str] = set()
    answered_convs: set[str] = set()
    handed: set[str] = set()
    answers = up = down = 0
    for conv, turn in turns:
        convs.add(conv)
        if turn.role == "user":
            continue
        mode = turn.meta.get("mode")
        if mode in BOT_ANSWER_MODES:
            answers += 1
            answered_convs.add(conv)
        if mode == "handoff" or turn.meta.get("handoff"):
            handed.add(conv)
        rating = turn.meta.get("feedback")
        up += rating == "up"
        down += rating == "down"
    reasons: Counter[str] = Counter()
    escalated = 0
    for packet in queue.list():
        if _packet_ts(packet.created_at) < since:
            continue
        escalated += 1
        handed.add(packet.conversation_id)
        reasons.update(packet.reasons)
    return Activity(
        since=since,
        conversations=len(convs),
        answers=answers,
        answered=len(answered_convs - handed),
        escalated=escalated,
        by_reason=dict(reasons.most_common()),
        thumbs_up=up,
        thumbs_down=down,
    )
