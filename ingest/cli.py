"""``supportbot ingest`` / ``python -m ingest``: the ingestion command line.

Exit codes: 0 all good, 1 the run could not happen (settings, store, lock, model), or a
``--release`` id was not a quarantined passage, 2 the run happened but some files failed
(each is listed with its reason), 3 ``--verify`` found problems.

``--quarantined`` lists the passages held back because they address the assistant
(``ingest/quarantine.py``); ``--release CHUNK_ID`` lets one be retrieved again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from ingest.pipeline import FileResult, IngestReport, Progress, run_ingest
from ingest.quarantine import QuarantinedPassage, excerpt, list_quarantined, release
from ingest.tune import TuneProgress, TuneReport
from ingest.verify import VerifyReport, verify_index
from supportbot.cli import ConfigOption, fail, settings_from
from supportbot.errors import SupportBotError

console = Console()


class RichProgressBar(Progress):
    """Files done out of total, with chunks embedded per second."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.files: TaskID | None = None
        self.chunks = bar.add_task("chunks embedded", total=None, rate="")

    def start(self, total_files: int) -> None:
        """Show the files bar."""
        self.files = self.bar.add_task("files", total=total_files, rate="")

    def file_done(self, result: FileResult) -> None:
        """Advance the files bar; failures are printed as they happen."""
        if self.files is not None and result.status not in ("removed", "skipped"):
            self.bar.advance(self.files)
        if result.status == "failed":
            where = result.path or result.source
            self.bar.console.print(f"[red]failed[/] {where}: {result.reason}")

    def chunks_embedded(self, n: int) -> None:
        """Advance the chunk counter and its rate."""
        self.bar.advance(self.chunks, n)
        task = self.bar.tasks[self.chunks]
        speed = task.speed or 0.0
        self.bar.update(self.chunks, rate=f"{speed:.0f} chunks/s")


def print_report(report: IngestReport) -> None:
    """The summary table at the end of a run."""
    title = "Dry run: nothing was written" if report.dry_run else "Ingest summary"
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for status in ("added", "updated", "unchanged", "removed", "failed", "skipped"):
        table.add_row(f"files {status}", str(report.count(status)))
    table.add_row("chunks embedded", str(report.chunks_embedded))
    table.add_row("chunks deleted", str(report.chunks_deleted))
    table.add_row("chunks in these files", str(report.chunks_total))
    table.add_row("passages quarantined", str(len(report.quarantined)))
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    table.add_row("time", f"{report.seconds:.1f} s ({rate:.0f} chunks/s)")
    console.print(table)
    if report.dry_run:
        for f in report.files:
            if f.status not in ("unchanged", "skipped"):
                console.print(f"  would be {f.status}: {f.source} ({f.chunks} chunks)")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if report.calibration:
        console.print(escape(report.calibration), highlight=False)
    for f in report.files:
        for w in f.warnings:
            console.print(f"[yellow]warning:[/] {escape(f.source)}: {escape(w)}", highlight=False)
    if report.quarantined:
        console.print(
            f"[yellow]{len(report.quarantined)} passage(s) quarantined[/]: they address the "
            "assistant (a persona, a mode, rules for its answers) and will not be used in "
            "answers. Read them and release one with `supportbot ingest --release CHUNK_ID`:"
        )
        for f, q in report.quarantined:
            where = " > ".join(str(p) for p in (f.source, q.get("section")) if p)
            page = f" (p. {q['page']})" if q.get("page") else ""
            console.print(
                f"  {q['chunk_id']}  {where}{page}\n"
                f"    why: {q['reason']}\n    text: {q['excerpt']}",
                markup=False,
                highlight=False,
            )
    elif report.quarantined_in_index:
        console.print(
            f"{report.quarantined_in_index} passage(s) in the index are quarantined "
            "(`supportbot ingest --quarantined` lists them)."
        )
    if report.failed:
        console.print(f"[red]{len(report.failed)} file(s) failed[/] (the rest was ingested):")
        for f in report.failed:
            console.print(f"  {f.path or f.source}: {f.reason}")
    elif report.chunks_embedded == 0 and not report.dry_run and not report.rebuilt:
        console.print("Index already up to date: nothing was embedded.")


def print_quarantined(passages: list[QuarantinedPassage]) -> None:
    """The quarantined passages of the index, for ``--quarantined``."""
    if not passages:
        console.print("No passage is quarantined.")
        return
    console.print(f"{len(passages)} quarantined passage(s):")
    for q in passages:
        console.print(
            f"  {q.chunk_id}  {q.where}\n    why: {q.reason}\n    text: {excerpt(q.text)}",
            markup=False,
            highlight=False,
        )
    console.print("Release one with `supportbot ingest --release CHUNK_ID`.")


def print_verify(result: VerifyReport) -> None:
    """The outcome of --verify."""
    if result.ok:
        console.print(f"[green]Index OK[/]: {result.checked} records checked.")
        return
    console.print(f"[red]{len(result.problems)} problem(s)[/] in {result.checked} records:")
    for p in result.problems:
        console.print(f"  {p}")


def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders of manuals and FAQs.")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            help="Drop the index and re-embed everything (after changing the embedding model)."
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            help="Remove files that were ingested from these folders but no longer exist."
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Check the index's integrity (after ingesting PATHS, if given)."
        ),
    ] = False,
    lock_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for another ingest run on the same index.")
    ] = None,
    quarantined: Annotated[
        bool,
        typer.Option(
            "--quarantined",
            help="List the passages held back because they address the assistant.",
        ),
    ] = False,
    release_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--release",
            metavar="CHUNK_ID",
            help="Release a quarantined passage (you read it and trust it); repeatable.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Ingest manuals and FAQs (md, html, pdf, txt, docx, csv/json/yaml) into the index.

    Re-running is incremental: unchanged files are skipped, changed ones replaced and
    deleted ones removed.
    """
    from supportbot.factory import build_embedder, build_store

    if not paths and not verify and not quarantined and not release_ids:
        raise typer.BadParameter(
            "give at least one file or folder (or --verify, --quarantined, --release CHUNK_ID)"
        )
    settings = settings_from(config)
    report: IngestReport | None = None
    released: list[QuarantinedPassage] = []
    listed: list[QuarantinedPassage] | None = None
    try:
        if release_ids:
            store = build_store(settings)
            released = [release(settings, store, cid.strip()) for cid in release_ids]
        if paths:

            def ingest_with(progress: Progress | None) -> IngestReport:
                return run_ingest(
                    paths,
                    settings,
                    rebuild=rebuild,
                    prune=prune,
                    dry_run=dry_run,
                    progress=progress,
                    lock_timeout=lock_timeout,
                    embedder=build_embedder(settings),
                )

            if console.is_terminal and not as_json:
                columns = (
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                )
                with RichProgress(*columns, console=console, transient=True) as bar:
                    report = ingest_with(RichProgressBar(bar))
            else:
                report = ingest_with(None)
        checked = verify_index(build_store(settings)) if verify else None
        if quarantined:
            listed = list_quarantined(settings, build_store(settings))
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        out: dict[str, object] = report.to_dict() if report else {}
        if released:
            out["released"] = [q.to_dict() for q in released]
        if checked is not None:
            out["verify"] = {"checked": checked.checked, "problems": checked.problems}
        if listed is not None:
            out["quarantined"] = [q.to_dict() for q in listed]
        print(json.dumps(out, indent=2))
    else:
        for q in released:
            console.print(f"Released {q.chunk_id} ({q.where}).", markup=False, highlight=False)
        if report:
            print_report(report)
        if checked is not None:
            print_verify(checked)
        if listed is not None:
            print_quarantined(listed)
    if report is not None and not report.ok:
        raise typer.Exit(2)
    if checked is not None and not checked.ok:
        raise typer.Exit(3)


def calibrate(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """Fit the index's relevance model: when to answer and when to hand over.

    Runs after every ingest that changed the knowledge base enough; run it by hand after
    changing [calibration] settings. Uses the knowledge base alone: questions written from
    its own headings and passages, and the out-of-scope bank shipped with supportbot.
    """
    from ingest.calibrate import calibrate as fit
    from ingest.pipeline import writer_lock
    from supportbot.factory import build_embedder, build_store

    settings = settings_from(config)
    try:
        with writer_lock(settings):
            result = fit(settings, build_store(settings), build_embedder(settings))
    except SupportBotError as exc:
        fail(exc)
    if result.model is None:
        fail(SupportBotError(f"Nothing fitted: {result.skipped}. Ingest more documents first."))
    if as_json:
        print(result.model.to_json())
        return
    e = result.model.expected
    console.print(
        f"relevance model fitted in {result.seconds:.0f} s on {result.in_scope_probes} questions "
        f"written from the documents and {result.out_of_scope_probes} out-of-scope ones.\n"
        f"  out-of-scope bank answered: {e['out_of_scope_answered']:.1%}\n"
        f"  in-scope probes handed over: {e['in_scope_probes_handed_over']:.1%} (probes are "
        "keyword questions, harder than customers'; see docs/measured.md for real ones)\n"
        f"  probe AUROC (held-out folds): {e['probe_auroc']:.3f}",
        highlight=False,
    )


class RichTuneProgress(TuneProgress):
    """One bar per phase of a tuning run (questions, training steps, re-embedding)."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        """Finish the previous bar and start one for ``name``."""
        if self.task is not None:
            task = self.bar.tasks[self.task]
            if task.total is not None:
                self.bar.update(self.task, completed=task.total)
        self.task = self.bar.add_task(name, total=total)

    def advance(self, done: int, total: int) -> None:
        """Set the current bar to ``done`` of ``total``."""
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total)

    def chunks_embedded(self, n: int) -> None:
        """Advance the re-embedding bar."""
        if self.task is not None:
            self.bar.advance(self.task, n)


def print_tune(report: TuneReport) -> None:
    """What a tuning run (or revert) did."""
    if not report.pairs:  # a revert
        for note in report.notes:
            console.print(escape(note), highlight=False)
        if report.reverted:
            console.print(
                f"Reverted: the index was re-embedded with {escape(report.model)} "
                f"({report.reembedded} passages) in {report.seconds.get('total', 0):.0f} s.",
                highlight=False,
            )
        if report.calibration:
            console.print(escape(report.calibration), highlight=False)
        return
    t = report.training
    table = Table(title=f"Tuned: {report.model}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("tuned from", report.base)
    table.add_row("passages", str(report.passages))
    for kind, n in report.pairs.items():
        table.add_row(f"pairs: {kind.replace('_', ' ')}", str(n))
    table.add_row("training steps", f"{t.get('steps')} of {t.get('planned_steps')}")
    table.add_row("passages re-embedded", str(report.reembedded))
    for phase, seconds in report.seconds.items():
        table.add_row(f"time: {phase}", f"{seconds:.0f} s")
    table.add_row("peak memory", f"{report.peak_memory_mb:.0f} MB")
    console.print(table)
    if report.calibration:
        console.print(escape(report.calibration), highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(
        "The tuned model is live for this index (`supportbot info`); restart a running web "
        "UI so it loads it. `supportbot tune --revert` goes back."
    )


def tune(
    max_minutes: Annotated[
        float,
        typer.Option(
            min=0.5,
            help="Time budget for the whole run; training stops early to leave time for "
            "re-embedding. If even that does not fit, the live index is left unchanged.",
        ),
    ] = 20.0,
    pseudo: Annotated[
        bool,
        typer.Option(
            "--pseudo",
            help="Also train on questions the local model writes for sampled passages "
            "(slow on a CPU; did not help on the dev sets: docs/measured.md).",
        ),
    ] = False,
    pseudo_limit: Annotated[
        int, typer.Option(min=1, help="Passages the local model writes a question for.")
    ] = 200,
    epochs: Annotated[float, typer.Option(min=0.1, help="Passes over the pairs.")] = 1.0,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Peak learning rate.")] = 5e-5,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per training step.")] = 32,
    max_steps: Annotated[
        int, typer.Option(min=0, help="Stop after this many training steps (0: no cap).")
    ] = 0,
    revert_: Annotated[
        bool,
        typer.Option(
            "--revert", help="Go back to the configured model (re-embeds the index with it)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    config: ConfigOption = None,
) -> None:
    """Fine-tune the embedding model on this knowledge base, re-embed the index, swap it in.

    Training pairs come from the documents alone (FAQ entries, headings and their
    sections, sentences and their passages), with BM25 hard negatives. Interrupting
    (Ctrl-C) or running out of --max-minutes before the swap leaves the live index as it
    was.
    """
    from ingest.train import TrainOptions
    from ingest.tune import DEFAULT_KINDS, TuneOptions
    from ingest.tune import revert as revert_tuning
    from ingest.tune import tune as run_tune

    settings = settings_from(config)
    kinds = (*DEFAULT_KINDS, "pseudo") if pseudo else DEFAULT_KINDS
    options = TuneOptions(
        kinds=kinds,
        pseudo_limit=pseudo_limit,
        max_minutes=max_minutes,
        train=TrainOptions(
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_steps=max_steps,
        ),
    )

    def run(progress: TuneProgress | None) -> TuneReport:
        if revert_:
            return revert_tuning(settings, progress=progress)
        return run_tune(settings, options, progress=progress)

    try:
        if console.is_terminal and not as_json:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with RichProgress(*columns, console=console, transient=True) as bar:
                report = run(RichTuneProgress(bar))
        else:
            report = run(None)
    except KeyboardInterrupt:
        fail(SupportBotError("Interrupted: the live index and model are unchanged."), code=130)
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_tune(report)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` and ``calibrate`` to the ``supportbot`` command (the entry-point hook).

    Also the ``supportbot gaps`` commands that change agents' answers, which re-index them.
    """
    from ingest.answers import register as register_answers

    app.command(name="ingest")(ingest)
    app.command(name="calibrate")(calibrate)
    app.command(name="tune")(tune)
    register_answers(app)


def main() -> None:
    """``python -m ingest``."""
    cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    cli.command()(ingest)
    cli()
