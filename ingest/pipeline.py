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

A file is identified by where it came from, its folder (``root``) and its path under it
(``rel``), never by its name alone: a second folder holding another ``faq.yaml`` gets its
own entry (``uploads/faq.yaml``), and the report says so. Passages that address the
assistant are quarantined as they are stored (:mod:`ingest.quarantine`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from filelock import FileLock, Timeout

from ingest.isolate import Parsed, ParseWorker, parse_file
from ingest.load import MIN_KNOWN_SHARE, SUPPORTED_SUFFIXES, known_word_share, words_of
from ingest.quarantine import (
    Finding,
    describe,
    flag_metadata,
    released_ids,
    scan_chunks,
)
from supportbot.config import Settings
from supportbot.embed import Embedder
from supportbot.errors import FileRejected, StoreLockedError
from supportbot.factory import build_embedder, build_store
from supportbot.gaps.cluster import centre
from supportbot.store import SCHEMA_VERSION, ChromaStore, Scalar, chunk_from_record
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
    quarantined: list[dict[str, object]] = field(default_factory=list)


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
    quarantined_in_index: int = 0
    calibration: str = ""  # what refitting the relevance model did ("" when not needed)

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
    def quarantined(self) -> list[tuple[FileResult, dict[str, object]]]:
        """Passages quarantined in this run, with their file."""
        return [(f, q) for f in self.files for q in f.quarantined]

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
                "quarantined": len(self.quarantined),
                "quarantined_in_index": self.quarantined_in_index,
                "calibration": self.calibration,
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
    """A file found on disk.

    Its folder (``root``), its path there (``rel``) and, once matched with the manifest,
    its name in the index (``source``).
    """

    path: Path
    rel: str
    root: str
    prunable: bool
    source: str = ""


@dataclass
class _Pending:
    """A file whose chunks are on their way into the store."""

    result: FileResult
    record: FileRecord
    chunks: list[Chunk]
    reused: list[Chunk]
    stale: set[str]
    remaining: int
    extra: dict[str, dict[str, Scalar]] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    """Hash of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def discover(paths: Sequence[Path]) -> tuple[list[_Source], list[FileResult]]:
    """Expand folders into supported files; report paths that do not exist.

    A file's ``rel`` is its path relative to the folder given (or its own name when a
    file is given), so an index does not depend on the working directory. Its name in
    the index (``source``) is given later by :func:`assign_sources`. A file reached twice
    (the same folder given twice, or a file and its folder) is taken once.
    """
    found: list[_Source] = []
    problems: list[FileResult] = []
    seen: set[Path] = set()
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
                if f not in seen:
                    seen.add(f)
                    found.append(_Source(f, rel.as_posix(), str(root), prunable=True))
        elif path.is_file():
            f = path.resolve()
            if f not in seen:
                seen.add(f)
                found.append(_Source(f, f.name, str(f.parent), False))
        else:
            problems.append(
                FileResult(str(raw), str(raw), "failed", reason="does not exist; check the path")
            )
    return found, problems


def root_label(root: str, rel: str, taken: set[str]) -> str:
    """A name for ``rel`` from ``root`` that no other file in the index has.

    The folder's own name first (``uploads/faq.yaml``), then with its parents
    (``kb/docs/faq.yaml``), then with a short hash of the whole path.
    """
    names = [p for p in PurePosixPath(Path(root).as_posix()).parts if p not in ("/", "")]
    for n in range(1, len(names) + 1):
        candidate = f"{'/'.join(names[-n:])}/{rel}"
        if candidate not in taken:
            return candidate
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{names[-1] if names else 'root'}-{digest}/{rel}"


def assign_sources(sources: Sequence[_Source], manifest: dict[str, FileRecord]) -> dict[str, str]:
    """Give each file its name in the index; returns notes for files given a root label.

    A file already in the manifest (same root, same relative path) keeps its name. A new
    file is named by its relative path, unless another file (from another root) has
    that name: then its name starts with a label for its root, and both are kept.
    Entries written before roots were recorded (empty root) are claimed by the first
    file with their name.
    """
    by_origin = {(r.root, r.rel or s): s for s, r in manifest.items() if r.root}
    legacy = {s for s, r in manifest.items() if not r.root}
    holders = {s: r.path or "another folder" for s, r in manifest.items()}
    taken = set(manifest)
    notes: dict[str, str] = {}
    for src in sources:
        known = by_origin.get((src.root, src.rel))
        if known is not None:
            src.source = known
            continue
        if src.rel in legacy:
            legacy.discard(src.rel)
            src.source = src.rel
        elif src.rel not in taken:
            src.source = src.rel
        else:
            src.source = root_label(src.root, src.rel, taken)
            holder = holders.get(src.rel, "another folder")
            notes[src.source] = (
                f"another file named {src.rel} is indexed ({holder}); this one is kept beside "
                f"it as {src.source}"
            )
        taken.add(src.source)
        holders[src.source] = str(src.path)
        by_origin[(src.root, src.rel)] = src.source
    return notes


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
            report = _run_locked(
                paths, settings, embedder, store, rebuild, prune, dry_run, progress, parse
            )
            if not dry_run and _changed(report):
                report.calibration = refit_if_needed(settings, store, embedder)
            return report
    finally:
        if worker is not None:
            worker.close()


def _changed(report: IngestReport) -> bool:
    return any(report.count(s) for s in ("added", "updated", "removed"))


def refit_if_needed(settings: Settings, store: ChromaStore, embedder: Embedder) -> str:
    """Refit the index's relevance model when the knowledge base changed enough.

    Returns a one-line account for the report ("" when nothing was done). Skipped for
    the hash embedder (its similarities mean nothing) and when ``calibration.enabled`` is off.
    """
    from ingest.calibrate import calibrate, needs_refit
    from supportbot.embed import HashEmbedder

    c = settings.calibration
    if not c.enabled or isinstance(embedder, HashEmbedder):
        return ""
    if not needs_refit(store, c.refit_change):
        return ""
    result = calibrate(settings, store, embedder)
    if result.model is None:
        return f"relevance model not fitted: {result.skipped}"
    e = result.model.expected
    return (
        f"relevance model fitted in {result.seconds:.0f} s: out-of-scope bank answered "
        f"{e['out_of_scope_answered']:.1%}, probe AUROC {e['probe_auroc']:.3f}"
    )


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
    # Passages an administrator released stay released through a rebuild.
    released = released_ids(store) if stamp is not None else set()
    if not dry_run:
        report.rebuilt = _ensure_model(store, embedder, rebuild)
        if not report.rebuilt and store.schema() < SCHEMA_VERSION:
            _upgrade(store, report)
    else:
        if stamp is not None and stamp[0] != embedder.name and not rebuild:
            # A dry run loads no model; a different name is enough to say a real run would fail.
            report.warnings.append(
                f"the index was built with {stamp[0]} but {embedder.name} is configured: "
                "a real run needs --rebuild"
            )
        if store.schema() < SCHEMA_VERSION and not rebuild:
            report.warnings.append(
                "the index was built before passages were checked for instructions to the "
                "assistant: a real run will check every stored passage (nothing is re-embedded)"
            )

    sources, problems = discover([Path(p) for p in paths])
    report.files.extend(problems)
    for p in problems:
        progress.file_done(p)
    manifest = {} if (rebuild and not dry_run) else store.files()
    notes = assign_sources(sources, manifest)
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
            result = FileResult(source, record.path, "removed", chunks=record.chunk_count)
            if not dry_run:
                report.chunks_deleted += store.delete_source(source)
                store.delete_file(source)
            report.files.append(result)
            progress.file_done(result)

    vocabulary: set[str] | None = None

    def unfamiliar(chunks: list[Chunk], source: str) -> str | None:
        """A warning when few of a PDF's words occur in the other documents."""
        nonlocal vocabulary
        if vocabulary is None:
            vocabulary = set()
            for _, doc, meta, _ in store.iter_records(include_embeddings=False):
                if meta.get("record") == "passage" and meta.get("source") != source:
                    vocabulary.update(words_of(doc))
        text = "\n".join(c.text for c in chunks)
        share = known_word_share(text, vocabulary)
        if share is None or share >= MIN_KNOWN_SHARE:
            vocabulary.update(words_of(text))
            return None
        return (
            f"only {share:.0%} of its words occur in the other documents: its text may be "
            "garbled (fonts that map glyphs to the wrong letters), or it is in another "
            f'language. Check it with `supportbot search "..."` and re-export it with '
            "embedded Unicode fonts if its passages do not read as text"
        )

    batch_size = max(1, min(settings.store.write_batch_size, store.max_batch // 2))
    queue: list[tuple[_Pending, Chunk]] = []
    in_flight: list[_Pending] = []

    def flush() -> None:
        if not queue:
            return
        chunks = [c for _, c in queue]
        texts = [c.embedding_text() for c in chunks]
        faq = [c for c in chunks if c.question]
        # An FAQ question with other wordings (customers' own, in an agent's answer) is
        # matched by the centre of them all (supportbot/gaps/cluster.py).
        asked = [[c.question or "", *c.also_asked] for c in faq]
        vectors = embedder.embed(texts + [w for wordings in asked for w in wordings])
        passage_vecs, rest = vectors[: len(chunks)], vectors[len(chunks) :]
        question_vecs: list[list[float]] = []
        for wordings in asked:
            mine, rest = rest[: len(wordings)], rest[len(wordings) :]
            question_vecs.append(mine[0] if len(mine) == 1 else centre(mine))
        hashes = {p.record.source: p.record.file_hash for p, _ in queue}
        extra = {c.id: p.extra[c.id] for p, c in queue}
        store.upsert(
            chunks,
            passage_vecs,
            hashes,
            {c.id: v for c, v in zip(faq, question_vecs, strict=True)},
            extra,
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
        # Unchanged passages are judged again with their (possibly changed) section.
        store.update_metadata({c.id: pending.extra[c.id] for c in pending.reused})
        store.put_file(pending.record)
        progress.file_done(pending.result)

    for src in sources:
        result = FileResult(src.source, str(src.path), "added")
        if src.source in notes:
            result.warnings.append(notes[src.source])
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
        result.warnings.extend(parsed.warnings)
        if src.path.suffix.lower() == ".pdf" and (note := unfamiliar(chunks, src.source)):
            result.warnings.append(note)
        flagged = scan_chunks(chunks)
        held = {cid: f for cid, f in flagged.items() if cid not in released}
        result.quarantined = describe(chunks, held)
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
            src.rel,
            len(held),
        )
        old_ids = store.ids_for_source(src.source) if old is not None else set()
        new_ids = {c.id for c in chunks}
        existing = store.existing_ids(sorted(new_ids)) if old is not None else set()
        todo = [c for c in chunks if c.id not in existing]
        reused = [c for c in chunks if c.id in existing]
        result.embedded = len(todo)
        extra = {
            c.id: _chunk_metadata(src.root, flagged.get(c.id), c.id in released) for c in chunks
        }
        # A passage released earlier keeps its release (and its date).
        keep = released & {c.id for c in reused}
        for cid in keep:
            extra[cid] = {"root": src.root}
        # Step 1: mark the file pending, so an interrupted run redoes or prunes it.
        store.put_file(FileRecord(src.source, "", 0, record.ingested_at, size, src.root, src.rel))
        pending = _Pending(result, record, chunks, reused, old_ids - new_ids, len(todo), extra)
        if not todo:
            _finish(pending)
            continue
        in_flight.append(pending)
        for chunk in todo:
            queue.append((pending, chunk))
            if len(queue) >= batch_size:
                flush()
    flush()
    if not dry_run:
        report.quarantined_in_index = sum(r.quarantined for r in store.files().values())
    report.seconds = time.perf_counter() - started
    return report


def _chunk_metadata(root: str, finding: Finding | None, released: bool) -> dict[str, Scalar]:
    return {"root": root, **flag_metadata(finding, released)}


def _upgrade(store: ChromaStore, report: IngestReport) -> None:
    """Bring an index built before quarantine (schema 1) up to date, without re-embedding.

    Every stored passage is checked for instructions to the assistant, flagged, and
    stamped with its file's root; the manifest gets each file's relative path and
    quarantine count. Nothing is embedded again.
    """
    manifest = store.files()
    by_source: dict[str, list[Chunk]] = {}
    for cid, doc, meta, _ in store.iter_records(include_embeddings=False):
        if meta.get("record") == "passage":
            chunk = chunk_from_record(cid, doc, meta)
            by_source.setdefault(chunk.source, []).append(chunk)
    held_total = 0
    for source, chunks in by_source.items():
        flagged = scan_chunks(chunks)
        record = manifest.get(source)
        root = record.root if record is not None else ""
        store.update_metadata(
            {c.id: _chunk_metadata(root, flagged.get(c.id), False) for c in chunks}
        )
        held_total += len(flagged)
        if record is not None:
            store.put_file(replace(record, rel=record.rel or source, quarantined=len(flagged)))
    store.set_schema(SCHEMA_VERSION)
    report.warnings.append(
        f"the index was built by an earlier version: its {sum(map(len, by_source.values()))} "
        f"stored passages were checked for instructions to the assistant ({held_total} "
        "quarantined); nothing was re-embedded"
    )


def reembed(
    source: ChromaStore,
    target: ChromaStore,
    embedder: Embedder,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
    deadline: float | None = None,
) -> int:
    """Copy every passage of ``source`` into the empty ``target``, embedded by ``embedder``.

    What ``supportbot tune`` (and ``--revert``) swap in: the same passages, FAQ question
    records, metadata (sections, roots, quarantine flags and releases) and manifest,
    with vectors from another model and its stamp. Texts are embedded as an ingest run
    embeds them (:meth:`Chunk.embedding_text`, an FAQ entry's question), in batches;
    nothing is parsed again, so files moved since they were ingested are kept. The
    caller holds the writer lock, so nothing changes ``source`` meanwhile. The relevance
    model is not copied: it belongs to the old vectors (refit it on ``target``).

    Args:
        source: the live index.
        target: an empty store (a staging collection) to fill.
        embedder: the model to embed with; its name and dimension are stamped on
            ``target``.
        batch_size: passages embedded and written per batch.
        progress: ``chunks_embedded`` is called after each batch.
        deadline: a ``time.monotonic()`` value after which it stops with
            :class:`IngestError` (``target`` is then incomplete: drop it).

    Returns:
        The number of passages written.

    Raises:
        IngestError: the deadline passed before every passage was written.
    """
    from supportbot.errors import IngestError

    progress = progress or Progress()
    target.ensure_model(embedder.name, embedder.dimension)
    target.set_schema(source.schema())
    passages: list[tuple[Chunk, dict[str, Scalar]]] = []
    for cid, doc, meta, _ in source.iter_records(include_embeddings=False):
        if meta.get("record") == "passage":
            stored = {k: v for k, v in meta.items() if k != "record"}
            passages.append((chunk_from_record(cid, doc, meta), stored))
    passages.sort(key=lambda item: item[0].id)
    written = 0
    for start in range(0, len(passages), batch_size):
        if deadline is not None and time.monotonic() > deadline:
            raise IngestError(
                f"re-embedding stopped at the time budget after {written} of "
                f"{len(passages)} passages"
            )
        part = passages[start : start + batch_size]
        chunks = [c for c, _ in part]
        faq = [c for c in chunks if c.question]
        vectors = embedder.embed(
            [c.embedding_text() for c in chunks] + [c.question or "" for c in faq]
        )
        store_meta = {c.id: meta for c, meta in part}
        target.upsert(
            chunks,
            vectors[: len(chunks)],
            {c.source: str(store_meta[c.id].get("file_hash", "")) for c in chunks},
            {c.id: v for c, v in zip(faq, vectors[len(chunks) :], strict=True)},
            store_meta,
        )
        written += len(part)
        progress.chunks_embedded(len(part))
    for record in source.files().values():
        target.put_file(record)
    return written
