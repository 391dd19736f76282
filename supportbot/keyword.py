"""Keyword retrieval: BM25 (bm25s) over the same chunks as the vector index.

Dense embeddings blur exact identifiers: "E-104" and "E-110" look alike to MiniLM. The
tokenizer here keeps codes, part numbers and versions whole (``e-104``, ``bw-psu-12-2a``,
``3.4.2``) and also indexes their hyphen-less form (``e104``), so a customer typing
"E104" or "bw psu 12 2a" still matches.

The index is rebuilt from the store whenever the store's manifest changes, which keeps it
in step with ingestion without a second copy of the corpus on disk.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

from supportbot.store import ChromaStore, chunk_from_record
from supportbot.types import Chunk

_TOKEN = re.compile(r"[a-z0-9]+(?:[-./][a-z0-9]+)*")

# A small English stop list: words that carry no support-topic meaning.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves im ive dont doesnt cant wont hi hello please thanks thank""".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case words and identifiers, stop words dropped, identifiers also without hyphens."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower().replace("'", "")):
        tok = match.group(0).strip(".-/")
        if not tok or tok in STOPWORDS:
            continue
        tokens.append(tok)
        if any(sep in tok for sep in "-./"):
            tokens.append(re.sub(r"[-./]", "", tok))
            tokens.extend(p for p in re.split(r"[-./]", tok) if len(p) > 1 and p not in STOPWORDS)
    return tokens


class KeywordIndex:
    """BM25 over the passages of a :class:`ChromaStore`, refreshed when the manifest changes.

    Example:
        >>> index = KeywordIndex(store)
        >>> [(c.source, round(s, 2)) for c, s in index.search("E-104", k=3)]
    """

    def __init__(self, store: ChromaStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._fingerprint: tuple[Any, ...] | None = None
        self._bm25: Any = None
        self._chunks: list[Chunk] = []
        self._sections: dict[tuple[str, str], list[Chunk]] = {}
        self._df: dict[str, int] = {}

    def _current_fingerprint(self) -> tuple[Any, ...]:
        files = self.store.files()
        return tuple(sorted((s, r.file_hash, r.quarantined) for s, r in files.items()))

    def refresh(self, force: bool = False) -> None:
        """Rebuild the BM25 index if ingestion changed the store since the last build."""
        fingerprint = self._current_fingerprint()
        with self._lock:
            if not force and fingerprint == self._fingerprint:
                return
            import bm25s

            chunks: list[Chunk] = []
            corpus: list[list[str]] = []
            for cid, doc, meta, _ in self.store.iter_records(include_embeddings=False):
                if meta.get("record") != "passage" or meta.get("quarantined") is True:
                    continue  # quarantined passages are never searched (ingest/quarantine.py)
                chunk = chunk_from_record(cid, doc, meta)
                chunks.append(chunk)
                extra = " ".join(filter(None, [chunk.title, chunk.heading, chunk.question]))
                corpus.append(tokenize(f"{extra} {doc}") or ["__empty__"])
            bm25 = bm25s.BM25()
            if corpus:
                bm25.index(corpus, show_progress=False)
            sections: dict[tuple[str, str], list[Chunk]] = {}
            for chunk in chunks:
                sections.setdefault((chunk.source, chunk.heading), []).append(chunk)
            for group in sections.values():
                group.sort(key=lambda c: c.position)
            df: dict[str, int] = {}
            for doc_tokens in corpus:
                for term in set(doc_tokens):
                    df[term] = df.get(term, 0) + 1
            self._bm25, self._chunks, self._fingerprint = bm25, chunks, fingerprint
            self._sections, self._df = sections, df

    @property
    def fingerprint(self) -> tuple[Any, ...] | None:
        """What the index was last built from (changes whenever ingestion changes files)."""
        return self._fingerprint

    def search(self, query: str, k: int = 20) -> list[tuple[Chunk, float]]:
        """The ``k`` best BM25 matches with their raw scores (0 matches are left out)."""
        self.refresh()
        tokens = tokenize(query)
        with self._lock:
            if not tokens or not self._chunks:
                return []
            vocab = getattr(self._bm25, "vocab_dict", {}) or {}
            tokens = [t for t in tokens if t in vocab]
            if not tokens:
                return []
            docs, scores = self._bm25.retrieve(
                [tokens], k=min(k, len(self._chunks)), show_progress=False, n_threads=1
            )
            out: list[tuple[Chunk, float]] = []
            for idx, score in zip(docs[0], scores[0], strict=True):
                if float(score) <= 0:
                    continue
                out.append((self._chunks[int(idx)], float(score)))
            return out

    def section_of(self, chunk: Chunk) -> list[Chunk]:
        """The passages of ``chunk``'s section in order.

        Same file and heading, and consecutive positions: two sections may share a
        heading in one file.
        """
        self.refresh()
        with self._lock:
            group = self._sections.get((chunk.source, chunk.heading), [])
        run: list[Chunk] = []
        for c in group:
            if run and c.position != run[-1].position + 1:
                if any(x.id == chunk.id for x in run):
                    break
                run = []
            run.append(c)
        return run if any(x.id == chunk.id for x in run) else [chunk]

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency of a term over the searchable passages."""
        n = len(self._chunks)
        return math.log((n + 1) / (self._df.get(term, 0) + 1)) + 1.0

    def __len__(self) -> int:
        return len(self._chunks)
