"""Retrieval and escalation on manuals nobody here wrote: the fetchmail and zsh dev sets.

    python bench/devsets.py                       # both products, kb_noq, questions verbatim
    python bench/devsets.py --products fetchmail  # one
    python bench/devsets.py --with-kb-eval        # also the sample kb/eval, for comparison

Builds the two sets with ../shared/eval/build_devset.py (needs root for apt-get download;
cached under ~/.cache/supportbot-devset), ingests each product's ``kb_noq`` with the
default settings into a fresh data folder (which fits that index's relevance model from
its own documents: nothing is fitted on the questions), and runs ``supportbot eval
--retrieval-only`` on its question file (the product's FAQ questions in scope, the other
product's out of scope). Prints recall@1/5/10, MRR, the relevance AUROC (in vs out of
scope), the share of out-of-scope questions answered and of in-scope questions handed
over, each with its 95% interval.

The two settings chosen by looking at results (features of the relevance model, and
``calibration.out_of_scope_rate``) were chosen on fetchmail; report zsh as held out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import KB_DOCS, QUESTIONS, ROOT, machine, save  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
CACHE = Path.home() / ".cache" / "supportbot-devset"
PRODUCTS = ("fetchmail", "zsh")


def build_devsets() -> Path:
    """The dev sets, built once and cached."""
    if all((CACHE / p / "questions_noq.jsonl").is_file() for p in PRODUCTS):
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(SHARED / "build_devset.py"), str(CACHE)], check=True)
    return CACHE


def run(name: str, docs: Path, questions: Path, config: Path | None) -> dict[str, object]:
    from evaluate.questions import load_questions
    from evaluate.run import evaluate
    from ingest import run_ingest
    from supportbot.config import load_settings

    data = Path(tempfile.mkdtemp(prefix=f"devset-{name}-"))
    settings = load_settings(config, data_dir=data)
    started = time.perf_counter()
    report = run_ingest([docs], settings)
    ingest_s = time.perf_counter() - started
    result = evaluate(load_questions(questions), settings, retrieval_only=True, label=name)
    return {
        "product": name,
        "ingest_seconds": round(ingest_s, 1),
        "calibration": report.calibration,
        "chunks": report.chunks_total,
        "retrieval": result.retrieval,
        "retrieval_ci": result.retrieval_ci,
        "scope": result.scope,
        "escalation": result.escalation,
        "modes": result.modes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", nargs="+", default=list(PRODUCTS), choices=PRODUCTS)
    parser.add_argument("--with-kb-eval", action="store_true")
    args = parser.parse_args(argv)
    root = build_devsets()
    rows = []
    for product in args.products:
        rows.append(
            run(product, root / product / "kb_noq", root / product / "questions_noq.jsonl", None)
        )
    if args.with_kb_eval:
        rows.append(run("kb/eval", KB_DOCS, QUESTIONS, ROOT / "kb" / "supportbot.toml"))
    print(f"machine: {machine()}")
    for row in rows:
        r, ci, s = row["retrieval"], row["retrieval_ci"], row["scope"]
        print(f"\n{row['product']} ({row['chunks']} chunks, ingest {row['ingest_seconds']} s)")
        print(f"  {row['calibration']}")
        for key in ("recall@1", "recall@5", "recall@10", "mrr"):
            print(f"  {key:28s} {r.get(key)}  {ci.get(key)}")  # type: ignore[union-attr]
        for key in ("auroc", "out_of_scope_answered", "in_scope_handed_over"):
            print(f"  {key:28s} {s.get(key)}  {s.get(key + '_ci')}")  # type: ignore[union-attr]
        print(f"  escalation {json.dumps(row['escalation'])}")
        print(f"  modes {json.dumps(row['modes'])}")
    print(f"\nsaved {save('devsets', rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
