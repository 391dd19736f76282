"""supportbot: a customer-support chatbot on a small local language model.

Importing this package is cheap: heavy libraries (torch, chromadb) load only when a
model or store is first used.
"""

from supportbot.api import Citation, Reply, SupportBot, Timings
from supportbot.config import Settings, load_settings
from supportbot.errors import (
    ConfigError,
    EmbeddingMismatchError,
    IngestError,
    ModelError,
    StoreError,
    StoreLockedError,
    SupportBotError,
)
from supportbot.escalate import Decision, Evidence, Reason
from supportbot.handoff import HandoffPacket
from supportbot.hygiene import InputError
from supportbot.ratelimit import RateLimited
from supportbot.types import Chunk, FileRecord, Hit

__all__ = [
    "Chunk",
    "Citation",
    "ConfigError",
    "Decision",
    "EmbeddingMismatchError",
    "Evidence",
    "FileRecord",
    "HandoffPacket",
    "Hit",
    "IngestError",
    "InputError",
    "ModelError",
    "RateLimited",
    "Reason",
    "Reply",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "SupportBot",
    "SupportBotError",
    "Timings",
    "load_settings",
]
