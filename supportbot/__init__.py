"""supportbot: a customer-support chatbot on a small local language model.

Importing this package is cheap: heavy libraries (torch, chromadb) load only when a
model or store is first used.
"""

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
from supportbot.types import Chunk, FileRecord, Hit

__all__ = [
    "Chunk",
    "ConfigError",
    "EmbeddingMismatchError",
    "FileRecord",
    "Hit",
    "IngestError",
    "ModelError",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "SupportBotError",
    "load_settings",
]
