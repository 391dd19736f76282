"""Evaluate the bot on a labelled question set (``supportbot eval``).

Every question goes through the same code path as the web UI and the CLI:
:meth:`SupportBot.ask` on a bot built by :meth:`SupportBot.from_settings`, each question in
its own conversation, its labelled history appended to that conversation first. The
report covers:

* retrieval: recall@1/5/10 and MRR over questions with gold passages, on a k=10 search of
  the query the bot actually used (``Reply.trace.retrieval_query``), plus recall over the
  passages the bot gave the model (``Reply.trace.hits``, ``retrieval.top_k`` of them);
* answers: expected-facts accuracy (every fact in the final answer, case-insensitive),
  citation precision (cited passage is a gold location or holds an expected fact),
  unsupported-sentence rate (sentences the verifier removed / sentences the model wrote)
  and, on questions labelled ``escalate``, the share the bot escalated or refused;
* escalation: precision/recall/F1 of "escalate" overall and per reason code, and the
  confusion of the labelled decision (answer/clarify/escalate) against what the bot did;
* answer overlap: when a question has an ``answer_text``, token F1 and recall of the
  answer against it (:func:`evaluate.stats.token_scores`) over the questions the bot
  answered, and F1 over all of them with a non-answer scoring 0; how many sentences the
  verifier removed, how many questions got no answer, how many were handed over;
* latency: time to first token and total (p50/p95), generation throughput and the peak
  resident memory of the process while this configuration ran (sampled, so models
  measured in turn in one process each get their own figure).

With ``retrieval_only`` nothing is generated: the retriever and
:meth:`SupportBot.plan` (the step :meth:`SupportBot.stream` runs first) decide without
an answer, so the answer-stage reasons
(``UNSUPPORTED_ANSWER``, ``LOW_CONFIDENCE``) never fire and the escalation figures are
those of the message signals plus ``NO_RELEVANT_CONTEXT``.

This module never imports the ingest package: the CLI ingests ``--kb`` before calling it.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from evaluate.questions import EvalQuestion, first_gold_rank, score_retrieval
from evaluate.stats import auroc, bootstrap_ci, token_scores, wilson
from supportbot.config import Settings
from supportbot.conversation import Turn
from supportbot.escalation import Reason
from supportbot.types import Hit
from supportbot.verify import split_sentences

DECISIONS = ("answer", "clarify", "escalate")
#: Reasons that need an answer to fire (absent from a retrieval-only run).
ANSWER_STAGE_REASONS = (Reason.UNSUPPORTED_ANSWER.value, Reason.LOW_CONFIDENCE.value)
RECALL_KS = (1, 5, 10)
#: Reply modes that give the customer an answer (the others: none, clarify, handoff).
ANSWERED_MODES = ("faq", "generated", "extract")


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile ``p`` (0..100) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def has_facts(text: str, question: EvalQuestion) -> bool:
    """True when ``text`` holds every expected fact of ``question`` (case-insensitive)."""
    low = text.lower()
    return all(f.lower() in low for f in question.facts)


def actual_decision(mode: str) -> str:
    """Map a ``Reply.mode`` onto the labelled decisions: handoff->escalate, clarify, answer."""
    if mode == "handoff":
        return "escalate"
    if mode == "clarify":
        return "clarify"
    return "answer"


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def resident_memory_mb() -> float | None:
    """Resident memory of this process now, in MB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize() / (1024 * 1024)


class PeakMemory:
    """The highest resident memory seen while a block runs, sampled every ``interval`` s.

    ``ru_maxrss`` only ever grows, so after a large model it would be the figure of
    every later one too; sampling gives each configuration its own peak. Falls back to
    ``ru_maxrss`` where resident memory cannot be read.

    Example:
        >>> with PeakMemory() as peak:
        ...     run_questions()
        >>> peak.mb
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-memory")

    def _sample(self) -> None:
        while True:
            now = resident_memory_mb()
            if now is not None and (self._peak is None or now > self._peak):
                self._peak = now
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        """Peak resident memory in MB (``ru_maxrss`` when it could not be sampled)."""
        return round(self._peak, 1) if self._peak is not None else peak_memory_mb()


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int | None]:
    """Precision, recall and F1 with their counts (None where undefined)."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {
        "precision": _r(precision),
        "recall": _r(recall),
        "f1": _r(f1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class QuestionResult:
    """What happened to one question."""

    id: str
    expected: str
    actual: str
    mode: str
    expected_reasons: list[str]
    reasons: list[str]
    gold_rank: int | None = None  # in the k=10 search; None: no gold found (or no gold)
    gold_rank_bot: int | None = None  # among Reply.hits
    correct: bool | None = None  # all facts present (None: no facts or not generated)
    citations: int = 0
    good_citations: int = 0
    model_sentences: int = 0
    removed: int = 0
    first_token: float | None = None
    total: float | None = None
    tokens: int = 0
    generation_seconds: float = 0.0
    relevance: float | None = None  # the calibrated relevance of the best passage
    answer: str = ""  # what the customer was shown
    has_reference: bool = False  # labelled answer with an answer_text to score against
    answer_f1: float | None = None  # token F1 against answer_text (None: not answered)
    answer_recall: float | None = None


@dataclass
class EvalReport:
    """Figures for one configuration over one question set (see the module docstring)."""

    label: str
    questions: int
    retrieval_only: bool
    model: str
    context_tokens: int
    escalation_enabled: bool
    retrieval: dict[str, float | int] = field(default_factory=dict)
    retrieval_bot_hits: dict[str, float | int] = field(default_factory=dict)
    retrieval_misses: list[str] = field(default_factory=list)
    retrieval_ci: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    accuracy_n: int = 0
    citation_precision: float | None = None
    unsupported_rate: float | None = None
    escalate_handled: float | None = None  # labelled escalate -> escalated or refused
    answer_f1: float | None = None  # mean token F1, answered questions with answer_text
    answer_f1_ci: tuple[float, float] | None = None
    answer_recall: float | None = None
    answer_f1_all: float | None = None  # every question with answer_text, no answer = 0
    answer_scored: int = 0  # questions with answer_text (answered or not)
    answer_scored_answered: int = 0
    unsupported_sentences: int = 0  # sentences the verifier removed (reply.trace.removed)
    refusals: int = 0  # replies with no answer (mode "none")
    handoffs: int = 0  # replies that handed the conversation over (mode "handoff")
    escalation: dict[str, float | int | None] = field(default_factory=dict)
    per_reason: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    total_p50: float | None = None
    total_p95: float | None = None
    tokens_per_s: float | None = None
    peak_memory_mb: float = 0.0  # resident memory while this configuration ran
    wall_seconds: float = 0.0
    rows: list[QuestionResult] = field(default_factory=list)

    @property
    def recall5(self) -> float | None:
        """Recall@5, the figure ``--min-recall5`` checks."""
        value = self.retrieval.get("recall@5")
        return None if value is None else float(value)

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        """JSON-ready form (``rows``: include one entry per question)."""
        out = asdict(self)
        if not rows:
            out.pop("rows")
        return out


def _citation_ok(citation: Any, question: EvalQuestion, hits: Sequence[Hit]) -> bool:
    """Cited passage is a gold location, or it (snippet or full text) holds a fact."""
    facts = [f.lower() for f in question.facts]
    if any(f in citation.snippet.lower() for f in facts):
        return True
    for hit in hits:
        if hit.chunk.id == citation.chunk_id:
            if any(g.matches(hit.chunk) for g in question.gold):
                return True
            return any(f in hit.chunk.text.lower() for f in facts)
    return False


def evaluate(
    questions: Sequence[EvalQuestion],
    settings: Settings,
    *,
    retrieval_only: bool = False,
    progress: Callable[[EvalQuestion], None] | None = None,
    label: str | None = None,
) -> EvalReport:
    """Run ``questions`` through a bot built from ``settings`` and score the outcome.

    Args:
        questions: the labelled set (:func:`evaluate.questions.load_questions`).
        settings: the configuration to measure; its index must already hold the KB.
        retrieval_only: retrieve and decide only, generate nothing (fast).
        progress: called after each question (e.g. to advance a progress bar).
        label: column name in comparisons (default: the model and context budget).

    Raises:
        SupportBotError: the bot could not be built or the index is empty.
    """
    with PeakMemory() as peak:
        report = _run(questions, settings, retrieval_only, progress, label)
    report.peak_memory_mb = peak.mb
    return report


def _run(
    questions: Sequence[EvalQuestion],
    settings: Settings,
    retrieval_only: bool,
    progress: Callable[[EvalQuestion], None] | None,
    label: str | None,
) -> EvalReport:
    from supportbot.bot import SupportBot

    started = time.perf_counter()
    bot = SupportBot.from_settings(settings)
    run = uuid.uuid4().hex[:8]
    llm = settings.llm
    model = str(llm.model_path) if llm.model_path else llm.model
    report = EvalReport(
        label=label or f"{model} ctx={settings.llm.context_tokens}",
        questions=len(questions),
        retrieval_only=retrieval_only,
        model=model if settings.llm.backend == "llama-cpp" else settings.llm.backend,
        context_tokens=settings.llm.context_tokens,
        escalation_enabled=settings.escalation.enabled,
    )
    search: list[tuple[EvalQuestion, Sequence[Hit]]] = []
    bot_hits: list[tuple[EvalQuestion, Sequence[Hit]]] = []
    k = max(RECALL_KS)
    for q in questions:
        history = [Turn(t.role, t.content) for t in q.history]
        row = QuestionResult(q.id, q.decision, "", "", list(q.reasons), [])
        if retrieval_only:
            plan = bot.plan(q.question, history, k=k)
            retrieval, decision = plan.retrieval, plan.decision
            row.relevance = retrieval.top_score
            row.mode = decision.action
            row.actual = decision.action
            row.reasons = [r.value for r in decision.reasons]
            hits10 = retrieval.hits
            used = retrieval.hits[: settings.retrieval.top_k]
        else:
            conv = f"eval-{run}-{q.id}"
            bot.restore(conv, history)
            reply = bot.ask(q.question, conversation_id=conv)
            row.mode = reply.mode
            row.answer = reply.answer
            row.actual = actual_decision(reply.mode)
            row.reasons = [r.value for r in reply.escalation.reasons] if reply.escalation else []
            hits10 = bot.search(reply.trace.retrieval_query, k=k).hits
            used = reply.trace.hits
            row.relevance = max((h.score for h in used), default=0.0)
            if q.facts and q.decision == "answer":
                row.correct = has_facts(reply.answer, q)
            if q.answer_text and q.decision == "answer":
                row.has_reference = True
                if reply.mode in ANSWERED_MODES:
                    overlap = token_scores(reply.answer, q.answer_text)
                    row.answer_f1, row.answer_recall = overlap.f1, overlap.recall
            if q.decision == "answer":
                row.citations = len(reply.citations)
                row.good_citations = sum(
                    1 for c in reply.citations if _citation_ok(c, q, reply.trace.hits)
                )
            if reply.trace.raw_answer:
                row.model_sentences = len(split_sentences(reply.trace.raw_answer))
                row.removed = len(reply.trace.removed)
                row.tokens = reply.trace.tokens
                row.generation_seconds = max(0.0, reply.timings.total - reply.timings.retrieval)
            row.first_token = reply.timings.first_token
            row.total = reply.timings.total
        if q.gold:
            row.gold_rank = first_gold_rank(q, hits10)
            row.gold_rank_bot = first_gold_rank(q, used)
        search.append((q, hits10))
        bot_hits.append((q, used))
        report.rows.append(row)
        if progress is not None:
            progress(q)
    _summarise(report, search, bot_hits)
    report.wall_seconds = round(time.perf_counter() - started, 2)
    return report


def _summarise(
    report: EvalReport,
    search: Sequence[tuple[EvalQuestion, Sequence[Hit]]],
    bot_hits: Sequence[tuple[EvalQuestion, Sequence[Hit]]],
) -> None:
    rows = report.rows
    scores = score_retrieval(search, RECALL_KS)
    report.retrieval = scores.as_dict()
    report.retrieval_misses = scores.misses
    report.retrieval_bot_hits = score_retrieval(bot_hits, RECALL_KS).as_dict()
    ranked = [r for r in rows if any(q.id == r.id and q.answerable for q, _ in search)]
    for k in RECALL_KS:
        report.retrieval_ci[f"recall@{k}"] = bootstrap_ci(
            ranked,
            partial(_recall_at, k=k),
        )
    report.retrieval_ci["mrr"] = bootstrap_ci(ranked, _mrr)
    report.scope = _scope(rows)

    judged = [r for r in rows if r.correct is not None]
    report.accuracy_n = len(judged)
    if judged:
        report.accuracy = _r(sum(1 for r in judged if r.correct) / len(judged))
    cites = sum(r.citations for r in rows)
    if cites:
        report.citation_precision = _r(sum(r.good_citations for r in rows) / cites)
    sentences = sum(r.model_sentences for r in rows)
    if sentences:
        report.unsupported_rate = _r(sum(r.removed for r in rows) / sentences)
    labelled = [r for r in rows if r.expected == "escalate"]
    if labelled:
        handled = sum(1 for r in labelled if r.actual == "escalate" or r.mode == "none")
        report.escalate_handled = _r(handled / len(labelled))
    referenced = [r for r in rows if r.has_reference]
    answered = [r for r in referenced if r.answer_f1 is not None]
    report.answer_scored, report.answer_scored_answered = len(referenced), len(answered)
    if answered:
        report.answer_f1 = _r(_mean_f1(answered))
        report.answer_f1_ci = bootstrap_ci(answered, _mean_f1)
        report.answer_recall = _r(sum(r.answer_recall or 0.0 for r in answered) / len(answered))
    if referenced:
        report.answer_f1_all = _r(sum(r.answer_f1 or 0.0 for r in referenced) / len(referenced))
    report.unsupported_sentences = sum(r.removed for r in rows)
    report.refusals = sum(1 for r in rows if r.mode == "none")
    report.handoffs = sum(1 for r in rows if r.mode == "handoff")

    tp = sum(1 for r in rows if r.expected == "escalate" and r.actual == "escalate")
    fp = sum(1 for r in rows if r.expected != "escalate" and r.actual == "escalate")
    fn = sum(1 for r in rows if r.expected == "escalate" and r.actual != "escalate")
    negatives = sum(1 for r in rows if r.expected != "escalate")
    report.escalation = {
        **prf(tp, fp, fn),
        "false_escalation_rate": _r(fp / negatives) if negatives else None,
    }
    for reason in Reason:
        code = reason.value
        if report.retrieval_only and code in ANSWER_STAGE_REASONS:
            continue
        rtp = sum(1 for r in rows if code in r.expected_reasons and code in r.reasons)
        rfp = sum(1 for r in rows if code not in r.expected_reasons and code in r.reasons)
        rfn = sum(1 for r in rows if code in r.expected_reasons and code not in r.reasons)
        if rtp + rfp + rfn:
            report.per_reason[code] = prf(rtp, rfp, rfn)
    report.confusion = {
        e: {a: sum(1 for r in rows if r.expected == e and r.actual == a) for a in DECISIONS}
        for e in DECISIONS
    }
    modes: dict[str, int] = {}
    for r in rows:
        modes[r.mode] = modes.get(r.mode, 0) + 1
    report.modes = dict(sorted(modes.items()))

    if not report.retrieval_only:
        ttft = [r.first_token for r in rows if r.first_token is not None]
        totals = [r.total for r in rows if r.total is not None]
        report.ttft_p50, report.ttft_p95 = _r(percentile(ttft, 50)), _r(percentile(ttft, 95))
        report.total_p50 = _r(percentile(totals, 50))
        report.total_p95 = _r(percentile(totals, 95))
        gen_seconds = sum(r.generation_seconds for r in rows if r.tokens)
        if gen_seconds > 0:
            report.tokens_per_s = _r(sum(r.tokens for r in rows) / gen_seconds, 2)
    report.peak_memory_mb = peak_memory_mb()


def _mean_f1(rows: Sequence[QuestionResult]) -> float | None:
    return sum(r.answer_f1 or 0.0 for r in rows) / len(rows) if rows else None


def _recall_at(rows: Sequence[QuestionResult], k: int) -> float | None:
    if not rows:
        return None
    return sum(1 for r in rows if r.gold_rank is not None and r.gold_rank <= k) / len(rows)


def _mrr(rows: Sequence[QuestionResult]) -> float | None:
    if not rows:
        return None
    return sum(1.0 / r.gold_rank for r in rows if r.gold_rank) / len(rows)


def _scope(rows: Sequence[QuestionResult]) -> dict[str, Any]:
    """In scope (labelled answer) against out of scope (labelled NO_RELEVANT_CONTEXT).

    How well the relevance score separates them (AUROC), and what the bot did: the
    share of out-of-scope questions it answered anyway, and the share of in-scope
    questions it handed to a person. Each with its 95% interval.
    """
    inside = [r for r in rows if r.expected == "answer"]
    outside = [r for r in rows if Reason.NO_RELEVANT_CONTEXT.value in r.expected_reasons]
    if not inside or not outside:
        return {}
    answered = sum(1 for r in outside if r.actual == "answer")
    handed = sum(1 for r in inside if r.actual == "escalate")
    scored = [r for r in [*inside, *outside] if r.relevance is not None]

    def area(sample: Sequence[QuestionResult]) -> float | None:
        pos = [r.relevance for r in sample if r.expected == "answer" and r.relevance is not None]
        neg = [r.relevance for r in sample if r.expected != "answer" and r.relevance is not None]
        return auroc(pos, neg)

    value = area(scored)
    return {
        "in_scope": len(inside),
        "out_of_scope": len(outside),
        "auroc": _r(value),
        "auroc_ci": bootstrap_ci(scored, area) if value is not None else None,
        "out_of_scope_answered": _r(answered / len(outside)),
        "out_of_scope_answered_ci": wilson(answered, len(outside)),
        "in_scope_handed_over": _r(handed / len(inside)),
        "in_scope_handed_over_ci": wilson(handed, len(inside)),
    }


THRESHOLDS: dict[str, tuple[bool, Callable[[EvalReport], float | None]]] = {
    "--min-recall5": (True, lambda r: r.recall5),
    "--min-accuracy": (True, lambda r: r.accuracy),
    "--min-escalation-recall": (True, lambda r: _num(r.escalation.get("recall"))),
    "--max-false-escalation": (False, lambda r: _num(r.escalation.get("false_escalation_rate"))),
}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def check_thresholds(reports: Sequence[EvalReport], limits: dict[str, float | None]) -> list[str]:
    """Messages for every threshold a report misses (an unmeasured figure misses too).

    Args:
        reports: one per configuration.
        limits: CLI option name (a key of :data:`THRESHOLDS`) -> value, None: not set.
    """
    failures: list[str] = []
    for option, limit in limits.items():
        if limit is None:
            continue
        minimum, get = THRESHOLDS[option]
        for report in reports:
            value = get(report)
            if value is None:
                failures.append(f"{report.label}: {option} {limit}: not measured in this run")
            elif (value < limit) if minimum else (value > limit):
                word = "below" if minimum else "above"
                failures.append(f"{report.label}: {option} {limit}: {value:.4f} is {word} it")
    return failures


def plot_reports(reports: Sequence[EvalReport], path: str) -> None:
    """PNG of the configurations side by side: quality, latency, failures, memory.

    Four panels of grouped bars, one colour per configuration: answer quality (token F1
    and recall against ``answer_text``, expected-facts accuracy), time to first token and
    total (p50/p95), sentences removed / no answer / handed over, and peak memory.

    Raises:
        ValueError: no report has latency figures (e.g. a retrieval-only run).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in reports if r.total_p50 is not None]
    if not shown:
        raise ValueError("nothing to plot: no configuration has answers and latency figures")
    panels: list[tuple[str, list[tuple[str, Callable[[EvalReport], float | None]]]]] = [
        (
            "answer quality (0-1)",
            [
                ("token F1\n(answered)", lambda r: r.answer_f1),
                ("token recall\n(answered)", lambda r: r.answer_recall),
                ("token F1\n(all)", lambda r: r.answer_f1_all),
                ("facts\naccuracy", lambda r: r.accuracy),
            ],
        ),
        (
            "latency (s)",
            [
                ("first token\np50", lambda r: r.ttft_p50),
                ("first token\np95", lambda r: r.ttft_p95),
                ("total\np50", lambda r: r.total_p50),
                ("total\np95", lambda r: r.total_p95),
            ],
        ),
        (
            "per question set (count)",
            [
                ("unsupported\nsentences", lambda r: r.unsupported_sentences),
                ("no answer", lambda r: r.refusals),
                ("handed over", lambda r: r.handoffs),
            ],
        ),
        ("peak memory (MB)", [("resident", lambda r: r.peak_memory_mb)]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    width = 0.8 / len(shown)
    for ax, (title, metrics) in zip(axes.flat, panels, strict=True):
        for i, report in enumerate(shown):
            xs = [m + (i - (len(shown) - 1) / 2) * width for m in range(len(metrics))]
            values = [get(report) for _, get in metrics]
            heights = [0.0 if v is None else float(v) for v in values]
            bars = ax.bar(xs, heights, width, label=report.label)
            for bar, v in zip(bars, values, strict=True):
                if v is None:
                    text = "-"
                else:
                    text = f"{v:,.0f}" if isinstance(v, int) or v >= 100 else f"{v:.3g}"
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_xticks(range(len(metrics)), [name for name, _ in metrics], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(shown), 4), fontsize=9)
    fig.suptitle(f"supportbot eval: {len(shown)} configuration(s), {shown[0].questions} questions")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
