"""Publishing agents' answers: the managed FAQ file, kept in line with the index.

After every change to the managed FAQ (:class:`supportbot.gaps.AgentAnswers`) the console
and the CLI call :func:`publish`, which runs the incremental ingest pipeline on that one
file: only the changed entries are embedded, drafts are never indexed, and when no
approved entry is left the file's passages are removed from the index. The runtime
(``supportbot/``) never imports this module; the shells do, as they do ``run_ingest``.

It also adds the commands that change entries to ``supportbot gaps`` (``add``,
``approve``, ``edit``, ``remove``, ``publish``), through the ``supportbot.commands`` entry
point of ``ingest/cli.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ingest.pipeline import IngestReport, run_ingest, writer_lock
from supportbot.config import Settings
from supportbot.embed import Embedder
from supportbot.errors import SupportBotError
from supportbot.gaps.answers import AgentAnswer, AgentAnswers
from supportbot.store import ChromaStore

__all__ = ["Published", "publish", "register"]


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did: the ingest report, or how many passages it removed."""

    approved: int
    report: IngestReport | None = None
    removed: int = 0

    def describe(self) -> str:
        """One line for the console and the CLI."""
        if self.report is None:
            gone = f"; {self.removed} passage(s) taken out of the index" if self.removed else ""
            return f"No approved agent answer is served{gone}."
        r = self.report
        if not r.ok:
            reasons = "; ".join(f.reason for f in r.failed)
            return f"The agent answers could not be indexed: {reasons}"
        changed = r.count("added") + r.count("updated")
        return f"{self.approved} approved agent answer(s) served" + (
            f"; {r.chunks_embedded} embedded." if changed else "; the index was up to date."
        )


def _indexed_source(settings: Settings, store: ChromaStore, path: Path) -> str | None:
    """The managed file's name in the index, if it is indexed."""
    real = path.resolve()
    for source, record in store.files().items():
        if record.path and Path(record.path).resolve() == real:
            return source
    return None


def publish(
    settings: Settings, *, embedder: Embedder | None = None, store: ChromaStore | None = None
) -> Published:
    """Bring the index in line with the managed FAQ file.

    Args:
        settings: supportbot settings (the file is ``settings.agent_answers_path``).
        embedder: the embedder already loaded (the web UI's), else one is built.
        store: the store already open, else the configured one.

    Raises:
        FaqError: the file cannot be read.
        StoreLockedError: another ingest run holds the index too long.
    """
    from supportbot.factory import build_answers, build_store

    path = settings.agent_answers_path
    approved = len(build_answers(settings).entries("approved"))
    if approved:
        report = run_ingest([path], settings, embedder=embedder, store=store)
        return Published(approved, report)
    store = store or build_store(settings)
    with writer_lock(settings):
        source = _indexed_source(settings, store, path)
        if source is None:
            return Published(0)
        removed = store.delete_source(source)
        store.delete_file(source)
    return Published(0, removed=removed)


# -- commands (added to `supportbot gaps`) ----------------------------------------------

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: ./supportbot.toml)."),
]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who approves (default: cli:<your user name>).")
]


def _change(
    config: Path | None,
    by: str | None,
    apply: Callable[[AgentAnswers, str], AgentAnswer | None],
    verb: str,
) -> None:
    """Apply one change to the managed FAQ as ``by``, publish it, and say what happened."""
    from supportbot.accounts import cli_actor
    from supportbot.cli import console, fail, settings_from
    from supportbot.factory import build_answers, build_audit

    settings = settings_from(config)
    answers = build_answers(settings, build_audit(settings))
    try:
        entry = apply(answers, by or cli_actor())
        done = publish(settings)
    except SupportBotError as exc:
        fail(exc)
    if entry is not None:
        console.print(f"{verb} {entry.id} ({entry.status}): {entry.question}", highlight=False)
    console.print(done.describe(), highlight=False)


def add(
    question: Annotated[str, typer.Option("--question", "-q", help="The question.")],
    answer: Annotated[str, typer.Option("--answer", "-a", help="The answer customers get.")],
    also: Annotated[
        list[str] | None,
        typer.Option("--also", help="Another wording customers use (repeatable)."),
    ] = None,
    draft: Annotated[bool, typer.Option("--draft", help="Save without approving.")] = False,
    by: ByOption = None,
    config: ConfigOption = None,
) -> None:
    """Add an agent answer (PII redacted), approve it unless --draft, and publish."""
    _change(
        config,
        by,
        lambda a, actor: a.save(
            question, answer, actor=actor, approve=not draft, also_asked=also or []
        ),
        "added",
    )


def edit(
    entry_id: Annotated[str, typer.Argument(help="The entry's id (`supportbot gaps answers`).")],
    question: Annotated[str | None, typer.Option("--question", "-q", help="New question.")] = None,
    answer: Annotated[str | None, typer.Option("--answer", "-a", help="New answer.")] = None,
    draft: Annotated[
        bool, typer.Option("--draft", help="Keep it as a draft (not served) instead.")
    ] = False,
    by: ByOption = None,
    config: ConfigOption = None,
) -> None:
    """Change an agent answer's texts (approved again by you, unless --draft) and publish."""
    _change(
        config,
        by,
        lambda a, actor: a.edit(
            entry_id, actor, question=question, answer=answer, approve=not draft
        ),
        "edited",
    )


def approve(
    entry_id: Annotated[str, typer.Argument(help="The draft's id (`supportbot gaps answers`).")],
    by: ByOption = None,
    config: ConfigOption = None,
) -> None:
    """Approve a draft agent answer as it is, and publish: the bot may serve it from now on."""
    _change(config, by, lambda a, actor: a.approve(entry_id, actor), "approved")


def remove(
    entry_id: Annotated[str, typer.Argument(help="The entry's id (`supportbot gaps answers`).")],
    by: ByOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove an agent answer and publish: the bot stops serving it at once."""
    _change(config, by, lambda a, actor: a.remove(entry_id, actor), "removed")


def publish_command(config: ConfigOption = None) -> None:
    """Index the managed FAQ file again (after editing it by hand)."""
    _change(config, None, lambda a, actor: None, "published")


def register(app: typer.Typer) -> None:
    """Add the commands that change agent answers to ``supportbot gaps``."""
    group = next((g.typer_instance for g in app.registered_groups if g.name == "gaps"), None)
    if group is None:  # an older supportbot without the gaps command
        return
    group.command("add")(add)
    group.command("approve")(approve)
    group.command("edit")(edit)
    group.command("remove")(remove)
    group.command("publish")(publish_command)
