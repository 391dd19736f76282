"""Index integrity check (``supportbot ingest --verify``).

Finds what an interrupted run, a crashed Chroma process or a hand edit could leave
behind: chunks their own vector does not find, metadata with holes, manifest entries
that disagree with the chunks, files left pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from supportbot.store import REQUIRED_METADATA, ChromaStore


@dataclass
class VerifyReport:
    """Problems found; an empty list means the index is sound."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def verify_index(store: ChromaStore, batch: int = 64) -> VerifyReport:
    """Query every chunk with its own vector and cross-check metadata and manifest."""
    report = VerifyReport()
    if store.stamp() is None:
        report.problems.append("the index has no embedding-model stamp; run ingest")
    counts: dict[str, int] = {}
    pending_ids: list[str] = []
    pending_vecs: list[list[float]] = []

    def nearest(vectors: list[list[float]], n: int) -> list[tuple[list[str], list[float]]]:
        res = store.chunks.query(
            query_embeddings=vectors,  # type: ignore[arg-type]
            n_results=min(n, store.chunks.count()),
            include=["distances"],
        )
        return list(zip(res["ids"], res["distances"] or [], strict=True))

    def probe() -> None:
        # HNSW search is approximate: a miss among the first few neighbours is checked
        # again with a much wider search before it is reported as a missing index entry.
        if not pending_ids:
            return
        misses: list[tuple[str, list[float]]] = []
        for cid, vec, (ids, dists) in zip(
            pending_ids, pending_vecs, nearest(pending_vecs, 5), strict=True
        ):
            if not any(i == cid or d < 1e-4 for i, d in zip(ids, dists, strict=True)):
                misses.append((cid, vec))
        if misses:
            wide = nearest([v for _, v in misses], 100)
            for (cid, _), (ids, dists) in zip(misses, wide, strict=True):
                if not any(i == cid or d < 1e-4 for i, d in zip(ids, dists, strict=True)):
                    report.problems.append(f"chunk {cid} is not found by its own vector")
        pending_ids.clear()
        pending_vecs.clear()

    for cid, _doc, meta, vec in store.iter_records(include_embeddings=True):
        report.checked += 1
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            report.problems.append(f"chunk {cid} lacks metadata: {', '.join(missing)}")
        if meta.get("record") == "passage":
            src = str(meta.get("source"))
            counts[src] = counts.get(src, 0) + 1
        if vec is None:
            report.problems.append(f"chunk {cid} has no vector")
            continue
        pending_ids.append(cid)
        pending_vecs.append(vec)
        if len(pending_ids) >= batch:
            probe()
    probe()

    manifest = store.files()
    for source, record in sorted(manifest.items()):
        if not record.file_hash:
            report.problems.append(f"{source}: left pending by an interrupted run; re-run ingest")
        elif counts.get(source, 0) != record.chunk_count:
            report.problems.append(
                f"{source}: manifest says {record.chunk_count} chunks, index holds "
                f"{counts.get(source, 0)}; re-run ingest"
            )
    for source in sorted(set(counts) - set(manifest)):
        report.problems.append(f"{source}: {counts[source]} chunks with no manifest entry")
    return report
