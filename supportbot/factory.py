"""The composition root: the only place that turns settings into backends.

Everything else receives its parts by constructor injection, which keeps tests free to
pass fakes and keeps backend choice in one readable ``match``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supportbot.config import Settings
from supportbot.conversation import (
    ConversationStore,
    MemoryConversationStore,
    SqliteConversationStore,
)
from supportbot.embed import Embedder, HashEmbedder, SentenceTransformerEmbedder
from supportbot.errors import ConfigError
from supportbot.generate import Generator, LlamaCppGenerator, OpenAIGenerator, ScriptedGenerator
from supportbot.store import ChromaStore, open_chroma_client

if TYPE_CHECKING:
    from collections.abc import Callable

    from supportbot.api import SupportBot
    from supportbot.handoff import HandoffPacket


def build_embedder(settings: Settings) -> Embedder:
    """The embedder named by ``settings.embedding.backend``."""
    cfg = settings.embedding
    match cfg.backend:
        case "sentence-transformers":
            return SentenceTransformerEmbedder(
                cfg.model, batch_size=cfg.batch_size, device=cfg.device
            )
        case "hash":
            return HashEmbedder(cfg.hash_dimension)
    raise AssertionError(f"unhandled embedding backend {cfg.backend!r}")  # pragma: no cover


def build_store(settings: Settings) -> ChromaStore:
    """A Chroma server when ``store.url`` is set, else the embedded database on disk."""
    if settings.store.url:
        client = open_chroma_client(url=settings.store.url)
    else:
        client = open_chroma_client(path=str(settings.store_path))
    return ChromaStore(client, settings.store.collection)


def build_generator(settings: Settings) -> Generator:
    """The answering model named by ``settings.llm.backend``."""
    llm = settings.llm
    match llm.backend:
        case "llama-cpp":
            return LlamaCppGenerator(
                llm.model_path,
                n_ctx=llm.n_ctx,
                n_threads=llm.n_threads,
                style=llm.prompt_style,
                temperature=llm.temperature,
                repeat_penalty=llm.repeat_penalty,
            )
        case "openai":
            if not llm.base_url:
                raise ConfigError(
                    "SUPPORTBOT_LLM__BACKEND=openai needs SUPPORTBOT_LLM__BASE_URL, e.g. "
                    "http://localhost:8080/v1."
                )
            style = "completion" if llm.prompt_style == "auto" else llm.prompt_style
            return OpenAIGenerator(
                llm.base_url,
                model=llm.api_model,
                api_key=llm.api_key,
                style=style,
                timeout=llm.timeout,
                temperature=llm.temperature,
                repeat_penalty=llm.repeat_penalty,
            )
        case "scripted":
            return ScriptedGenerator()
    raise AssertionError(f"unhandled llm backend {llm.backend!r}")  # pragma: no cover


def build_conversations(settings: Settings) -> ConversationStore:
    """In-memory or SQLite conversation storage."""
    if settings.conversation.backend == "sqlite":
        return SqliteConversationStore(settings.conversations_path)
    return MemoryConversationStore()


def build_bot(
    settings: Settings, on_handoff: Callable[[HandoffPacket], None] | None = None
) -> SupportBot:
    """A :class:`SupportBot` with every part chosen by ``settings``.

    ``on_handoff`` is the Python callback of the 'callback' hand-off sink.
    """
    from supportbot.api import SupportBot

    return SupportBot(
        build_embedder(settings),
        build_store(settings),
        build_generator(settings),
        build_conversations(settings),
        settings,
        on_handoff=on_handoff,
    )
