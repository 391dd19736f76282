"""The ``supportbot eval`` command, contributed through the ``supportbot.commands`` entry point.

The runtime CLI (:mod:`supportbot.cli`) never imports this package; it loads the command
the way it loads ``ingest``.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from supportbot.cli import ConfigOption, console, err_console, fail, settings_from
from supportbot.config import Settings
from supportbot.errors import ConfigError, SupportBotError

__all__ = ["register"]


def _model(settings: Settings, model: str) -> tuple[str, dict[str, Any]]:
    """The label and ``llm`` fields of one ``--model``: 'default', a pack name or a GGUF.

    A pack must be installed and verified now, so a missing one stops the run before the
    first model has spent its time.
    """
    from supportbot.models import get_pack, resolve_pack

    if model == "default":
        return "default", {"model_path": None, "model": "default"}
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            fail(SupportBotError(f"--model {model}: no such GGUF file."))
        return path.name, {"model_path": path, "model": "default"}
    try:
        pack = get_pack(model)
        resolve_pack(pack, settings.models_path)
    except ConfigError as exc:
        fail(SupportBotError(f"--model {model}: {exc}"))
    return pack.name, {"model_path": None, "model": pack.name}


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
                name, llm = _model(settings, model)
                parts.append(name)
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


def _with_ci(value: object, ci: object) -> str:
    """``0.800 [0.69, 0.88]``: a figure with its 95% interval."""
    if value is None:
        return "-"
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return f"{_fmt(value)} [{ci[0]:.2f}, {ci[1]:.2f}]"
    return _fmt(value)


def _pair(scope: dict[str, Any]) -> str:
    return f"{scope['in_scope']} / {scope['out_of_scope']}" if scope else "-"


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
        row(
            f"retrieval {key}",
            lambda r, key=key: _with_ci(r.retrieval.get(key), r.retrieval_ci.get(key)),
        )
    row("recall in bot's sources", lambda r: r.retrieval_bot_hits.get("recall@10"))
    if not all(r.retrieval_only for r in reports):
        row("accuracy (all facts)", lambda r: r.accuracy)
        row("  judged questions", lambda r: r.accuracy_n)
        row("citation precision", lambda r: r.citation_precision)
        row("unsupported-sentence rate", lambda r: r.unsupported_rate)
        row("escalate-labelled handled", lambda r: r.escalate_handled)
        if any(r.answer_scored for r in reports):
            row(
                "token F1 vs answer_text (answered)",
                lambda r: _with_ci(r.answer_f1, r.answer_f1_ci),
            )
            row("token recall vs answer_text (answered)", lambda r: r.answer_recall)
            row("token F1 (all; no answer = 0)", lambda r: r.answer_f1_all)
            row(
                "  answered / with answer_text",
                lambda r: f"{r.answer_scored_answered} / {r.answer_scored}",
            )
        row("unsupported sentences (removed)", lambda r: r.unsupported_sentences)
        row("no answer (refused)", lambda r: r.refusals)
        row("handed over", lambda r: r.handoffs)
    for key in ("precision", "recall", "f1", "false_escalation_rate"):
        row(f"escalation {key}", lambda r, key=key: r.escalation.get(key))
    if any(r.scope for r in reports):
        row("in scope / out of scope", lambda r: _pair(r.scope))
        for key, name in (
            ("auroc", "relevance AUROC (in vs out)"),
            ("out_of_scope_answered", "out-of-scope answered"),
            ("in_scope_handed_over", "in-scope handed over"),
        ):
            row(name, lambda r, key=key: _with_ci(r.scope.get(key), r.scope.get(f"{key}_ci")))
    if not all(r.retrieval_only for r in reports):
        row("ttft p50 (s)", lambda r: r.ttft_p50)
        row("ttft p95 (s)", lambda r: r.ttft_p95)
        row("total p50 (s)", lambda r: r.total_p50)
        row("total p95 (s)", lambda r: r.total_p95)
        row("tokens/s", lambda r: r.tokens_per_s)
    row("peak resident memory (MB)", lambda r: r.peak_memory_mb)
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


def _free_models() -> None:
    """Unload the model just measured before the next one loads (bounded memory)."""
    import gc

    from supportbot.generate import unload_models

    unload_models()
    gc.collect()


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
            help="Model to compare: 'default', a model pack (supportbot models list) or a "
            "GGUF file; repeat for several, run one at a time.",
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
        Path | None,
        typer.Option(
            "--plot",
            help="PNG of the configurations side by side (default with --json and several "
            "configurations: next to the JSON report).",
        ),
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

    from evaluate.questions import load_questions
    from evaluate.run import check_thresholds, evaluate, plot_reports

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
        from ingest import run_ingest  # offline tooling may use the offline pipeline

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
                if len(configs) > 1:
                    _free_models()  # one model in memory at a time
    except SupportBotError as exc:
        fail(exc)
    _print_eval(reports, out)
    payload = {
        "questions_file": str(questions),
        "configs": [r.to_dict() for r in reports],
    }
    if plot is None and json_out and not to_stdout and len(reports) > 1:
        plot = Path(json_out).with_suffix(".png")
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


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the ``supportbot`` command (the entry-point hook)."""
    app.command(name="eval")(eval_)
