"""The ingestion run: discover files, compare with the manifest, embed what changed.

Consistency under interruption (kill -9 at any point) comes from the write order for
each file:

1. a *pending* manifest entry (empty hash, with the file's root) is written first;
2. new chunks are upserted (ids are content hashes, so re-writing is harmless);
3. chunks of the old version that are gone are deleted;
4. the manifest entry is completed with the file's hash.

A run that dies anywhere leaves at worst a pending entry; the next run sees the hash
mismatch and redoes that file, or prunes it if the file has since been deleted.
Embedding is batched across files so small files do not starve the model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from ingest.isolate import Parsed, ParseWorker, parse_file
from ingest.load import SUPPORTED_SUFFIXES
from supportbot.config import Settings
from supportbot.embed import Embedder
from supportbot.errors import FileRejected, StoreLockedError
from supportbot.factory import build_embedder, build_store
from supportbot.store import ChromaStore
from supportbot.types import Chunk, FileRecord

Status = Literal["added", "updated", "unchanged", "removed", "failed", "skipped"]


@dataclass
class FileResult:
    """What happened to one file in a run."""

    source: str
    path: str
    status: Status
    chunks: int = 0
    embedded: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    """The outcome of :func:`run_ingest`, for the summary table and ``--json``."""

    files: list[FileResult] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    rebuilt: bool = False
    store: str = ""
    warnings: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """Number of files with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileResult]:
        """Files that could not be ingested."""
        return [f for f in self.files if f.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    @property
    def chunks_total(self) -> int:
        """Chunks of the files seen in this run (not removed or failed)."""
        return sum(f.chunks for f in self.files if f.status in ("added", "updated", "unchanged"))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "summary": {
                s: self.count(s)
                for s in ("added", "updated", "unchanged", "removed", "failed", "skipped")
            }
            | {
                "chunks_embedded": self.chunks_embedded,
                "chunks_deleted": self.chunks_deleted,
                "chunks_total": self.chunks_total,
                "seconds": round(self.seconds, 3),
                "dry_run": self.dry_run,
                "rebuilt": self.rebuilt,
                "store": self.store,
            },
            "warnings": self.warnings,
            "files": [asdict(f) for f in self.files],
        }


class Progress:
    """Callbacks a shell may implement to show progress; the default shows nothing."""

    def start(self, total_files: int) -> None:
        """Called once the files to look at are known."""

    def file_done(self, result: FileResult) -> None:
        """Called when a file is finished (any status)."""

    def chunks_embedded(self, n: int) -> None:
        """Called after each embedded batch."""


@dataclass
class _Source:
    path: Path
    source: str
    root: str
    prunable: bool


@dataclass
class _Pending:
    """A file whose chunks are on their way into the store."""

    result: FileResult
    record: FileRecord
    chunks: list[Chunk]
    reused: list[Chunk]
    stale: set[str]
    remaining: int


def file_sha256(path: Path) -> str:
    """Hash of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def discover(paths: Sequence[Path]) -> tuple[list[_Source], list[FileResult]]:
    """Expand folders into supported files; report paths that do not exist.

    A file's ``source`` name is its path relative to the folder given (or its own name
    when a file is given), so an index does not depend on the working directory.
    """
    found: list[_Source] = []
    problems: list[FileResult] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            root = path.resolve()
            for f in sorted(root.rglob("*")):
                rel = f.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or not f.is_file():
                    continue
                if f.suffix.lower() not in SUPPORTED_SUFFIXES:
                    problems.append(
                        FileResult(
                            rel.as_posix(),
                            str(f),
                            "skipped",
                            reason=f"unsupported type '{f.suffix}'",
                        )
                    )
                    continue
                found.append(_Source(f, rel.as_posix(), str(root), prunable=True))
        elif path.is_file():
            found.append(_Source(path.resolve(), path.name, str(path.resolve().parent), False))
        else:
            problems.append(
                FileResult(str(raw), str(raw), "failed", reason="does not exist; check the path")
            )
    # The same source name from two roots would overwrite each other: refuse the second.
    seen: dict[str, str] = {}
    unique: list[_Source] = []
    for s in found:
        if s.source in seen and seen[s.source] != s.root:
            problems.append(
                FileResult(
                    s.source,
                    str(s.path),
                    "failed",
                    reason=f"another file named {s.source} comes from "
                    f"{seen[s.source]}; ingest the folders separately or "
                    "rename one",
                )
            )
            continue
        if s.source not in seen:
            seen[s.source] = s.root
            unique.append(s)
    return unique, problems


def _lock_path(settings: Settings) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.data_dir / f"ingest-{settings.store.collection}.lock"


@contextmanager
def writer_lock(settings: Settings, timeout: float | None = None) -> Iterator[None]:
    """Hold the index's single-writer lock (ingest runs, document removal).

    Raises:
        StoreLockedError: another writer holds it for longer than ``timeout`` seconds
            (default ``ingest.lock_timeout``).
    """
    lock = FileLock(str(_lock_path(settings)))
    try:
        lock.acquire(timeout=settings.ingest.lock_timeout if timeout is None else timeout)
    except Timeout as exc:
        raise StoreLockedError(
            f"Another ingest run is writing to the index '{settings.store.collection}' (lock file "
            f"{lock.lock_file}). Wait for it to finish, or pass --lock-timeout SECONDS to "
            "wait longer."
        ) from exc
    try:
        yield
    finally:
        lock.release()


def run_ingest(
    paths: Sequence[Path | str],
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    store: ChromaStore | None = None,
    rebuild: bool = False,
    prune: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
    lock_timeout: float | None = None,
) -> IngestReport:
    """Bring the index in line with the files under ``paths``.

    Args:
        paths: files and folders to ingest.
        settings: supportbot settings (defaults when omitted).
        embedder: overrides the configured embedder (tests pass a fake).
        store: overrides the configured store.
        rebuild: drop the index and re-embed everything (needed after changing model).
        prune: remove files that were ingested from a given folder but are gone now.
        dry_run: report what would change, write nothing, load no model.
        progress: receives progress callbacks.
        lock_timeout: seconds to wait for another ingest run (default from settings).

    Returns:
        The per-file report; ``report.ok`` is false when any file failed.

    Raises:
        StoreLockedError: another run holds the store for longer than ``lock_timeout``.
        EmbeddingMismatchError: the index was built with another model and not ``rebuild``.
    """
    settings = settings or Settings()
    embedder = embedder or build_embedder(settings)
    progress = progress or Progress()
    # Parsing runs in a worker process that is stopped after file_timeout seconds per
    # file (started on the first file that needs parsing; 0 parses in this process).
    limit = settings.ingest.file_timeout
    worker = ParseWorker(limit) if limit > 0 else None

    def parse(src: _Source) -> Parsed:
        if worker is None:
            return parse_file(src.path, src.source, settings.ingest)
        return worker.parse(src.path, src.source, settings.ingest)

    try:
        with writer_lock(settings, lock_timeout):
            # Opened under the lock: two processes creating a new Chroma database at once
            # race on its schema ("table collections already exists").
            store = store or build_store(settings)
            return _run_locked(
                paths, settings, embedder, store, rebuild, prune, dry_run, progress, parse
            )
    finally:
        if worker is not None:
            worker.close()


def _ensure_model(store: ChromaStore, embedder: Embedder, rebuild: bool) -> bool:
    """Check the model stamp without loading the model when the name already matches."""
    stamp = store.stamp()
    if stamp is not None and stamp[0] == embedder.name and not rebuild:
        return False
    return store.ensure_model(embedder.name, embedder.dimension, rebuild=rebuild)


def _run_locked(
    paths: Sequence[Path | str],
    settings: Settings,
    embedder: Embedder,
    store: ChromaStore,
    rebuild: bool,
    prune: bool,
    dry_run: bool,
    progress: Progress,
    parse: Callable[[_Source], Parsed],
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport(dry_run=dry_run, store=settings.store.url or str(settings.store_path))
    stamp = store.stamp()
    if not dry_run:
        report.rebuilt = _ensure_model(store, embedder, rebuild)
    elif stamp is not None and stamp[0] != embedder.name and not rebuild:
        # A dry run loads no model; a different name is enough to say a real run would fail.
        report.warnings.append(
            f"the index was built with {stamp[0]} but {embedder.name} is configured: "
            "a real run needs --rebuild"
        )

    sources, problems = discover([Path(p) for p in paths])
    report.files.extend(problems)
    for p in problems:
        progress.file_done(p)
    manifest = {} if (rebuild and not dry_run) else store.files()
    progress.start(len(sources))

    # Files removed from a folder we were given.
    seen = {s.source for s in sources}
    roots = {s.root for s in sources if s.prunable} | {
        str(Path(p).expanduser().resolve()) for p in paths if Path(p).expanduser().is_dir()
    }
    if prune:
        for source, record in sorted(manifest.items()):
            if source in seen or record.root not in roots:
                continue
            result = FileResult(source, "", "removed", chunks=record.chunk_count)
            if not dry_run:
                report.chunks_deleted += store.delete_source(source)
                store.delete_file(source)
            report.files.append(result)
            progress.file_done(result)

    batch_size = max(1, min(settings.store.write_batch_size, store.max_batch // 2))
    queue: list[tuple[_Pending, Chunk]] = []
    in_flight: list[_Pending] = []

    def flush() -> None:
        if not queue:
            return
        chunks = [c for _, c in queue]
        texts = [c.embedding_text() for c in chunks]
        faq = [c for c in chunks if c.question]
        vectors = embedder.embed(texts + [c.question or "" for c in faq])
        passage_vecs, question_vecs = vectors[: len(chunks)], vectors[len(chunks) :]
        hashes = {p.record.source: p.record.file_hash for p, _ in queue}
        store.upsert(
            chunks, passage_vecs, hashes, {c.id: v for c, v in zip(faq, question_vecs, strict=True)}
        )
        report.chunks_embedded += len(chunks)
        progress.chunks_embedded(len(chunks))
        for pending, _ in queue:
            pending.remaining -= 1
        queue.clear()
        for pending in [p for p in in_flight if p.remaining == 0]:
            _finish(pending)
            in_flight.remove(pending)

    def _finish(pending: _Pending) -> None:
        if pending.stale:
            store.delete_ids(sorted(pending.stale))
            report.chunks_deleted += len(pending.stale)
        store.update_positions(pending.reused)
        store.put_file(pending.record)
        progress.file_done(pending.result)

    for src in sources:
        result = FileResult(src.source, str(src.path), "added")
        try:
            size = src.path.stat().st_size
            digest = file_sha256(src.path)
        except OSError as exc:
            result.status, result.reason = "failed", f"cannot be read ({exc.strerror})"
            report.files.append(result)
            progress.file_done(result)
            continue
        old = manifest.get(src.source)
        if old is not None and old.file_hash == digest:
            result.status, result.chunks = "unchanged", old.chunk_count
            report.files.append(result)
            progress.file_done(result)
            continue
        if old is not None:
            result.status = "updated"
        try:
            parsed = parse(src)
            chunks = parsed.chunks
            if not chunks:
                raise FileRejected(src.path, "contains no text to index")
        except FileRejected as exc:
            result.status, result.reason = "failed", f"{exc.reason}. {exc.fix}".strip()
            report.files.append(result)
            progress.file_done(result)
            continue
        result.chunks = len(chunks)
        result.warnings = parsed.warnings
        report.files.append(result)
        if dry_run:
            progress.file_done(result)
            continue
        record = FileRecord(
            src.source,
            digest,
            len(chunks),
            datetime.now(UTC).isoformat(timespec="seconds"),
            size,
            src.root,
        )
        old_ids = store.ids_for_source(src.source) if old is not None else set()
        new_ids = {c.id for c in chunks}
        existing = store.existing_ids(sorted(new_ids)) if old is not None else set()
        todo = [c for c in chunks if c.id not in existing]
        reused = [c for c in chunks if c.id in existing]
        result.embedded = len(todo)
        # Step 1: mark the file pending, so an interrupted run redoes or prunes it.
        store.put_file(FileRecord(src.source, "", 0, record.ingested_at, size, src.root))
        pending = _Pending(result, record, chunks, reused, old_ids - new_ids, len(todo))
        if not todo:
            _finish(pending)
            continue
        in_flight.append(pending)
        for chunk in todo:
            queue.append((pending, chunk))
            if len(queue) >= batch_size:
                flush()
    flush()
    report.seconds = time.perf_counter() - started
    return report
