"""The ``supportbot`` command line.

Runtime commands live here; the ``ingest`` command is contributed by the ingest
package through the ``supportbot.commands`` entry point, so this package never imports
the pipeline (the dependency points one way only).
"""

from __future__ import annotations

import json
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from supportbot.config import Settings, load_settings
from supportbot.errors import SupportBotError
from supportbot.hygiene import strip_invisible

if TYPE_CHECKING:
    from supportbot.api import Reply, SupportBot

app = typer.Typer(
    name="supportbot",
    help="A support chatbot on a small local model. Nothing leaves this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: ./supportbot.toml)."),
]


def settings_from(config: Path | None) -> Settings:
    """Settings for a command, turning config errors into a clean exit."""
    try:
        return load_settings(config)
    except SupportBotError as exc:
        fail(exc)


def fail(exc: BaseException, code: int = 1) -> NoReturn:
    """Print an error the user can act on and exit (never a traceback)."""
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many passages.", min=1, max=100)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the passages the index returns for QUERY, with scores and sources."""
    from supportbot.factory import build_embedder, build_store
    from supportbot.retrieve import DenseRetriever

    settings = settings_from(config)
    try:
        hits = DenseRetriever(build_embedder(settings), build_store(settings)).search(query, k=k)
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "rank": h.rank,
                        "score": round(h.score, 4),
                        "id": h.chunk.id,
                        "source": h.chunk.source,
                        "title": h.chunk.title,
                        "heading": h.chunk.heading,
                        "page": h.chunk.page,
                        "kind": h.chunk.kind,
                        "question": h.chunk.question,
                        "matched": h.matched,
                        "text": h.chunk.text,
                    }
                    for h in hits
                ],
                indent=2,
            )
        )
        return
    if not hits:
        console.print("No passages found.")
        return
    table = Table(title=f"Top {len(hits)} for: {query}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("passage")
    for h in hits:
        where = h.chunk.source + (f" p.{h.chunk.page}" if h.chunk.page else "")
        if h.chunk.heading:
            where += f"\n[dim]{h.chunk.heading}[/]"
        text = h.chunk.text if len(h.chunk.text) < 300 else h.chunk.text[:297] + "..."
        if h.chunk.question:
            text = f"[bold]Q: {h.chunk.question}[/]\n{text}"
        table.add_row(str(h.rank), f"{h.score:.3f}", where, text)
    console.print(table)


@app.command()
def info(config: ConfigOption = None) -> None:
    """Show where the index is, which model built it, and what it holds."""
    from supportbot.factory import build_store

    settings = settings_from(config)
    try:
        store = build_store(settings)
        stamp = store.stamp()
        files = store.files()
        chunks = store.count()
    except SupportBotError as exc:
        fail(exc)
    console.print(f"store: {settings.store.url or settings.store_path}")
    console.print(f"collection: {store.name}")
    model = f"{stamp[0]} ({stamp[1]} dims)" if stamp else "(empty index)"
    console.print(f"embedding model: {model}")
    console.print(f"files: {len(files)}   chunks: {chunks}")
    for source, rec in sorted(files.items()):
        console.print(f"  {source}  {rec.chunk_count} chunks  {rec.ingested_at}")


ConversationOption = Annotated[
    str | None,
    typer.Option(
        "--conversation",
        help="Conversation id, so follow-up questions see the earlier turns (across runs only "
        "with SUPPORTBOT_CONVERSATION__BACKEND=sqlite).",
    ),
]


def _build_bot(config: Path | None) -> SupportBot:
    """The bot for a command, turning setup errors into a clean exit."""
    from supportbot.api import SupportBot

    settings = settings_from(config)
    try:
        return SupportBot.from_settings(settings)
    except SupportBotError as exc:
        fail(exc)


def _write(text: str) -> None:
    """Print ``text`` (no markup, no newline) and flush, for streamed pieces.

    Control characters are removed first: model output could carry terminal escape
    sequences (clear screen, fake prompts, hyperlinks) that a terminal would act on.
    """
    console.print(
        strip_invisible(text), end="", markup=False, emoji=False, highlight=False, soft_wrap=True
    )
    console.file.flush()


def _seconds(value: float | None) -> str:
    """``1.23s``, or ``-`` when the time was not measured."""
    return "-" if value is None else f"{value:.2f}s"


def _print_reply(reply: Reply, streamed: str) -> None:
    """Everything shown after the streamed text: corrections, sources, status, notices.

    Args:
        reply: the final reply of :meth:`SupportBot.stream`.
        streamed: the raw text printed while streaming (may differ from ``reply.answer``).
    """
    console.print()
    if reply.answer.strip() != streamed.strip():
        console.print("[bold]Verified answer:[/]")
        console.print(strip_invisible(reply.answer), markup=False, emoji=False, highlight=False)
    if reply.citations:
        console.print("[bold]Sources:[/]")
        for c in reply.citations:
            console.print(f"  [{c.n}] {c.label or c.source}", markup=False, highlight=False)
    t = reply.timings
    console.print(
        f"mode: {reply.mode}   confidence: {reply.confidence:.2f}   "
        f"first token: {_seconds(t.first_token)}   total: {_seconds(t.total)}",
        style="dim",
        markup=False,
        highlight=False,
    )
    for notice in reply.notices:
        console.print(notice, style="yellow", markup=False, highlight=False)
    if reply.removed:
        console.print(
            f"({len(reply.removed)} unsupported sentence(s) removed)",
            style="dim",
            markup=False,
            highlight=False,
        )


def _print_stream(
    bot: SupportBot, question: str, conversation_id: str | None, prefix: str = ""
) -> Reply:
    """Stream the answer to ``question`` onto the terminal and return the final reply.

    Args:
        bot: the bot that answers.
        question: the customer's message, as typed.
        conversation_id: the conversation it belongs to (None: a new one).
        prefix: markup printed once, just before the first piece of the answer.

    Returns:
        The verified :class:`Reply` (already printed, with its sources).

    Raises:
        SupportBotError: from the bot (an :class:`InputError` for an unusable message).
    """
    from supportbot.api import Reply

    pieces: list[str] = []
    for item in bot.stream(question, conversation_id):
        if isinstance(item, Reply):
            _print_reply(item, "".join(pieces))
            return item
        if not pieces and prefix:
            console.print(prefix, end="")
        pieces.append(item)
        _write(item)
    raise AssertionError("SupportBot.stream ended without a Reply")  # pragma: no cover


def _reply_json(reply: Reply) -> dict[str, Any]:
    """The machine-readable form of a reply (``ask --json``)."""
    return {
        "question": reply.question,
        "answer": reply.answer,
        "mode": reply.mode,
        "confidence": reply.confidence,
        "verified": reply.verified,
        "conversation_id": reply.conversation_id,
        "citations": [
            {
                "n": c.n,
                "source": c.source,
                "title": c.title,
                "heading": c.heading,
                "page": c.page,
                "snippet": c.snippet,
                "score": c.score,
            }
            for c in reply.citations
        ],
        "removed": [{"sentence": r.sentence, "reason": r.reason} for r in reply.removed],
        "notices": list(reply.notices),
        "timings": {
            "retrieval": reply.timings.retrieval,
            "first_token": reply.timings.first_token,
            "total": reply.timings.total,
        },
    }


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    conversation: ConversationOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """Answer QUESTION from the knowledge base, streaming it, with its sources."""
    bot = _build_bot(config)
    try:
        if as_json:
            reply = bot.ask(question, conversation)
            print(json.dumps(_reply_json(reply), indent=2))
        else:
            _print_stream(bot, question, conversation)
    except SupportBotError as exc:
        fail(exc)


@app.command()
def chat(conversation: ConversationOption = None, config: ConfigOption = None) -> None:
    """Talk to the bot in the terminal; follow-up questions see the earlier turns."""
    import uuid

    from supportbot.hygiene import InputError

    bot = _build_bot(config)
    conv_id = conversation or uuid.uuid4().hex
    console.print(
        "[bold]supportbot chat[/]: ask a question. Quit with an empty line, 'exit' or Ctrl-D.",
        highlight=False,
    )
    console.print(f"conversation: {conv_id}", style="dim", markup=False, highlight=False)
    while True:
        try:
            line = console.input("[bold]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        if line.strip().lower() in ("", "exit", "quit"):
            break
        try:
            _print_stream(bot, line, conv_id, prefix="[bold]bot>[/] ")
        except InputError as exc:
            console.print(str(exc), style="yellow", markup=False, highlight=False)
        except KeyboardInterrupt:
            console.print("\n(interrupted)", style="dim", markup=False)
            break
        except SupportBotError as exc:
            fail(exc)


def _configs(
    settings: Settings, models: list[str] | None, budgets: list[int] | None
) -> list[tuple[str, Settings]]:
    """One (label, settings) per --model x --context-tokens combination."""
    model_values: list[str | None] = list(models) if models else [None]
    budget_values: list[int | None] = list(budgets) if budgets else [None]
    out: list[tuple[str, Settings]] = []
    for model in model_values:
        for budget in budget_values:
            llm: dict[str, Any] = {}
            parts: list[str] = []
            if model is not None:
                if model == "default":
                    llm["model_path"] = None
                else:
                    path = Path(model).expanduser()
                    if not path.is_file():
                        fail(SupportBotError(f"--model {model}: no such GGUF file."))
                    llm["model_path"] = path
                parts.append("default" if model == "default" else Path(model).name)
            if budget is not None:
                llm["context_tokens"] = budget
                parts.append(f"ctx={budget}")
            label = " ".join(parts) or "current settings"
            out.append(
                (label, settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)}))
            )
    return out


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _print_eval(reports: list[Any], out: Console) -> None:
    """Side-by-side tables: one column per configuration."""
    table = Table(title="supportbot eval", show_lines=False)
    table.add_column("metric")
    for r in reports:
        table.add_column(r.label, justify="right")

    def row(name: str, get: Any) -> None:
        table.add_row(name, *(_fmt(get(r)) for r in reports))

    row("questions", lambda r: r.questions)
    for key in ("n", "recall@1", "recall@5", "recall@10", "mrr"):
        row(f"retrieval {key}", lambda r, key=key: r.retrieval.get(key))
    row("recall in bot's sources", lambda r: r.retrieval_bot_hits.get("recall@10"))
    if not all(r.retrieval_only for r in reports):
        row("accuracy (all facts)", lambda r: r.accuracy)
        row("  judged questions", lambda r: r.accuracy_n)
        row("citation precision", lambda r: r.citation_precision)
        row("unsupported-sentence rate", lambda r: r.unsupported_rate)
        row("escalate-labelled handled", lambda r: r.escalate_handled)
    for key in ("precision", "recall", "f1", "false_escalation_rate"):
        row(f"escalation {key}", lambda r, key=key: r.escalation.get(key))
    if not all(r.retrieval_only for r in reports):
        row("ttft p50 (s)", lambda r: r.ttft_p50)
        row("ttft p95 (s)", lambda r: r.ttft_p95)
        row("total p50 (s)", lambda r: r.total_p50)
        row("total p95 (s)", lambda r: r.total_p95)
        row("tokens/s", lambda r: r.tokens_per_s)
    row("peak memory (MB)", lambda r: r.peak_memory_mb)
    row("wall time (s)", lambda r: r.wall_seconds)
    row("modes", lambda r: ", ".join(f"{k}={v}" for k, v in r.modes.items()))
    out.print(table)

    codes = sorted({c for r in reports for c in r.per_reason})
    if codes:
        reasons = Table(title="escalation per reason (precision / recall / F1)")
        reasons.add_column("reason")
        for r in reports:
            reasons.add_column(r.label, justify="right")
        for code in codes:
            cells = []
            for r in reports:
                m = r.per_reason.get(code)
                cells.append(
                    "-"
                    if m is None
                    else f"{_fmt(m['precision'])} / {_fmt(m['recall'])} / {_fmt(m['f1'])}"
                )
            reasons.add_row(code, *cells)
        out.print(reasons)
    for r in reports:
        confusion = Table(title=f"decisions, {r.label} (rows: labelled, columns: actual)")
        confusion.add_column("labelled")
        names = list(r.confusion)
        for name in names:
            confusion.add_column(name, justify="right")
        for expected in names:
            confusion.add_row(expected, *(str(r.confusion[expected][a]) for a in names))
        out.print(confusion)
    if any(r.retrieval_only for r in reports):
        out.print(
            "retrieval-only: nothing generated; UNSUPPORTED_ANSWER and LOW_CONFIDENCE cannot "
            "fire, so escalation recall is a lower bound.",
            style="dim",
        )


def _advance(bar: Any, task: Any, _question: object) -> None:
    bar.advance(task)


@app.command(name="eval")
def eval_(
    questions: Annotated[Path, typer.Argument(help="Labelled question set (JSON lines).")],
    kb: Annotated[
        list[Path] | None,
        typer.Option("--kb", help="Ingest these files/folders into the index first."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="GGUF file to compare ('default': the packaged model); repeat for several.",
        ),
    ] = None,
    context_tokens: Annotated[
        list[int] | None,
        typer.Option("--context-tokens", help="Source token budget; repeat for several.", min=64),
    ] = None,
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Retrieve and decide only; no generation.")
    ] = False,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the full report as JSON here ('-': stdout).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="PNG scatter of accuracy vs p50 latency.")
    ] = None,
    min_recall5: Annotated[float | None, typer.Option("--min-recall5")] = None,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy")] = None,
    min_escalation_recall: Annotated[float | None, typer.Option("--min-escalation-recall")] = None,
    max_false_escalation: Annotated[
        float | None,
        typer.Option("--max-false-escalation", help="Most share of non-escalate items escalated."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Only the first N questions.", min=0)] = 0,
    config: ConfigOption = None,
) -> None:
    """Measure retrieval, answers, escalation and latency on a labelled question set.

    Exits 1 when a --min-*/--max-* threshold is missed, listing which.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from supportbot.evalset import load_questions
    from supportbot.evaluate import check_thresholds, evaluate, plot_reports

    settings = settings_from(config)
    try:
        items = load_questions(questions)
    except SupportBotError as exc:
        fail(exc)
    if limit:
        items = items[:limit]
    configs = _configs(settings, model, context_tokens)
    to_stdout = json_out == "-"
    out = err_console if to_stdout else console
    if kb:
        try:
            # importlib, not an import statement: supportbot never depends on the ingest
            # package (tests/test_architecture.py); it is only used here when installed.
            import importlib

            run_ingest = importlib.import_module("ingest").run_ingest
        except ImportError:
            fail(SupportBotError("--kb needs the ingest package (pip install -e .)."))
        try:
            report = run_ingest(kb, settings)
        except SupportBotError as exc:
            fail(exc)
        if not report.ok:
            fail(
                SupportBotError(
                    f"ingesting {', '.join(map(str, kb))} failed; see supportbot ingest."
                )
            )
        out.print(f"ingested {', '.join(map(str, kb))}", style="dim")
    reports = []
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            for label, cfg in configs:
                task = bar.add_task(label, total=len(items))
                reports.append(
                    evaluate(
                        items,
                        cfg,
                        retrieval_only=retrieval_only,
                        progress=partial(_advance, bar, task),
                        label=label,
                    )
                )
    except SupportBotError as exc:
        fail(exc)
    _print_eval(reports, out)
    payload = {
        "questions_file": str(questions),
        "configs": [r.to_dict() for r in reports],
    }
    if json_out:
        text = json.dumps(payload, indent=2)
        if to_stdout:
            print(text)
        else:
            Path(json_out).write_text(text + "\n", encoding="utf-8")
            out.print(f"report written to {json_out}", style="dim")
    if plot:
        try:
            plot_reports(reports, str(plot))
        except ImportError:
            fail(SupportBotError("--plot needs matplotlib (pip install matplotlib)."))
        except ValueError as exc:
            fail(SupportBotError(str(exc)))
        out.print(f"plot written to {plot}", style="dim")
    failures = check_thresholds(
        reports,
        {
            "--min-recall5": min_recall5,
            "--min-accuracy": min_accuracy,
            "--min-escalation-recall": min_escalation_recall,
            "--max-false-escalation": max_false_escalation,
        },
    )
    if failures:
        err_console.print("[bold red]thresholds not met:[/]")
        for line in failures:
            err_console.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1)


def _register_plugins() -> None:
    for ep in entry_points(group="supportbot.commands"):
        try:
            ep.load()(app)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not kill the CLI
            err_console.print(f"[yellow]warning:[/] command plugin {ep.name!r} failed: {exc}")


def main() -> None:
    """Entry point of the ``supportbot`` script."""
    _register_plugins()
    app()
