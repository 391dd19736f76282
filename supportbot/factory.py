"""The composition root: the only place that turns settings into backends.

Everything else receives its parts by constructor injection, which keeps tests free to
pass fakes and keeps backend choice in one readable ``match``.
"""

from __future__ import annotations

from supportbot.config import Settings
from supportbot.embed import Embedder, HashEmbedder, SentenceTransformerEmbedder
from supportbot.store import ChromaStore, open_chroma_client


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
