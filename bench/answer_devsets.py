"""Answer quality on manuals nobody here wrote: token F1 against each FAQ's own answer.

    python bench/answer_devsets.py                         # both dev sets, default model
    python bench/answer_devsets.py --products zsh --limit 30
    python bench/answer_devsets.py --data fetchmail=/path/to/ingested/data/folder

Asks every answerable question of each dev set's ``questions_noq.jsonl`` verbatim, each
in a fresh conversation, against the product's ``kb_noq`` ingested with default settings
(reuses a data folder given with ``--data``). For the questions the bot answers (not
handed over, not asked to clarify) it prints the mean token F1 and token recall of the
answer against the reference ``answer_text`` (:func:`evaluate.stats.token_scores`), the
share of shipped sentences the independent support check
(the verifier, or a verbatim quote of a cited section) finds without one supporting source
sentence, first-token and total time p50/p95, and the answer modes. Every shipped answer
is written to ``bench/out/answers-<product>.jsonl`` for reading by eye and hand-labelling.

Selection and verification were developed on fetchmail; zsh is the held-out product.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import OUT, machine, save  # noqa: E402
from devsets import PRODUCTS, build_devsets  # noqa: E402


def _flat(text: str) -> str:
    return " ".join(re.sub(r"\s*\[\d+\]", "", text).split()).lower().rstrip(".")


def shipped_sentences(answer: str) -> list[str]:
    """The sentences and list items a customer reads, without the quote's label."""
    from supportbot.verify import split_sentences

    text = re.sub(r'From "[^"]*"(?: \[\d+\])?:', "", answer)
    return [s for line in text.splitlines() for s in split_sentences(line) if s.strip()]


def _as_hit(text: str, i: int) -> Any:
    from supportbot.types import Chunk, Hit

    return Hit(Chunk(id=f"s{i}", text=text, source="", title=""), 1.0, i + 1)


def _pct(values: list[float], p: float) -> float:
    from evaluate.run import percentile

    return round(percentile(values, p) or float("nan"), 3)


def run(product: str, root: Path, data: Path | None, limit: int | None) -> dict[str, object]:
    """Ask the product's answerable questions; score what the bot answered."""
    from evaluate.stats import token_scores
    from ingest import run_ingest
    from supportbot.config import load_settings
    from supportbot.factory import build
    from supportbot.types import Reply
    from supportbot.verify import AnswerVerifier

    rows = [json.loads(line) for line in (root / product / "questions_noq.jsonl").open()]
    rows = [r for r in rows if r["decision"] == "answer" and r.get("answer_text")]
    rows = rows[:limit] if limit else rows
    if data is None:
        data = Path(tempfile.mkdtemp(prefix=f"answers-{product}-"))
        settings = load_settings(None, data_dir=data)
        run_ingest([root / product / "kb_noq"], settings)
    settings = load_settings(None, data_dir=data)
    services = build(settings)
    bot = services.bot
    checker = AnswerVerifier(
        services.embedder, settings.verify.min_overlap, settings.verify.min_similarity
    )

    def supported(sentence: str, reply: Reply, question: str) -> bool:
        """Quoted verbatim from a cited section, or passes the one-sentence check."""
        sources = [c.section or c.snippet for c in reply.citations]
        if any(_flat(sentence) in _flat(src) for src in sources):
            return True
        hits = [_as_hit(src, i) for i, src in enumerate(sources)]
        return checker.verify(sentence, hits, question=question).kept == 1

    bot.warm_up()
    out_path = OUT / f"answers-{product}.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    f1s, recalls, firsts, totals, modes = [], [], [], [], {}
    shipped = unsupported = 0
    with out_path.open("w") as out:
        for r in rows:
            started = time.perf_counter()
            reply = bot.ask(r["question"])
            total = time.perf_counter() - started
            modes[reply.mode] = modes.get(reply.mode, 0) + 1
            record = {
                "id": r["id"],
                "question": r["question"],
                "mode": reply.mode,
                "answer": reply.answer,
                "gold": r["gold"][0]["section"] if r.get("gold") else "",
                "cited": [c.label for c in reply.citations],
            }
            if reply.mode in ("generated", "extract", "faq"):
                scores = token_scores(reply.answer, r["answer_text"])
                f1, recall = scores.f1, scores.recall
                f1s.append(f1)
                recalls.append(recall)
                firsts.append(reply.timings.first_token or total)
                totals.append(total)
                sentences = shipped_sentences(reply.answer)
                flagged = [x for x in sentences if not supported(x, reply, r["question"])]
                shipped += len(sentences)
                unsupported += len(flagged)
                record.update(
                    f1=round(f1, 3),
                    sentences=sentences,
                    unsupported=flagged,
                    raw=reply.trace.raw_answer,
                    removed=[[x.sentence, x.reason] for x in reply.trace.removed],
                )
            out.write(json.dumps(record) + "\n")
    return {
        "product": product,
        "questions": len(rows),
        "answered": len(f1s),
        "token_f1": round(statistics.fmean(f1s), 3) if f1s else None,
        "token_recall": round(statistics.fmean(recalls), 3) if recalls else None,
        "unsupported_share": round(unsupported / shipped, 3) if shipped else None,
        "first_token_p50": _pct(firsts, 50),
        "first_token_p95": _pct(firsts, 95),
        "total_p50": _pct(totals, 50),
        "total_p95": _pct(totals, 95),
        "modes": modes,
        "answers": str(out_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", nargs="+", default=list(PRODUCTS), choices=PRODUCTS)
    parser.add_argument("--limit", type=int, default=None, help="first N answerable questions")
    parser.add_argument("--data", action="append", default=[], help="PRODUCT=DATA_FOLDER")
    args = parser.parse_args(argv)
    data = dict(item.split("=", 1) for item in args.data)
    root = build_devsets()
    rows = [run(p, root, Path(data[p]) if p in data else None, args.limit) for p in args.products]
    print(f"machine: {machine()}")
    for row in rows:
        print(json.dumps(row))
    print(f"saved {save('answer_devsets', rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
