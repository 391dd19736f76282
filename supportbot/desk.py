"""The AgentDesk facade: the agent side of hand-offs, for the console and helpdesk code.

The bot hands conversations over (:meth:`supportbot.bot.SupportBot.escalate` or its own
policy); agents work them here: list the queue, claim one, reply into the customer's
conversation, resolve it or hand it back to the bot, see today's activity and re-send
deliveries a helpdesk webhook failed to take. It shares the hand-off queue and the
conversation store with the bot (one of each per process, built by
:mod:`supportbot.factory`), so what an agent does is what the customer sees. Claims,
replies, resolutions and hand-backs are written to the audit log when one is given
(:mod:`supportbot.audit`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from supportbot.analytics import Activity, activity, start_of_today
from supportbot.config import Settings
from supportbot.conversation import ConversationStore, Turn
from supportbot.errors import HandoffNotFound, InputError
from supportbot.handoff.dispatch import Dispatcher
from supportbot.handoff.packet import HandoffPacket, Status
from supportbot.handoff.queue import DeadLetter, OutboxEntry, SqliteHandoffQueue
from supportbot.safety.hygiene import check_id, check_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from supportbot.audit import AuditLog

__all__ = ["AgentDesk"]


class AgentDesk:
    """Hand-offs as agents work them: queue, claim, reply, resolve, hand back.

    Example:
        >>> desk = AgentDesk.from_settings()
        >>> packet = desk.handoffs("open")[0]
        >>> desk.claim(packet.id, "sam")
        >>> desk.reply(packet.id, "sam", "Hi, I'm Sam. Let me check your order.")
        >>> desk.resolve(packet.id, "sam")
    """

    def __init__(
        self,
        *,
        settings: Settings,
        handoffs: SqliteHandoffQueue,
        conversations: ConversationStore,
        dispatcher: Dispatcher,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self._handoffs = handoffs
        self._conversations = conversations
        self._dispatcher = dispatcher
        self._audit = audit

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        on_handoff: Callable[[HandoffPacket], None] | None = None,
    ) -> AgentDesk:
        """Build every part from settings (see :func:`supportbot.factory.build`)."""
        from supportbot.factory import build

        return build(settings, on_handoff).desk

    def handoffs(self, status: Status | None = None) -> list[HandoffPacket]:
        """Hand-off packets, highest priority and newest first; all statuses when None."""
        return self._handoffs.list(status)

    def handoff(self, handoff_id: str) -> HandoffPacket:
        """One hand-off, as it is now.

        Raises:
            HandoffNotFound: no hand-off has that id.
        """
        packet = self._handoffs.get(check_id(handoff_id, "The hand-off id"))
        if packet is None:
            raise HandoffNotFound(
                f"No hand-off with id {handoff_id!r}; list them with desk.handoffs()."
            )
        return packet

    def conversation(self, conversation_id: str, since: float | None = None) -> list[Turn]:
        """The raw turns of a conversation (newer than ``since``, a Unix time, if given).

        The packet holds the redacted transcript up to the hand-off; this is what the
        customer wrote since, for the agent who now owns the conversation.
        """
        turns = self._conversations.history(check_id(conversation_id))
        return turns if since is None else [t for t in turns if t.ts > since]

    def claim(self, handoff_id: str, agent: str) -> HandoffPacket:
        """An agent takes the conversation."""
        packet = self._set_status(handoff_id, "claimed", self._agent(agent))
        self._record(agent, "claim", packet)
        return packet

    def reply(self, handoff_id: str, agent: str, text: str) -> None:
        """Send an agent's message into the customer's conversation.

        Raises:
            InputError: the message is empty.
            HandoffNotFound: no hand-off has that id.
        """
        if not check_text(text, "The agent's reply").strip():
            raise InputError("The agent's reply is empty; write a message to send.")
        packet = self.handoff(handoff_id)
        self._conversations.append(
            packet.conversation_id, Turn("assistant", text, meta={"agent": self._agent(agent)})
        )
        self._record(agent, "reply", packet, f"{len(text)} characters")

    def resolve(self, handoff_id: str, agent: str | None = None) -> HandoffPacket:
        """Close the hand-off; the next message from the customer is answered by the bot."""
        packet = self._set_status(handoff_id, "resolved", agent and self._agent(agent))
        self._record(agent, "resolve", packet)
        return packet

    def hand_back(self, handoff_id: str, agent: str | None = None) -> HandoffPacket:
        """Give the conversation back to the bot, which then answers again.

        The reasons that caused this hand-off are suppressed for the customer's next
        message (loop prevention); anything new still escalates.
        """
        packet = self._set_status(handoff_id, "handed_back", agent and self._agent(agent))
        self._conversations.append(
            packet.conversation_id,
            Turn(
                "assistant",
                self.settings.messages.handed_back,
                meta={"handed_back": list(packet.reasons), "agent": agent or ""},
            ),
        )
        self._record(agent, "hand_back", packet)
        return packet

    def activity(self, since: float | None = None) -> Activity:
        """What the bot and the agents handled since ``since`` (default: today, local time)."""
        start = start_of_today(time.time()) if since is None else since
        return activity(self._conversations, self._handoffs, start)

    def failed_deliveries(self) -> list[DeadLetter]:
        """Packets a helpdesk webhook could not take, oldest first."""
        return self._dispatcher.failed_deliveries()

    def retry_failed(self) -> int:
        """Re-send failed deliveries once each; returns how many went through."""
        return self._dispatcher.retry_failed()

    def pending_deliveries(self) -> list[OutboxEntry]:
        """Deliveries to the helpdesk not done yet (pending, in flight, dead), oldest first."""
        return self._dispatcher.pending_deliveries()

    def wait_for_deliveries(
        self, handoff_ids: list[str] | None = None, timeout: float = 10.0
    ) -> bool:
        """Wait up to ``timeout`` seconds for the outbox to deliver (default: everything).

        Returns False when some delivery is still pending; it stays in the outbox.
        """
        return self._dispatcher.wait_for_deliveries(handoff_ids, timeout)

    @staticmethod
    def _agent(agent: str) -> str:
        if not check_text(agent, "The agent's name").strip():
            raise InputError("The agent's name is empty; say who is acting on the hand-off.")
        return agent.strip()

    def _record(
        self, agent: str | None, action: str, packet: HandoffPacket, detail: str = ""
    ) -> None:
        if self._audit is not None:
            note = f"conversation {packet.conversation_id}" + (f", {detail}" if detail else "")
            self._audit.record((agent or "").strip() or "unknown", action, packet.id, note)

    def _set_status(self, handoff_id: str, status: Status, agent: str | None) -> HandoffPacket:
        self.handoff(handoff_id)
        return self._handoffs.update_status(handoff_id, status, agent)
