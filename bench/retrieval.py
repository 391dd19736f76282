"""Dense-only retrieval quality on kb/eval, and the chunk-size sweep behind the defaults.

    python bench/retrieval.py                      # current settings
    python bench/retrieval.py --sweep              # chunk_size x overlap grid

Each configuration ingests kb/docs into a fresh store with the default embedder, then
asks every answerable question of kb/eval/questions.jsonl (history turns are prepended,
as a plain follow-up would be) and prints recall@1/5/10 and MRR.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KB_DOCS, QUESTIONS, machine, print_rows, save  # noqa: E402

from evaluate.questions import EvalQuestion, load_questions, score_retrieval  # noqa: E402
from ingest.pipeline import run_ingest  # noqa: E402
from supportbot.config import Settings  # noqa: E402
from supportbot.embed import SentenceTransformerEmbedder  # noqa: E402
from supportbot.factory import build_store  # noqa: E402
from supportbot.retrieve import DenseRetriever  # noqa: E402


def query_text(q: EvalQuestion) -> str:
    earlier = " ".join(t.content for t in q.history if t.role == "user")
    return f"{earlier} {q.question}".strip()


def evaluate(
    chunk_size: int,
    overlap: int,
    embedder: SentenceTransformerEmbedder,
    questions: list[EvalQuestion],
) -> dict[str, float | int]:
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="bench-retr-")),
        ingest={"chunk_size": chunk_size, "chunk_overlap": overlap},
    )
    report = run_ingest([KB_DOCS], settings, embedder=embedder)
    retriever = DenseRetriever(embedder, build_store(settings))
    results = [(q, retriever.search(query_text(q), k=10)) for q in questions if q.answerable]
    scores = score_retrieval(results)
    return {
        "chunk_size": chunk_size,
        "overlap": overlap,
        "chunks": report.chunks_total,
        **scores.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    questions = load_questions(QUESTIONS)
    default = Settings().ingest
    grid = [(default.chunk_size, default.chunk_overlap)]
    if args.sweep:
        grid = [(s, o) for s in (400, 600, 800, 1000, 1400) for o in (0, 100)]
    rows = [evaluate(s, o, embedder, questions) for s, o in grid]
    print_rows(f"machine: {machine()}   questions: {QUESTIONS.name}   retrieval: dense only", rows)
    print(f"saved {save('retrieval_sweep' if args.sweep else 'retrieval', rows)}")


if __name__ == "__main__":
    main()
