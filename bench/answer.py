"""Answer quality, grounding and latency of SupportBot on kb/eval with the default SLM.

    python bench/answer.py [--limit N] [--context-tokens 700]

Ingests kb/docs into a fresh store, then asks every answerable kb/eval question through
``SupportBot.ask`` (follow-ups get their history as earlier turns of the same
conversation) and prints:

* accuracy: share of questions whose final answer contains every expected fact
  (case-insensitive), also for the raw model output before verification;
* citation precision: share of citations whose passage is a gold location or contains
  an expected fact;
* unsupported-sentence rate: share of the model's sentences the verifier removed (before),
  and share of final-answer sentences holding a number or code found in no retrieved
  passage (after, a check independent of the verifier's word-overlap rule);
* retrieval: recall@5 and MRR, dense only vs hybrid (dense + BM25 + FAQ matching);
* latency: time to first token and total, p50/p95, and the overhead ratio of
  ``SupportBot.ask`` against a raw ``Llama.create_completion`` on the exact same prompt,
  measured alternately in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KB_DOCS, QUESTIONS, machine, save  # noqa: E402

from evaluate.questions import EvalQuestion, load_questions, score_retrieval  # noqa: E402
from evaluate.run import has_facts, percentile  # noqa: E402
from ingest.pipeline import run_ingest  # noqa: E402
from supportbot.bot import SupportBot  # noqa: E402
from supportbot.config import Settings  # noqa: E402
from supportbot.conversation import Turn  # noqa: E402
from supportbot.factory import build  # noqa: E402
from supportbot.prompt import STOP, build_prompt  # noqa: E402
from supportbot.verify import critical_tokens, split_sentences  # noqa: E402


def pct(values: list[float], p: float) -> float:
    return percentile(values, p) or float("nan")


def raw_llama_seconds(bot: SupportBot, q: EvalQuestion, conv: str) -> float:
    """Time a bare Llama call on the prompt the bot built for this question."""
    history = bot.history(conv)[:-2]
    llm = bot.settings.llm
    from supportbot.conversation import retrieval_query

    query = retrieval_query(q.question, history)
    hits = bot._retriever.retrieve(query, k=bot.settings.retrieval.top_k).hits
    prompt, _ = build_prompt(
        q.question,
        hits,
        bot._generator.count_tokens,
        llm.context_tokens,
        [(t.role, t.text) for t in history[-bot.settings.conversation.history_turns :]],
    )
    llama = bot._generator.llama  # type: ignore[attr-defined]
    llama.reset()  # no KV-cache reuse from the bot's call on the same prompt
    t0 = time.perf_counter()
    for _ in llama.create_completion(
        prompt=prompt.completion(),
        max_tokens=llm.max_tokens,
        stop=STOP,
        temperature=llm.temperature,
        repeat_penalty=llm.repeat_penalty,
        stream=True,
    ):
        pass
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--context-tokens", type=int, default=None)
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args()
    # Answer quality is measured with escalation off (bench/escalation.py measures that).
    overrides: dict = {"escalation": {"enabled": False}}
    if args.context_tokens:
        overrides["llm"] = {"context_tokens": args.context_tokens}
    if args.no_verify:
        overrides["verify"] = {"enabled": False}
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-ans-")), **overrides)
    bot = build(settings).bot
    run_ingest([KB_DOCS], settings, embedder=bot._embedder)
    questions = [q for q in load_questions(QUESTIONS) if q.answerable]
    if args.limit:
        questions = questions[: args.limit]
    bot.ask("warm up: what does the white light mean?")  # loads both models

    rows = []
    ttft, total, ratios = [], [], []
    dense_results, hybrid_results = [], []
    for i, q in enumerate(questions):
        conv = f"bench-{q.id}"
        for turn in q.history:
            bot.restore(conv, [Turn(turn.role, turn.content)])
        bot._generator.llama.reset()  # type: ignore[attr-defined]  # same cold start as raw
        reply = bot.ask(q.question, conversation_id=conv)
        dense_results.append(
            (q, bot._retriever.retrieve(reply.trace.retrieval_query, k=10, sparse=False).hits)
        )
        hybrid_results.append((q, bot._retriever.retrieve(reply.trace.retrieval_query, k=10).hits))
        sentences = split_sentences(reply.answer)
        hit_text = " ".join(h.chunk.text for h in reply.trace.hits).lower().replace(",", "")
        unsupported_after = sum(
            1 for s in sentences if any(t not in hit_text for t in critical_tokens(s))
        )
        good_cites = sum(
            1
            for c in reply.citations
            if any(
                g.source == c.source
                and (g.section == c.heading.rsplit(" > ", 1)[-1] or g.question is not None)
                for g in q.gold
            )
            or any(f.lower() in c.snippet.lower() for f in q.facts)
            or any(
                f.lower() in h.chunk.text.lower()
                for h in reply.trace.hits
                if h.chunk.id == c.chunk_id
                for f in q.facts
            )
        )
        raw_sentences = (
            len(split_sentences(reply.trace.raw_answer)) if reply.trace.raw_answer else 0
        )
        rows.append(
            {
                "id": q.id,
                "mode": reply.mode,
                "correct": has_facts(reply.answer, q),
                "raw_correct": has_facts(reply.trace.raw_answer or reply.answer, q),
                "citations": len(reply.citations),
                "good_citations": good_cites,
                "raw_sentences": raw_sentences,
                "removed": len(reply.trace.removed),
                "final_sentences": len(sentences),
                "unsupported_after": unsupported_after,
                "ttft": reply.timings.first_token,
                "total": reply.timings.total,
            }
        )
        if reply.timings.first_token is not None:
            ttft.append(reply.timings.first_token)
        total.append(reply.timings.total)
        if reply.mode in ("generated", "extract"):
            raw_s = raw_llama_seconds(bot, q, conv)
            ratios.append(reply.timings.total / raw_s)
        print(
            f"[{i + 1}/{len(questions)}] {q.id} {reply.mode:9s} correct={rows[-1]['correct']} "
            f"ttft={reply.timings.first_token} total={reply.timings.total}",
            flush=True,
        )

    n = len(rows)
    gen = [r for r in rows if r["mode"] == "generated" or r["mode"] == "extract"]
    cites = sum(r["citations"] for r in rows)
    raw_sent = sum(r["raw_sentences"] for r in rows)
    final_sent = sum(r["final_sentences"] for r in rows)
    d, h = score_retrieval(dense_results), score_retrieval(hybrid_results)
    summary = {
        "machine": machine(),
        "questions": n,
        "context_tokens": settings.llm.context_tokens,
        "verification": settings.verify.enabled,
        "modes": {
            m: sum(1 for r in rows if r["mode"] == m)
            for m in ("faq", "generated", "extract", "none")
        },
        "accuracy_final": round(sum(r["correct"] for r in rows) / n, 3),
        "accuracy_raw_model": round(sum(r["raw_correct"] for r in rows) / n, 3),
        "citation_precision": round(sum(r["good_citations"] for r in rows) / cites, 3)
        if cites
        else None,
        "unsupported_rate_before": round(sum(r["removed"] for r in gen) / raw_sent, 3)
        if raw_sent
        else None,
        "unsupported_rate_after": round(sum(r["unsupported_after"] for r in rows) / final_sent, 3)
        if final_sent
        else None,
        "dense": d.as_dict(),
        "hybrid": h.as_dict(),
        "ttft_p50": round(statistics.median(ttft), 3),
        "ttft_p95": round(pct(ttft, 95), 3),
        "total_p50": round(statistics.median(total), 3),
        "total_p95": round(pct(total, 95), 3),
        "overhead_ratio_p50": round(statistics.median(ratios), 3) if ratios else None,
        "overhead_ratio_mean": round(statistics.fmean(ratios), 3) if ratios else None,
    }
    for k, v in summary.items():
        print(f"{k}: {v}")
    name = f"answer_ctx{settings.llm.context_tokens}" + ("_noverify" if args.no_verify else "")
    print(f"saved {save(name, {'summary': summary, 'rows': rows})}")


if __name__ == "__main__":
    main()
