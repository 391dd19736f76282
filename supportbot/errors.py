"""The supportbot error tree: every error supportbot raises on purpose.

Every error says what went wrong *and what to do next*; shells (CLI, web UI) turn them
into messages, the Python API raises them, so a helpdesk integrator needs one
``except SupportBotError``::

    SupportBotError
    ├── ConfigError                 invalid or missing settings
    ├── ModelError                  a model cannot be found or loaded
    │   └── ModelPackError          a model pack cannot be downloaded, assembled or verified
    ├── StoreError                  the vector store cannot be opened or written
    │   ├── EmbeddingMismatchError  the index was built with another embedding model
    │   └── StoreLockedError        another ingest run holds the store
    ├── IngestError                 ingestion failed (a folder, a lock, the index)
    │   └── FileRejected            one file cannot be ingested (``path``, ``reason``, ``fix``)
    ├── InputError                  a customer message or id cannot be used as it is
    │   └── RateLimited             too many messages in one conversation (``retry_after``)
    ├── HandoffError                a hand-off operation cannot be done
    │   └── HandoffNotFound         no hand-off with that id
    ├── FaqError                    the agent answers file cannot be read or changed
    │   └── FaqEntryNotFound        no agent answer with that id
    └── AuthError                   an account cannot be created, changed or found
        └── SignInRefused           wrong name or password, or locked (``retry_after``)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuthError",
    "ConfigError",
    "EmbeddingMismatchError",
    "FaqEntryNotFound",
    "FaqError",
    "FileRejected",
    "HandoffError",
    "HandoffNotFound",
    "IngestError",
    "InputError",
    "ModelError",
    "ModelPackError",
    "RateLimited",
    "SignInRefused",
    "StoreError",
    "StoreLockedError",
    "SupportBotError",
]


class SupportBotError(Exception):
    """Base class of every error supportbot raises on purpose."""


class ConfigError(SupportBotError):
    """Settings are invalid or point at something that does not exist."""


class ModelError(SupportBotError):
    """A model (embedder or language model) cannot be found or loaded."""


class ModelPackError(ModelError):
    """A model pack cannot be downloaded, assembled or verified (``supportbot models``).

    Nothing half-written is left behind: a pack that does not hash to its pinned SHA-256
    is deleted, and an installed pack is only replaced by one that does.
    """


class StoreError(SupportBotError):
    """The vector store cannot be opened, read or written."""


class EmbeddingMismatchError(StoreError):
    """The index was built with a different embedding model or dimension."""


class StoreLockedError(StoreError):
    """Another process is writing to the same store."""


class IngestError(SupportBotError):
    """Ingestion cannot go on; the message names the file or folder and the fix."""


class FileRejected(IngestError):
    """One file cannot be ingested. ``reason`` is short; the message adds what to do.

    The run goes on with the other files; the report lists this one with its reason.
    """

    def __init__(self, path: Path | str, reason: str, fix: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.fix = fix
        super().__init__(f"{path}: {reason}." + (f" {fix}" if fix else ""))


class InputError(SupportBotError):
    """The customer's message (or an id) cannot be used as it is; the message says what to do."""


class RateLimited(InputError):
    """Too many messages in one conversation; ``retry_after`` says how long to wait.

    It is an :class:`InputError`, so shells that show input problems to the customer and
    carry on (the chat CLI, the web UI) treat it the same way.

    Example:
        >>> try: bot.ask("again?", conversation_id="c1")
        ... except RateLimited as exc: print(exc.retry_after)
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HandoffError(SupportBotError):
    """A hand-off cannot be created, found or moved to the asked status."""


class HandoffNotFound(HandoffError):
    """No hand-off has that id; list them with ``AgentDesk.handoffs()``."""


class FaqError(SupportBotError):
    """The managed FAQ of agents' answers cannot be read or changed (``supportbot gaps``).

    A change that fails leaves the file as it was: it is replaced whole, atomically.
    """


class FaqEntryNotFound(FaqError):
    """No agent answer has that id."""


class AuthError(SupportBotError):
    """An account cannot be created, changed or found; the message says what to do."""


class SignInRefused(AuthError):
    """A sign-in was refused; the message never says whether the account exists.

    ``retry_after`` is the seconds left of a lock after too many failures (0 when the
    name or password was simply wrong).
    """

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
