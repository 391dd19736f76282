"""Handing a conversation over: build the packet, record it in the queue, deliver it.

The bot (an automatic or requested hand-off) and the agent desk (failed deliveries)
share one :class:`Dispatcher`, built once per process by :mod:`supportbot.factory`, so
there is one queue object and one set of sinks however many facades a process holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from supportbot.conversation import Turn
from supportbot.escalation.reasons import Decision
from supportbot.handoff.packet import HandoffPacket, build_packet
from supportbot.handoff.queue import DeadLetter, SqliteHandoffQueue
from supportbot.handoff.sinks import BackgroundSink, HandoffSink, WebhookSink, deliver_packet
from supportbot.types import Hit

__all__ = ["Dispatcher"]


class Dispatcher:
    """Turns an escalation decision into a delivered :class:`HandoffPacket`.

    The queue is the system of record (the agent console reads it); every other sink
    (a helpdesk webhook, a callback) also gets each packet, and one failing never
    breaks the customer's reply.

    Example:
        >>> dispatcher = Dispatcher(SqliteHandoffQueue(path), [CallbackSink(print)])
        >>> packet = dispatcher.hand_over("c1", transcript, decision, hits, None)
    """

    def __init__(
        self,
        queue: SqliteHandoffQueue,
        sinks: Sequence[HandoffSink] = (),
        *,
        redact_pii: bool = True,
        allow: Sequence[str] = (),
        identifiers: Mapping[str, str] | None = None,
    ) -> None:
        self.queue = queue
        self.sinks = list(sinks)
        self.redact_pii = redact_pii
        self.allow = tuple(allow)
        # The product's identifier formats ([product] identifier_patterns), compiled once.
        self.identifiers = {k: re.compile(v) for k, v in (identifiers or {}).items()}

    def hand_over(
        self,
        conversation_id: str,
        transcript: list[Turn],
        decision: Decision,
        hits: Sequence[Hit],
        suggestion: str | None,
    ) -> HandoffPacket:
        """Build the packet for ``decision``, record it, and give it to every sink."""
        packet = build_packet(
            conversation_id,
            transcript,
            [r.value for r in decision.reasons],
            [e.to_dict() for e in decision.evidence],
            hits,
            suggestion,
            redact_pii=self.redact_pii,
            allow=self.allow,
            identifiers=self.identifiers,
        )
        self.queue.deliver(packet)
        deliver_packet(packet, self.sinks)  # a failing helpdesk never breaks the reply
        return packet

    def _webhooks(self) -> list[WebhookSink]:
        out = []
        for sink in self.sinks:
            inner = sink.inner if isinstance(sink, BackgroundSink) else sink
            if isinstance(inner, WebhookSink):
                out.append(inner)
        return out

    def failed_deliveries(self) -> list[DeadLetter]:
        """Packets a helpdesk webhook could not take, oldest first (kept to be re-sent)."""
        return [letter for hook in self._webhooks() for letter in hook.dead_letters()]

    def retry_failed(self) -> int:
        """Re-send failed deliveries once each; returns how many went through."""
        return sum(hook.redeliver_dead_letters() for hook in self._webhooks())
