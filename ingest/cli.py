"""``supportbot ingest`` / ``python -m ingest``: the ingestion command line.

Exit codes: 0 all good, 1 the run could not happen (settings, store, lock, model),
2 the run happened but some files failed (each is listed with its reason),
3 ``--verify`` found problems.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    table.add_row("time", f"{report.seconds:.1f} s ({rate:.0f} chunks/s)")
    console.print(table)
    if report.dry_run:
        for f in report.files:
            if f.status not in ("unchanged", "skipped"):
                console.print(f"  would be {f.status}: {f.source} ({f.chunks} chunks)")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for f in report.files:
        for w in f.warnings:
            console.print(f"[yellow]warning:[/] {f.source}: {w}")
    if report.failed:
        console.print(f"[red]{len(report.failed)} file(s) failed[/] (the rest was ingested):")
        for f in report.failed:
            console.print(f"  {f.path or f.source}: {f.reason}")
    elif report.chunks_embedded == 0 and not report.dry_run and not report.rebuilt:
        console.print("Index already up to date: nothing was embedded.")


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
    config: ConfigOption = None,
) -> None:
    """Ingest manuals and FAQs (md, html, pdf, txt, docx, csv/json/yaml) into the index.

    Re-running is incremental: unchanged files are skipped, changed ones replaced and
    deleted ones removed.
    """
    from supportbot.factory import build_embedder, build_store

    if not paths and not verify:
        raise typer.BadParameter("give at least one file or folder (or --verify)")
    settings = settings_from(config)
    report: IngestReport | None = None
    try:
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
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        out: dict[str, object] = report.to_dict() if report else {}
        if checked is not None:
            out["verify"] = {"checked": checked.checked, "problems": checked.problems}
        print(json.dumps(out, indent=2))
    else:
        if report:
            print_report(report)
        if checked is not None:
            print_verify(checked)
    if report is not None and not report.ok:
        raise typer.Exit(2)
    if checked is not None and not checked.ok:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to the ``supportbot`` command (the entry-point hook)."""
    app.command(name="ingest")(ingest)


def main() -> None:
    """``python -m ingest``."""
    cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    cli.command()(ingest)
    cli()
