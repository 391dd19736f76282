"""Hand-off to a human agent: the packet, the queue that records it, the sinks that deliver it.

``packet`` builds what an agent reads (redacted transcript, summary, reasons, passages,
draft), ``queue`` is the local system of record (status, dead letters), ``sinks`` deliver
packets elsewhere (helpdesk webhook, Python callback), and ``dispatch`` ties the three
together for the bot and the agent desk.
"""

from supportbot.handoff.packet import HandoffPacket

__all__ = ["HandoffPacket"]
