"""Handing a conversation over: build the packet, record it in the queue, deliver it.

The bot (an automatic or requested hand-off) and the agent desk (failed deliveries)
share one :class:`Dispatcher`, built once per process by :mod:`supportbot.factory`, so
there is one queue object and one set of sinks however many facades a process holds.
Deliveries to a helpdesk go through the durable outbox (:mod:`supportbot.handoff.outbox`):
they are written in the packet's own transaction and sent by the outbox's worker.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

from supportbot.conversation import Turn
from supportbot.escalation.reasons import Decision
from supportbot.handoff.outbox import Outbox
from supportbot.handoff.packet import HandoffPacket, build_packet
from supportbot.handoff.queue import DeadLetter, OutboxEntry, SqliteHandoffQueue
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
        return self.open_handoff(conversation_id, transcript, decision, hits, suggestion)[0]

    def open_handoff(
        self,
        conversation_id: str,
        transcript: list[Turn],
        decision: Decision,
        hits: Sequence[Hit],
        suggestion: str | None,
    ) -> tuple[HandoffPacket, bool]:
        """Like :meth:`hand_over`, and say whether a new hand-off was opened.

        One open hand-off per conversation, across threads and processes: when the
        conversation already has an open or claimed one, that one is returned with
        ``False`` and nothing is recorded or delivered. A new packet is written with its
        outbox rows in one transaction, then the outbox workers are woken and the other
        sinks (a callback) called.
        """
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
        outboxes = self._outboxes()
        packet, created = self.queue.open_handoff(packet, [(o.target, o.url) for o in outboxes])
        if created:
            for outbox in outboxes:
                outbox.notify()
            others = [s for s in self.sinks if not isinstance(s, Outbox)]
            deliver_packet(packet, others)  # a failing helpdesk never breaks the reply
        return packet, created

    def _outboxes(self) -> list[Outbox]:
        return [s for s in self.sinks if isinstance(s, Outbox)]

    def close(self) -> None:
        """Stop the outbox workers (what they have not sent stays in the outbox)."""
        for box in self._outboxes():
            box.close()

    def _webhooks(self) -> list[WebhookSink]:
        out = []
        for sink in self.sinks:
            inner = sink.inner if isinstance(sink, BackgroundSink) else sink
            if isinstance(inner, WebhookSink):
                out.append(inner)
        return out

    def failed_deliveries(self) -> list[DeadLetter]:
        """Packets a helpdesk webhook could not take, oldest first (kept to be re-sent)."""
        return [letter for box in self._outboxes() for letter in box.dead_letters()] + [
            letter for hook in self._webhooks() for letter in hook.dead_letters()
        ]

    def retry_failed(self) -> int:
        """Re-send failed deliveries once each; returns how many went through."""
        return sum(box.retry_dead() for box in self._outboxes()) + sum(
            hook.redeliver_dead_letters() for hook in self._webhooks()
        )

    def pending_deliveries(self) -> list[OutboxEntry]:
        """Deliveries to helpdesks not done yet (pending, in flight or dead), oldest first."""
        return [entry for box in self._outboxes() for entry in box.pending()]

    def wait_for_deliveries(
        self, handoff_ids: Sequence[str] | None = None, timeout: float = 10.0
    ) -> bool:
        """Wait until the outbox holds nothing pending for ``handoff_ids`` (default: any).

        Returns:
            True when each was delivered (or is dead); False when ``timeout`` ran out
            first: the rest stays in the outbox, for this or the next process.
        """
        deadline = time.monotonic() + timeout
        return all(
            box.wait(handoff_ids, max(0.0, deadline - time.monotonic())) for box in self._outboxes()
        )
