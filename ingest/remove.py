"""Remove one document from the index (the knowledge-base page's "Remove" button).

Takes the same lock as an ingest run, so a removal never interleaves with a run writing
the same file, and deletes the chunks before the manifest entry: interrupted half-way,
the next ingest run sees a manifest entry without chunks and re-indexes or prunes it.
"""

from __future__ import annotations

from filelock import FileLock, Timeout

from ingest.pipeline import _lock_path
from supportbot.config import Settings
from supportbot.errors import StoreLockedError
from supportbot.store import ChromaStore

__all__ = ["remove_document"]


def remove_document(source: str, settings: Settings, store: ChromaStore) -> int:
    """Delete ``source``'s chunks and manifest entry; returns the number of chunks removed.

    The file itself is left alone: if it is still in a folder that gets ingested again,
    it comes back. Delete it there too to remove it for good.

    Raises:
        StoreLockedError: an ingest run holds the index for longer than the lock timeout.
        KeyError: ``source`` is not in the index.
    """
    lock = FileLock(str(_lock_path(settings)))
    try:
        lock.acquire(timeout=settings.ingest.lock_timeout)
    except Timeout as exc:
        raise StoreLockedError(
            f"An ingest run is writing to the index (lock file {lock.lock_file}); "
            "try again when it has finished."
        ) from exc
    try:
        if source not in store.files() and not store.ids_for_source(source):
            raise KeyError(f"{source!r} is not in the index")
        removed = store.delete_source(source)
        store.delete_file(source)
        return removed
    finally:
        lock.release()
