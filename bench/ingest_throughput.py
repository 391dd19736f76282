"""Ingestion throughput against raw SentenceTransformer.encode, in one process.

    python bench/ingest_throughput.py [--factor 10]

For kb/docs and for a corpus ``factor`` times larger it prints chunks/s of
(a) raw ``SentenceTransformer.encode`` over exactly the texts the pipeline embeds and
(b) a full ``run_ingest`` (parse, chunk, embed, write to Chroma) into a fresh store,
then the ratio b/a (target >= 0.85), and the time of a second, unchanged run as a share
of the first (target < 5%). The model is loaded once before any timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KB_DOCS, machine, print_rows, save, scaled_corpus  # noqa: E402

from ingest.chunk import chunk_document  # noqa: E402
from ingest.load import load_document  # noqa: E402
from ingest.pipeline import discover, run_ingest  # noqa: E402
from supportbot.config import Settings  # noqa: E402
from supportbot.embed import SentenceTransformerEmbedder  # noqa: E402


def texts_for(folder: Path, settings: Settings) -> list[str]:
    sources, _ = discover([folder])
    texts: list[str] = []
    for src in sources:
        doc = load_document(src.path, settings.ingest)
        chunks = chunk_document(
            doc, src.source, settings.ingest.chunk_size, settings.ingest.chunk_overlap
        )
        texts += [c.embedding_text() for c in chunks]
        texts += [c.question for c in chunks if c.question]
    return texts


def measure(folder: Path, label: str, embedder: SentenceTransformerEmbedder) -> dict[str, float]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-ingest-")))
    texts = texts_for(folder, settings)
    model = embedder.model
    t0 = time.perf_counter()
    model.encode(
        texts,
        batch_size=settings.embedding.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    raw_s = time.perf_counter() - t0

    report = run_ingest([folder], settings, embedder=embedder)
    assert report.ok, report.failed
    first_s = report.seconds
    again = run_ingest([folder], settings, embedder=embedder)
    assert again.chunks_embedded == 0

    n = len(texts)
    raw_rate, pipe_rate = n / raw_s, n / first_s
    row = {
        "corpus": label,
        "texts_embedded": n,
        "chunks": report.chunks_total,
        "raw_encode_s": round(raw_s, 2),
        "raw_chunks_per_s": round(raw_rate, 1),
        "ingest_s": round(first_s, 2),
        "ingest_chunks_per_s": round(pipe_rate, 1),
        "ratio_to_raw": round(pipe_rate / raw_rate, 3),
        "unchanged_rerun_s": round(again.seconds, 3),
        "rerun_share_of_first": round(again.seconds / first_s, 4),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factor", type=int, default=10, help="size of the large corpus")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up the model"] * 8)
    rows = [measure(KB_DOCS, "kb/docs", embedder)]
    if args.factor > 1:
        rows.append(measure(scaled_corpus(args.factor), f"kb/docs x{args.factor}", embedder))
    print_rows(f"machine: {machine()}", rows)
    print(f"saved {save('ingest_throughput', {'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
