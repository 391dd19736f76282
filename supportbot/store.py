"""The vector store: Chroma, embedded (PersistentClient) or a server (HttpClient).

Two collections live side by side:

* ``<name>`` holds one record per chunk (and, for FAQ entries, one more record whose
  vector is the FAQ *question*, so a customer's question can match it directly);
* ``<name>-files`` is the manifest: one record per ingested file with its content hash.
  It is written *after* all of a file's chunks, which is what makes an interrupted run
  safe: a file whose manifest entry is missing or stale is simply processed again.

Embeddings are always passed explicitly; Chroma's own embedding function (which would
download a model) is never configured, and Chroma's telemetry is off.

Passages that address the assistant are stored with ``quarantined: true`` (see
``ingest/quarantine.py``); :meth:`ChromaStore.query` never returns them.

The embedded client keeps its own view of the vector index, which does not follow writes
made by another process: after an ingest elsewhere, a search misses the new passages and a
lookup of their ids fails ("Error finding id"). :meth:`ChromaStore.refresh`, called
before every search, compares the manifest's fingerprint (read fresh) with the one this
view was opened at and reopens the client when another process changed it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from supportbot.errors import EmbeddingMismatchError, StoreError
from supportbot.types import Chunk, FileRecord, Hit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

SCHEMA_VERSION = 2
"""2: passages carry ``quarantined`` (and ``root``); manifest entries ``rel`` and
``quarantined``. A version-1 index is upgraded in place by the next ingest run."""
MODEL_KEY = "supportbot_embedding_model"
DIM_KEY = "supportbot_embedding_dim"
SCHEMA_KEY = "supportbot_schema"

REQUIRED_METADATA = ("source", "title", "heading", "position", "kind", "record", "file_hash")
VISIBLE: dict[str, Any] = {"quarantined": {"$ne": True}}
"""The ``where`` filter that keeps quarantined passages out of search results."""

Scalar = str | int | float | bool

log = logging.getLogger(__name__)
_REOPEN = threading.Lock()
"""Chroma caches one client system per path and process: one reopen at a time."""


def chroma_settings() -> Any:
    """Chroma client settings with telemetry off (also set via the environment)."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def open_chroma_client(path: str | None = None, url: str | None = None) -> ClientAPI:
    """Open an embedded database at ``path``, a server at ``url``, or an in-memory one.

    Raises:
        StoreError: chromadb is missing or the database cannot be opened.
    """
    try:
        import chromadb
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError("chromadb is not installed: `pip install supportbot`.") from exc
    settings = chroma_settings()
    try:
        if url:
            parsed = urlparse(url)
            if not parsed.hostname:
                raise StoreError(
                    f"Chroma server URL {url!r} has no host; use e.g. http://localhost:8000."
                )
            return chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
        if path:
            os.makedirs(path, exist_ok=True)
            return _open_persistent(chromadb, path, settings)
        return chromadb.EphemeralClient(settings=settings)
    except StoreError:
        raise
    except Exception as exc:
        where = url or path or "memory"
        raise StoreError(
            f"Could not open the Chroma store at {where}: {exc}. Check the path is writable "
            "or the server is running."
        ) from exc


# When chromadb's Rust side fails to start (the database locked by another process's
# first open), its clean-up raises "object has no attribute 'bindings'" in place of the
# SQLite error; seen as one process in ~20 failing when three open a new folder at once.
_TRANSIENT = ("database is locked", "already exists", "has no attribute 'bindings'")


def _open_persistent(chromadb: Any, path: str, settings: Any, wait: float = 15.0) -> ClientAPI:
    """Open an embedded database, waiting out another process's open or schema setup.

    SQLite reports "database is locked" (or a half-applied migration) while another
    process is creating or closing the same database; that is worth a short wait, not a
    failure.
    """
    import time

    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return chromadb.PersistentClient(path=path, settings=settings)  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001 - chromadb raises its own and sqlite errors
            if not any(t in str(exc) for t in _TRANSIENT) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _metadata(chunk: Chunk, file_hash: str, record: str) -> dict[str, str | int | float | bool]:
    meta: dict[str, str | int | float | bool] = {
        "source": chunk.source,
        "title": chunk.title,
        "heading": chunk.heading,
        "section": chunk.section,
        "position": chunk.position,
        "kind": chunk.kind,
        "record": record,
        "file_hash": file_hash,
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.question:
        meta["question"] = chunk.question
    if chunk.author:
        meta["author"] = chunk.author
    return meta


def chunk_from_record(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    """Rebuild a :class:`Chunk` from what Chroma returns."""
    page = meta.get("page")
    return Chunk(
        id=chunk_id.removesuffix(":q"),
        text=text,
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        heading=str(meta.get("heading", "")),
        page=int(page) if page is not None else None,
        position=int(meta.get("position", 0)),
        kind="faq" if meta.get("kind") == "faq" else "doc",
        question=meta.get("question"),
        author=str(meta.get("author") or ""),
    )


class ChromaStore:
    """Chunks and their vectors in a Chroma collection, plus the file manifest.

    Example:
        >>> store = ChromaStore(open_chroma_client())        # in memory
        >>> store.ensure_model("hash-64", 64)
        >>> store.count()
        0
    """

    def __init__(self, client: ClientAPI, collection: str = "supportbot") -> None:
        self.client = client
        self.name = collection
        self._chunks: Collection | None = None
        self._files: Collection | None = None
        self._seen: tuple[Any, ...] | None = None  # the manifest this view was opened at
        self._own_write = False  # this object changed the manifest since the last look
        self._view = threading.Lock()

    # -- collections -------------------------------------------------------------------

    @property
    def chunks(self) -> Collection:
        """The chunk collection (created on first use)."""
        if self._chunks is None:
            if self._seen is None and self._persist_path() is not None:
                self._seen = self.fingerprint()  # what this view of the index will show
            self._chunks = self.client.get_or_create_collection(
                self.name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._chunks

    @property
    def files_collection(self) -> Collection:
        """The manifest collection: one record (with a dummy 1-d vector) per file."""
        if self._files is None:
            self._files = self.client.get_or_create_collection(
                f"{self.name}-files", embedding_function=None
            )
        return self._files

    def _persist_path(self) -> str | None:
        """The embedded database's folder; None for a server or an in-memory client."""
        try:
            settings = self.client.get_settings()
        except Exception:  # noqa: BLE001 - a client without settings: nothing to reopen
            return None
        return settings.persist_directory if settings.is_persistent else None

    def fingerprint(self) -> tuple[Any, ...]:
        """What the manifest says is indexed: (source, content hash, quarantined) per file.

        Read fresh from the database, so it changes as soon as any process ingests or
        removes a file.
        """
        return tuple(sorted((s, r.file_hash, r.quarantined) for s, r in self.files().items()))

    def refresh(self) -> bool:
        """Reopen the embedded client if another process changed the index since last look.

        Cheap (one manifest read) and safe to call before every search. Changes this
        object wrote itself (an in-process ingest) need no reopen, nor does a Chroma
        server, which always serves the current index.

        Returns:
            True when the client was reopened.
        """
        path = self._persist_path()
        if path is None:
            return False
        try:
            current = self.fingerprint()
        except Exception:  # noqa: BLE001 - the collection this view held was swapped away
            self._chunks = self._files = None  # (``supportbot tune`` replaced it): look
            self.reopen()  # again by name
            return True
        with self._view:
            seen, own = self._seen, self._own_write
            self._seen, self._own_write = current, False
            if seen is None or seen == current or own:
                return False
            self._reopen(path)
        log.info("the index changed in another process: reopened %s", self.name)
        return True

    def reopen(self) -> bool:
        """Open a fresh view of the embedded database (False for a server or in memory)."""
        path = self._persist_path()
        if path is None:
            return False
        current = self.fingerprint()
        with self._view:
            self._reopen(path)
            self._seen, self._own_write = current, False
        return True

    def _reopen(self, path: str) -> None:
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient

        with _REOPEN:
            # Chroma hands every client of one path the same cached system (and its stale
            # view); forget it so the new client gets its own. The old one is not
            # stopped: a thread may still be using it.
            SharedSystemClient._identifier_to_system.pop(path, None)
            self.client = _open_persistent(chromadb, path, chroma_settings())
            self._chunks = None
            self._files = None

    def schema(self) -> int:
        """The index's schema version (:data:`SCHEMA_VERSION` for a new, empty index)."""
        meta = self.chunks.metadata or {}
        if MODEL_KEY not in meta:
            return SCHEMA_VERSION
        return int(meta.get(SCHEMA_KEY, 1))

    def set_schema(self, version: int = SCHEMA_VERSION) -> None:
        """Record that the index has been brought up to ``version``."""
        meta = dict(self.chunks.metadata or {})
        meta[SCHEMA_KEY] = version
        self.chunks.modify(metadata=meta)

    def stamp(self) -> tuple[str, int] | None:
        """The embedding model name and dimension the index was built with, if any."""
        meta = self.chunks.metadata or {}
        if MODEL_KEY not in meta:
            return None
        return str(meta[MODEL_KEY]), int(meta[DIM_KEY])

    def ensure_model(self, model: str, dimension: int, rebuild: bool = False) -> bool:
        """Check (or set) the embedding model stamped on the index.

        Args:
            model: name of the embedder about to write or query.
            dimension: its vector length.
            rebuild: drop the whole index if it was built with another model.

        Returns:
            True if the index was dropped and must be rebuilt from scratch.

        Raises:
            EmbeddingMismatchError: the stamp differs and ``rebuild`` is false.
        """
        stamp = self.stamp()
        if stamp == (model, dimension):
            if rebuild:
                self.drop()
                self._write_stamp(model, dimension)
                return True
            return False
        if stamp is None and self.chunks.count() == 0:
            self._write_stamp(model, dimension)
            return False
        if not rebuild:
            built = f"{stamp[0]} (dimension {stamp[1]})" if stamp else "an unknown model"
            raise EmbeddingMismatchError(
                f"The index '{self.name}' was built with {built}, but the configured embedding "
                f"model is {model} (dimension {dimension}). Vectors from different models "
                "cannot be compared. Re-run ingest with --rebuild to re-embed everything with "
                "the new model, or set SUPPORTBOT_EMBEDDING__MODEL back to the old one. If "
                "`supportbot tune` (or `tune --revert`) re-embedded the index, restart this "
                "process: it still holds the model from before."
            )
        self.drop()
        self._write_stamp(model, dimension)
        return True

    def get_meta(self, key: str) -> str | None:
        """A value stored with the index (e.g. its relevance model), read fresh.

        Read from the server each time, so a model another process stored is seen.
        """
        try:
            meta = self.client.get_collection(self.name).metadata or {}
        except Exception:  # noqa: BLE001 - no collection yet: nothing stored
            return None
        value = meta.get(key)
        return str(value) if value is not None else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with None, remove) a value with the index; other keys are kept."""
        meta = {k: v for k, v in dict(self.chunks.metadata or {}).items() if k != key}
        if value is not None:
            meta[key] = value
        self.chunks.modify(metadata=meta)

    def _write_stamp(self, model: str, dimension: int) -> None:
        self.chunks.modify(
            metadata={MODEL_KEY: model, DIM_KEY: dimension, SCHEMA_KEY: SCHEMA_VERSION}
        )

    def drop(self) -> None:
        """Delete both collections (used by --rebuild)."""
        for name in (self.name, f"{self.name}-files"):
            try:
                self.client.delete_collection(name)
            except Exception:  # noqa: BLE001 - absent collections are fine to "drop"
                pass
        self._chunks = None
        self._files = None
        self._own_write = True

    def replace_with(self, staged: ChromaStore) -> None:
        """Make ``staged``'s collections this index's, and drop the ones they replace.

        ``supportbot tune`` builds a whole re-embedded copy of the index aside and swaps
        it in here, so readers see the old index or the new one, never a half-built
        one. Renames only: the old collections are renamed out of the way, the staged
        ones take their names, then the old ones are deleted. A process killed in
        between leaves ``<name>-old`` collections that :meth:`undo_replace` puts back.
        """
        names = [(self.name, staged.name), (f"{self.name}-files", f"{staged.name}-files")]
        for live, _ in names:
            self.client.get_collection(live).modify(name=f"{live}-old")
        for live, new in names:
            self.client.get_collection(new).modify(name=live)
        for live, _ in names:
            self.client.delete_collection(f"{live}-old")
        self._chunks = self._files = None
        staged._chunks = staged._files = None
        self._own_write = True

    def undo_replace(self) -> bool:
        """Put back collections a :meth:`replace_with` interrupted midway had set aside.

        Returns:
            True when something was put back or cleaned up.
        """
        existing = {c.name for c in self.client.list_collections()}
        changed = False
        for live in (self.name, f"{self.name}-files"):
            old = f"{live}-old"
            if old not in existing:
                continue
            if live in existing:  # the swap got as far as the new index: keep it
                self.client.delete_collection(old)
            else:
                self.client.get_collection(old).modify(name=live)
            changed = True
        self._chunks = self._files = None
        return changed

    @property
    def max_batch(self) -> int:
        """Largest write Chroma accepts in one call."""
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # noqa: BLE001 - older servers lack the call
            return 5000

    # -- chunks ------------------------------------------------------------------------

    def upsert(
        self,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        file_hashes: dict[str, str],
        question_vectors: dict[str, Sequence[float]] | None = None,
        extra: Mapping[str, Mapping[str, Scalar]] | None = None,
    ) -> None:
        """Write chunks with their vectors; FAQ chunks also get a question record.

        Args:
            chunks: the chunks to write.
            vectors: one passage vector per chunk.
            file_hashes: content hash of each chunk's source file, stored for provenance.
            question_vectors: vector of the FAQ question, by chunk id.
            extra: more metadata by chunk id (``quarantined``, ``root``), on both records.
        """
        ids: list[str] = []
        embs: list[Sequence[float]] = []
        docs: list[str] = []
        metas: list[dict[str, str | int | float | bool]] = []
        question_vectors = question_vectors or {}
        extra = extra or {}
        for chunk, vec in zip(chunks, vectors, strict=True):
            fh = file_hashes[chunk.source]
            more = extra.get(chunk.id, {})
            ids.append(chunk.id)
            embs.append(vec)
            docs.append(chunk.text)
            metas.append({**_metadata(chunk, fh, "passage"), **more})
            if chunk.id in question_vectors:
                ids.append(f"{chunk.id}:q")
                embs.append(question_vectors[chunk.id])
                docs.append(chunk.text)
                metas.append({**_metadata(chunk, fh, "faq_question"), **more})
        step = self.max_batch
        for start in range(0, len(ids), step):
            end = start + step
            self.chunks.upsert(
                ids=ids[start:end],
                embeddings=[list(map(float, e)) for e in embs[start:end]],  # type: ignore[arg-type]
                documents=docs[start:end],
                metadatas=metas[start:end],  # type: ignore[arg-type]
            )

    def update_positions(self, chunks: Sequence[Chunk]) -> None:
        """Refresh metadata of chunks whose text did not change but whose place did."""
        ids = [c.id for c in chunks]
        if not ids:
            return
        got = self.chunks.get(ids=ids, include=["metadatas"])
        by_id = {c.id: c for c in chunks}
        new_metas = []
        for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            merged = dict(meta or {})
            merged["position"] = by_id[cid].position
            merged["heading"] = by_id[cid].heading
            merged["section"] = by_id[cid].section
            new_metas.append(merged)
        if got["ids"]:
            self.chunks.update(ids=got["ids"], metadatas=new_metas)  # type: ignore[arg-type]

    def update_metadata(self, updates: Mapping[str, Mapping[str, Scalar]]) -> None:
        """Merge fields into the metadata of stored chunks (and their FAQ question records)."""
        ids = [i for cid in updates for i in (cid, f"{cid}:q")]
        for start in range(0, len(ids), 1000):
            got = self.chunks.get(ids=ids[start : start + 1000], include=["metadatas"])
            metas = [
                {**dict(meta or {}), **updates[rid.removesuffix(":q")]}
                for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
            ]
            if got["ids"]:
                self.chunks.update(ids=got["ids"], metadatas=metas)  # type: ignore[arg-type]

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors of the given record ids.

        A lookup the embedded client's view cannot serve (ids another process just
        added: "Error finding id") is tried once more on a reopened client.
        """
        if not ids:
            return {}
        try:
            got = self.chunks.get(ids=list(ids), include=["embeddings"])
        except Exception as exc:  # noqa: BLE001 - chromadb's InternalError, among others
            if not self.reopen():
                raise
            log.info("vector lookup failed (%s); retried on a reopened client", exc)
            got = self.chunks.get(ids=list(ids), include=["embeddings"])
        embs = got["embeddings"]
        if embs is None:
            return {}
        return {cid: [float(x) for x in vec] for cid, vec in zip(got["ids"], embs, strict=True)}

    def ids_for_source(self, source: str) -> set[str]:
        """Ids of the passage records of one source file."""
        got = self.chunks.get(
            where={"$and": [{"source": source}, {"record": "passage"}]}, include=[]
        )
        return set(got["ids"])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored."""
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            got = self.chunks.get(ids=list(ids[start : start + 1000]), include=[])
            found.update(got["ids"])
        return found

    def delete_ids(self, ids: Sequence[str]) -> None:
        """Delete chunks (and their FAQ question records) by id."""
        all_ids = [i for cid in ids for i in (cid, f"{cid}:q")]
        for start in range(0, len(all_ids), self.max_batch):
            self.chunks.delete(ids=all_ids[start : start + self.max_batch])

    def delete_source(self, source: str) -> int:
        """Delete every record of a source file; returns how many passages went."""
        n = len(self.ids_for_source(source))
        self.chunks.delete(where={"source": source})
        return n

    def sources(self) -> dict[str, int]:
        """Passage counts per source, read from the chunks themselves."""
        counts: dict[str, int] = {}
        for _, _, meta, _ in self.iter_records(include_embeddings=False):
            if meta.get("record") == "passage":
                src = str(meta.get("source"))
                counts[src] = counts.get(src, 0) + 1
        return counts

    def count(self) -> int:
        """Number of passages (FAQ question records are not counted)."""
        return len(self.chunks.get(where={"record": "passage"}, include=[])["ids"])

    def iter_records(
        self, include_embeddings: bool = True, page: int = 1000
    ) -> Iterator[tuple[str, str, dict[str, Any], list[float] | None]]:
        """Every record as (id, document, metadata, embedding), read a page at a time."""
        include: list[str] = ["documents", "metadatas"]
        if include_embeddings:
            include.append("embeddings")
        offset = 0
        while True:
            got = self.chunks.get(include=include, limit=page, offset=offset)  # type: ignore[arg-type]
            ids = got["ids"]
            if not ids:
                return
            docs = got["documents"] or [""] * len(ids)
            metas = got["metadatas"] or [{}] * len(ids)
            embs = got["embeddings"] if include_embeddings else None
            for i, cid in enumerate(ids):
                vec = [float(x) for x in embs[i]] if embs is not None else None
                yield cid, docs[i] or "", dict(metas[i] or {}), vec
            offset += len(ids)

    def query(
        self, vector: Sequence[float], k: int = 5, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest records to ``vector``; FAQ question and answer records are merged.

        The score is cosine similarity (1 - cosine distance), clipped to [0, 1].
        Quarantined passages are never returned.
        """
        total = self.chunks.count()
        if total == 0:
            return []
        res = self.chunks.query(
            query_embeddings=[list(map(float, vector))],  # type: ignore[arg-type]
            n_results=min(total, k * 2),
            where={"$and": [VISIBLE, where]} if where else VISIBLE,
            include=["documents", "metadatas", "distances"],
        )
        best: dict[str, tuple[Chunk, float, str]] = {}
        question_score: dict[str, float] = {}
        ids = res["ids"][0]
        docs = (res["documents"] or [[]])[0]
        metas = (res["metadatas"] or [[]])[0]
        dists = (res["distances"] or [[]])[0]
        for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True):
            if (meta or {}).get("quarantined") is True:
                continue  # belt and braces: a server whose filter treats a missing key otherwise
            chunk = chunk_from_record(cid, doc or "", dict(meta or {}))
            score = max(0.0, min(1.0, 1.0 - float(dist)))
            record = str((meta or {}).get("record", "passage"))
            if record == "faq_question":
                question_score[chunk.id] = max(score, question_score.get(chunk.id, 0.0))
            if chunk.id not in best:
                best[chunk.id] = (chunk, score, record)
        hits: list[Hit] = []
        for chunk, score, record in list(best.values())[:k]:
            extra = (
                {"faq_question_cosine": question_score[chunk.id]}
                if chunk.id in question_score
                else {}
            )
            hits.append(
                Hit(
                    chunk=chunk,
                    score=score,
                    rank=len(hits) + 1,
                    matched="faq_question" if record == "faq_question" else "passage",
                    extra=extra,
                )
            )
        return hits

    # -- manifest ----------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        """The manifest: what each ingested file looked like when it was indexed."""
        got = self.files_collection.get(include=["metadatas"])
        out: dict[str, FileRecord] = {}
        for source, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            m: dict[str, Any] = dict(meta or {})
            out[source] = FileRecord(
                source=source,
                file_hash=str(m.get("file_hash", "")),
                chunk_count=int(m.get("chunk_count", 0)),
                ingested_at=str(m.get("ingested_at", "")),
                size=int(m.get("size", 0)),
                root=str(m.get("root", "")),
                rel=str(m.get("rel", "") or source),
                quarantined=int(m.get("quarantined", 0)),
            )
        return out

    def put_file(self, record: FileRecord) -> None:
        """Record a file as completely indexed (the last write for that file)."""
        self._own_write = True
        self.files_collection.upsert(
            ids=[record.source],
            embeddings=[[1.0]],  # type: ignore[arg-type]
            metadatas=[
                {
                    "file_hash": record.file_hash,
                    "chunk_count": record.chunk_count,
                    "ingested_at": record.ingested_at,
                    "size": record.size,
                    "root": record.root,
                    "rel": record.rel or record.source,
                    "quarantined": record.quarantined,
                }
            ],
        )

    def delete_file(self, source: str) -> None:
        """Forget a file in the manifest."""
        self._own_write = True
        self.files_collection.delete(ids=[source])
