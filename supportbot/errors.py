"""The supportbot error tree.

Every error says what went wrong *and what to do next*; shells (CLI, web UI) turn them
into messages, the Python API raises them::

    SupportBotError
    ├── ConfigError          invalid or missing settings
    ├── ModelError           a model cannot be found or loaded
    ├── StoreError           the vector store cannot be opened or written
    │   ├── EmbeddingMismatchError  the index was built with another embedding model
    │   └── StoreLockedError        another ingest run holds the store
    └── IngestError          a file cannot be ingested (see ingest.errors for details)
"""

from __future__ import annotations


class SupportBotError(Exception):
    """Base class of every error supportbot raises on purpose."""


class ConfigError(SupportBotError):
    """Settings are invalid or point at something that does not exist."""


class ModelError(SupportBotError):
    """A model (embedder or language model) cannot be found or loaded."""


class StoreError(SupportBotError):
    """The vector store cannot be opened, read or written."""


class EmbeddingMismatchError(StoreError):
    """The index was built with a different embedding model or dimension."""


class StoreLockedError(StoreError):
    """Another process is writing to the same store."""


class IngestError(SupportBotError):
    """A file cannot be ingested; the message names the file and the fix."""
