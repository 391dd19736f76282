"""The ``supportbot`` command line.

Runtime commands live here; the ``ingest`` command is contributed by the ingest
package through the ``supportbot.commands`` entry point, so this package never imports
the pipeline (the dependency points one way only).
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from supportbot.config import Settings, load_settings
from supportbot.errors import SupportBotError

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
