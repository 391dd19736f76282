"""supportbot: a customer-support chatbot on a small local language model.

Two facades over one set of parts: :class:`SupportBot` answers customers,
:class:`AgentDesk` lets agents work the conversations it hands over. :func:`build`
makes both from settings. Importing this package is cheap: heavy libraries (torch,
chromadb) load only when a model or store is first used.
"""

from supportbot.bot import SupportBot
from supportbot.config import Settings, load_settings
from supportbot.desk import AgentDesk
from supportbot.errors import (
    ConfigError,
    EmbeddingMismatchError,
    FileRejected,
    HandoffError,
    HandoffNotFound,
    IngestError,
    InputError,
    ModelError,
    RateLimited,
    StoreError,
    StoreLockedError,
    SupportBotError,
)
from supportbot.escalation import Decision, Evidence, Reason
from supportbot.factory import Services, build
from supportbot.handoff import HandoffPacket
from supportbot.types import Chunk, Citation, FileRecord, Hit, Reply, Timings, Trace

__all__ = [
    "AgentDesk",
    "Chunk",
    "Citation",
    "ConfigError",
    "Decision",
    "EmbeddingMismatchError",
    "Evidence",
    "FileRecord",
    "FileRejected",
    "HandoffError",
    "HandoffNotFound",
    "HandoffPacket",
    "Hit",
    "IngestError",
    "InputError",
    "ModelError",
    "RateLimited",
    "Reason",
    "Reply",
    "Services",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "SupportBot",
    "SupportBotError",
    "Timings",
    "Trace",
    "build",
    "load_settings",
]
