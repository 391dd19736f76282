"""Remove one document from the index (the knowledge-base page's "Remove" button).

Takes the same single-writer lock as an ingest run, so a removal never interleaves with
a run writing the same file, and deletes the chunks before the manifest entry:
interrupted half-way, the next ingest run sees a manifest entry without chunks and
re-indexes or prunes it.
"""

from __future__ import annotations

from ingest.pipeline import writer_lock
from supportbot.config import Settings
from supportbot.errors import IngestError
from supportbot.store import ChromaStore

__all__ = ["remove_document"]


def remove_document(source: str, settings: Settings, store: ChromaStore) -> int:
    """Delete ``source``'s chunks and manifest entry; returns the number of chunks removed.

    The file itself is left alone: if it is still in a folder that gets ingested again,
    it comes back. Delete it there too to remove it for good.

    Raises:
        StoreLockedError: an ingest run holds the index for longer than the lock timeout.
        IngestError: ``source`` is not in the index.
    """
    with writer_lock(settings):
        if source not in store.files() and not store.ids_for_source(source):
            raise IngestError(f"{source} is not in the index (already removed?); reload the page.")
        removed = store.delete_source(source)
        store.delete_file(source)
        return removed
