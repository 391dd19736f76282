"""Retrieval: a question in, scored passages out.

Today this is dense search over the Chroma index; the answering issue adds the keyword
side and fusion behind the same ``search`` call.
"""

from __future__ import annotations

from supportbot.embed import Embedder
from supportbot.errors import StoreError
from supportbot.store import ChromaStore
from supportbot.types import Hit


class DenseRetriever:
    """Embeds the question and asks the vector store for its nearest passages.

    Example:
        >>> retriever = DenseRetriever(embedder, store)
        >>> [h.chunk.source for h in retriever.search("reset the router", k=3)]
    """

    def __init__(self, embedder: Embedder, store: ChromaStore) -> None:
        self.embedder = embedder
        self.store = store

    def check_index(self) -> None:
        """Refuse to search an index built with another embedding model.

        Raises:
            StoreError: the index is empty or was built with a different model.
        """
        stamp = self.store.stamp()
        if stamp is None:
            raise StoreError(
                f"The index '{self.store.name}' is empty. Run `supportbot ingest PATH` first "
                "(e.g. `supportbot ingest kb/docs`)."
            )
        self.store.ensure_model(self.embedder.name, self.embedder.dimension)

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages closest to ``question``, best first, scored in [0, 1]."""
        self.check_index()
        return self.store.query(self.embedder.embed_query(question), k=k)
