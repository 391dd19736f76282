"""Index integrity check (``supportbot ingest --verify``).

Finds what an interrupted run, a crashed Chroma process or a hand edit could leave
behind: chunks their own vector does not find, metadata with holes, manifest entries
that disagree with the chunks, files left pending; and what would make the index unsafe:
two entries for one file, chunks from another folder than their entry says (a file
replaced by another of the same name), quarantine flags that disagree with the manifest,
an index whose passages were never checked for instructions to the assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from supportbot.store import REQUIRED_METADATA, SCHEMA_VERSION, ChromaStore


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
    elif store.schema() < SCHEMA_VERSION:
        report.problems.append(
            "the index was built before passages were checked for instructions to the "
            "assistant; run `supportbot ingest PATH...` once (it checks every stored passage "
            "and re-embeds nothing) or `supportbot ingest --rebuild PATH...`"
        )
    counts: dict[str, int] = {}
    held: dict[str, int] = {}
    roots: dict[str, set[str]] = {}
    passage_flag: dict[str, bool] = {}
    question_flag: dict[str, bool] = {}
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
            passage_flag[cid] = meta.get("quarantined") is True
            if passage_flag[cid]:
                held[src] = held.get(src, 0) + 1
            if "root" in meta:
                roots.setdefault(src, set()).add(str(meta["root"]))
        elif meta.get("record") == "faq_question":
            question_flag[cid.removesuffix(":q")] = meta.get("quarantined") is True
        if vec is None:
            report.problems.append(f"chunk {cid} has no vector")
            continue
        pending_ids.append(cid)
        pending_vecs.append(vec)
        if len(pending_ids) >= batch:
            probe()
    probe()

    for cid, flag in sorted(question_flag.items()):
        if cid in passage_flag and passage_flag[cid] != flag:
            report.problems.append(
                f"chunk {cid}: its FAQ question record is {'' if flag else 'not '}quarantined "
                "but the passage is the other way; re-run ingest"
            )

    manifest = store.files()
    origins: dict[tuple[str, str], str] = {}
    for source, record in sorted(manifest.items()):
        if record.root:
            other = origins.setdefault((record.root, record.rel), source)
            if other != source:
                report.problems.append(
                    f"{source} and {other} are both entries for {record.path}; remove one "
                    "(`supportbot ingest --rebuild PATH...` rebuilds the index)"
                )
        if record.rel and source != record.rel and not source.endswith("/" + record.rel):
            report.problems.append(f"{source}: the entry names another file ({record.path})")
        foreign = roots.get(source, set()) - {record.root} if record.root else set()
        if foreign:
            report.problems.append(
                f"{source}: chunks come from {', '.join(sorted(foreign))} but the entry says "
                f"{record.root}: a file of the same name replaced another. Re-ingest both "
                "folders, or run `supportbot ingest --rebuild PATH...`"
            )
        if not record.file_hash:
            report.problems.append(f"{source}: left pending by an interrupted run; re-run ingest")
        elif counts.get(source, 0) != record.chunk_count:
            report.problems.append(
                f"{source}: manifest says {record.chunk_count} chunks, index holds "
                f"{counts.get(source, 0)}; re-run ingest"
            )
        elif held.get(source, 0) != record.quarantined:
            report.problems.append(
                f"{source}: manifest says {record.quarantined} quarantined passages, index "
                f"holds {held.get(source, 0)}; re-run ingest"
            )
    for source in sorted(set(counts) - set(manifest)):
        report.problems.append(f"{source}: {counts[source]} chunks with no manifest entry")
    return report
