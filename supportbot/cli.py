"""The ``supportbot`` command line.

Runtime commands live here; ``ingest`` and ``eval`` are contributed by the ingest and
evaluate packages through the ``supportbot.commands`` entry point, so this package never
imports them (the dependency points one way only).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from supportbot.config import Settings, load_settings
from supportbot.errors import SupportBotError
from supportbot.safety.hygiene import strip_invisible

if TYPE_CHECKING:
    from supportbot.accounts import AccountStore
    from supportbot.bot import SupportBot
    from supportbot.factory import Services
    from supportbot.handoff.queue import OutboxEntry
    from supportbot.types import Reply

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
    from supportbot.factory import build_embedder
    from supportbot.tuned import live_tuned_model

    tuned = live_tuned_model(settings)
    if tuned is not None:
        console.print(
            f"embedder: tuned {tuned.name} (from {tuned.base}, {tuned.tuned_at}, on "
            f"{tuned.trained_on.get('passages', '?')} passages; `supportbot tune --revert` "
            "goes back)",
            highlight=False,
        )
    else:
        console.print(f"embedder: base {build_embedder(settings, tuned=False).name}")
    live = tuned.name if tuned is not None else build_embedder(settings, tuned=False).name
    if stamp and stamp[0] != live:
        console.print(
            f"[yellow]warning:[/] the index was built with {stamp[0]}, not with the live "
            f"embedder {live}: run `supportbot tune --revert` or `supportbot ingest PATH "
            "--rebuild`",
            highlight=False,
        )
    console.print(f"files: {len(files)}   chunks: {chunks}")
    from supportbot.relevance import META_KEY, RelevanceModel

    stored = store.get_meta(META_KEY)
    relevance = RelevanceModel.from_json(stored) if stored else None
    if not settings.calibration.enabled:
        console.print("relevance model: off ([calibration] enabled = false): generic score")
    elif relevance is None:
        console.print(
            "relevance model: none fitted (generic threshold); run `supportbot calibrate`"
        )
    else:
        exp, fit = relevance.expected, relevance.fitted_on
        console.print(
            f"relevance model: fitted {fit.get('at', '?')} on {fit.get('passages', '?')} "
            f"passages; expected out-of-scope answered {exp.get('out_of_scope_answered', 0):.1%}"
            f", in-scope probes handed over {exp.get('in_scope_probes_handed_over', 0):.1%}",
            highlight=False,
        )
    for source, rec in sorted(files.items()):
        console.print(f"  {source}  {rec.chunk_count} chunks  {rec.ingested_at}")


users_app = typer.Typer(
    help="Agent and admin accounts for the web UI's console and knowledge-base page.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

RoleOption = Annotated[
    str,
    typer.Option("--role", "-r", help="'agent' (the console) or 'admin' (console + KB page)."),
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _accounts(config: Path | None) -> AccountStore:
    """The account store (and its audit log) for a ``users`` command."""
    from supportbot.factory import build_accounts, build_audit

    settings = settings_from(config)
    return build_accounts(settings, build_audit(settings))


def _new_password(from_stdin: bool) -> str:
    """A new password, typed twice without echo, or one line of standard input."""
    if from_stdin:
        import sys

        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name; agents' replies show it.")],
    role: RoleOption = "agent",
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Create an account (asks for its password)."""
    accounts = _accounts(config)
    try:
        accounts.check_available(name)  # before asking for a password
        account = accounts.add(name, _new_password(password_stdin), accounts.check_role(role))
    except SupportBotError as exc:
        fail(exc)
    console.print(f"Added {account.role} {account.name}.", markup=False, highlight=False)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """List the accounts with their roles and last sign-in."""
    accounts = _accounts(config).list()
    if as_json:
        print(json.dumps([a.public() for a in accounts], indent=2))
        return
    if not accounts:
        console.print("No accounts yet. Add one with: supportbot users add NAME --role admin")
        return
    table = Table(show_lines=False)
    for column in ("name", "role", "created", "last sign-in"):
        table.add_column(column)
    for a in accounts:
        table.add_row(*(Text(x) for x in (a.name, a.role, a.created_at, a.last_sign_in or "never")))
    console.print(table)


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="The account to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete an account; its open web sessions end at their next page update."""
    accounts = _accounts(config)
    if not yes and not typer.confirm(f"Delete the account {name!r}?"):
        raise typer.Exit(1)
    try:
        accounts.remove(name)
    except SupportBotError as exc:
        fail(exc)
    console.print(f"Removed {name}.", markup=False, highlight=False)


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="The account whose password changes.")],
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Set a new password (asks for it); web sessions using the old one end."""
    accounts = _accounts(config)
    try:
        accounts.require(name)  # before asking for a password
        accounts.set_password(name, _new_password(password_stdin))
    except SupportBotError as exc:
        fail(exc)
    console.print(f"Password of {name} changed.", markup=False, highlight=False)


@users_app.command("role")
def users_role(
    name: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[str, typer.Argument(help="'agent' or 'admin'.")],
    config: ConfigOption = None,
) -> None:
    """Change an account's role."""
    try:
        accounts = _accounts(config)
        accounts.set_role(name, accounts.check_role(role))
    except SupportBotError as exc:
        fail(exc)
    console.print(f"{name} is now {role}.", markup=False, highlight=False)


@app.command()
def audit(
    n: Annotated[int, typer.Option("-n", help="How many entries.", min=1)] = 50,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. sign_in_failed.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """List the newest audit entries: desk actions, ingests, removals, sign-ins, accounts."""
    from supportbot.factory import build_audit

    entries = build_audit(settings_from(config)).recent(n, actor=actor, action=action)
    if as_json:
        print(json.dumps([e.__dict__ for e in entries], indent=2))
        return
    if not entries:
        console.print("No audit entries.")
        return
    table = Table()
    for column in ("when (UTC)", "who", "what", "target", "detail"):
        table.add_column(column)
    for e in entries:
        table.add_row(*(Text(x) for x in (e.at, e.actor, e.action, e.target, e.detail)))
    console.print(table)


handoffs_app = typer.Typer(
    help="Hand-off deliveries to the helpdesk webhook: what the outbox still holds, retry.",
    no_args_is_help=True,
)
app.add_typer(handoffs_app, name="handoffs")


def _ago(ts: float, now: float) -> str:
    """``due`` or ``in 3.2s`` for an epoch time."""
    return "due" if ts <= now else f"in {ts - now:.1f}s"


def _entries_table(entries: list[OutboxEntry]) -> Table:
    import time

    now = time.time()
    table = Table()
    for column in ("hand-off", "state", "attempts", "next attempt", "last error", "queued (UTC)"):
        table.add_column(column)
    for e in entries:
        nxt = _ago(e.next_attempt_at, now) if e.state == "pending" else "-"
        row = (f"#{e.handoff_id[:8]}", e.state, str(e.attempts), nxt, e.last_error, e.created_at)
        table.add_row(*(Text(x) for x in row))
    return table


@handoffs_app.command("pending")
def handoffs_pending(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """List deliveries the outbox still holds: pending, in flight, and dead letters."""
    from supportbot.factory import build_queue

    entries = build_queue(settings_from(config)).outbox(("pending", "sending", "dead"))
    if as_json:
        fields = ("handoff_id", "target", "state", "attempts", "next_attempt_at", "last_error")
        out = [{k: getattr(e, k) for k in (*fields, "created_at")} for e in entries]
        print(json.dumps(out, indent=2))
        return
    if not entries:
        console.print("Nothing pending: every hand-off was delivered.")
        return
    console.print(_entries_table(entries))


@handoffs_app.command("retry")
def handoffs_retry(
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the outbox to empty.", min=0)
    ] = 30.0,
    config: ConfigOption = None,
) -> None:
    """Send what the outbox holds now: dead letters once each, then everything pending."""
    from supportbot.factory import build_outbox, build_queue

    settings = settings_from(config)
    queue = build_queue(settings)
    try:
        outbox = build_outbox(settings.handoff, queue, start=False)
    except SupportBotError as exc:
        fail(exc)
    if outbox is None:
        left = queue.outbox(("pending", "sending", "dead"))
        err_console.print(
            f"handoff.webhook_url is not set: {len(left)} delivery(ies) wait for it.",
            highlight=False,
        )
        raise typer.Exit(1 if left else 0)
    dead = len(outbox.dead_letters())
    revived = outbox.retry_dead()
    if dead:
        console.print(f"Dead letters: {revived} of {dead} delivered.", highlight=False)
    outbox.flush()
    outbox.start()
    done = outbox.wait(timeout=wait)
    outbox.close(timeout=1)
    left = outbox.pending()
    if not left:
        console.print("Every hand-off was delivered.")
        return
    console.print(_entries_table(left))
    waiting = sum(e.state != "dead" for e in left)
    err_console.print(
        f"{len(left)} not delivered ({waiting} still pending"
        + ("" if done else f" after {wait:g}s")
        + "); they stay in the outbox.",
        highlight=False,
    )
    raise typer.Exit(1)


ConversationOption = Annotated[
    str | None,
    typer.Option(
        "--conversation",
        help="Conversation id, so follow-up questions see the earlier turns (across runs only "
        "with SUPPORTBOT_CONVERSATION__BACKEND=sqlite).",
    ),
]


def _build_services(config: Path | None) -> Services:
    """The bot and desk for a command, turning setup errors into a clean exit."""
    from supportbot.factory import build

    settings = settings_from(config)
    try:
        return build(settings)
    except SupportBotError as exc:
        fail(exc)


def _await_delivery(services: Services, handoff_ids: list[str]) -> None:
    """Before exiting, give the outbox a bounded time to deliver these hand-offs.

    Whatever is still pending stays in the outbox (SQLite), for the next process to send;
    nothing is dropped when the command exits.
    """
    desk = services.desk
    ids = set(handoff_ids)
    if not any(e.handoff_id in ids and e.state != "dead" for e in desk.pending_deliveries()):
        return
    wait = services.settings.handoff.cli_wait
    refs = ", ".join(f"#{h[:8]}" for h in handoff_ids)
    err_console.print(
        f"Delivering hand-off {refs} to the helpdesk (waiting up to {wait:g}s)...",
        style="dim",
        highlight=False,
        soft_wrap=True,
    )
    desk.wait_for_deliveries(list(ids), wait)
    left = [e for e in desk.pending_deliveries() if e.handoff_id in ids]
    if not left:
        err_console.print("Delivered to the helpdesk.", style="dim", highlight=False)
    elif all(e.state == "dead" for e in left):
        err_console.print(
            f"The helpdesk did not take it ({left[0].last_error}); kept as a dead letter: "
            "retry with `supportbot handoffs retry`.",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err_console.print(
            "Not delivered yet; it stays in the outbox and the next supportbot process "
            "sends it (`supportbot handoffs retry` sends it now).",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )


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
    if reply.trace.removed:
        console.print(
            f"({len(reply.trace.removed)} unsupported sentence(s) removed)",
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
    from supportbot.types import Reply

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
        "removed": [{"sentence": r.sentence, "reason": r.reason} for r in reply.trace.removed],
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
    services = _build_services(config)
    bot = services.bot
    try:
        if as_json:
            reply = bot.ask(question, conversation)
            print(json.dumps(_reply_json(reply), indent=2))
        else:
            reply = _print_stream(bot, question, conversation)
    except SupportBotError as exc:
        fail(exc)
    if reply.handoff_id:
        _await_delivery(services, [reply.handoff_id])


@app.command()
def chat(conversation: ConversationOption = None, config: ConfigOption = None) -> None:
    """Talk to the bot in the terminal; follow-up questions see the earlier turns."""
    import uuid

    from supportbot.errors import InputError

    services = _build_services(config)
    bot = services.bot
    conv_id = conversation or uuid.uuid4().hex
    handed: list[str] = []
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
            reply = _print_stream(bot, line, conv_id, prefix="[bold]bot>[/] ")
            if reply.handoff_id and reply.handoff_id not in handed:
                handed.append(reply.handoff_id)
        except InputError as exc:
            console.print(str(exc), style="yellow", markup=False, highlight=False)
        except KeyboardInterrupt:
            console.print("\n(interrupted)", style="dim", markup=False)
            break
        except SupportBotError as exc:
            fail(exc)
    if handed:
        _await_delivery(services, handed)


gaps_app = typer.Typer(
    help="Knowledge gaps: what customers ask that the documents do not answer, and agents' "
    "answers served by the bot (docs/knowledge-gaps.md).",
    invoke_without_command=True,
)
app.add_typer(gaps_app, name="gaps")


def _when(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M")


@gaps_app.callback()
def gaps(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    days: Annotated[
        int | None,
        typer.Option("--days", min=0, help="Days back (default gaps.since_days; 0: all)."),
    ] = None,
    top: Annotated[int, typer.Option("-n", min=1, help="How many gaps to show.")] = 20,
    examples: Annotated[bool, typer.Option("--examples", help="Show example questions.")] = False,
    config: ConfigOption = None,
) -> None:
    """List the gaps, most asked first: questions grouped by meaning.

    Questions handed over for want of an answer, answers rated down, and questions agents
    answered after a hand-off.
    """
    import time

    from supportbot.factory import build_gap_finder

    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(config)
    since = None if days == 0 else time.time() - days * 86400 if days else None
    try:
        report = build_gap_finder(settings).report(since)
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        data = report.to_dict()
        data["gaps"] = data["gaps"][:top]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if not report.gaps:
        console.print("No gaps: every question was answered (or nothing was asked yet).")
        return
    table = Table(title=f"{report.questions} unanswered questions in {len(report.gaps)} gaps")
    for column in ("#", "gap (most typical question)", "customers", "first seen", "last seen"):
        table.add_column(column, justify="right" if column in ("#", "customers") else "left")
    table.add_column("agent answered")
    table.add_column("FAQ entry")
    for i, gap in enumerate(report.gaps[:top], start=1):
        label = gap.label + ("".join(f"\n  - {e}" for e in gap.examples[1:]) if examples else "")
        table.add_row(
            str(i),
            Text(label),
            str(gap.customers),
            _when(gap.first_seen),
            _when(gap.last_seen),
            "yes" if gap.answered_by_agent else "",
            gap.entry,
        )
    console.print(table)
    if len(report.gaps) > top:
        console.print(f"... and {len(report.gaps) - top} more (-n to show them).")


@gaps_app.command("answers")
def gaps_answers(
    drafts: Annotated[bool, typer.Option("--drafts", help="Only drafts (not served).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """List agents' answers (the managed FAQ): approved ones are served by the bot."""
    from supportbot.factory import build_answers

    try:
        entries = build_answers(settings_from(config)).entries("draft" if drafts else None)
    except SupportBotError as exc:
        fail(exc)
    if as_json:
        print(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        console.print("No agent answers yet: make one from a gap in the agent console.")
        return
    table = Table()
    for column in ("id", "status", "question", "approved by", "approved (UTC)"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            *(Text(x) for x in (e.id, e.status, e.question, e.approved_by, e.approved_at))
        )
    console.print(table)


@gaps_app.command("export")
def gaps_export(
    output: Annotated[
        Path | None, typer.Argument(help="File to write (default: standard output).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the approved agent answers as a YAML FAQ, for review in git."""
    from supportbot.factory import build_answers

    try:
        text = build_answers(settings_from(config)).export()
    except SupportBotError as exc:
        fail(exc)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(SupportBotError(f"Cannot write {output} ({exc.strerror}); choose another path."))
    console.print(f"Wrote {output}.")


def _register_plugins() -> None:
    for ep in entry_points(group="supportbot.commands"):
        try:
            ep.load()(app)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not kill the CLI
            err_console.print(f"[yellow]warning:[/] command plugin {ep.name!r} failed: {exc}")


def _readable(arg: str) -> str:
    """An argument as text: undecodable bytes (surrogate-escaped by Python) become U+FFFD."""
    return arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def main() -> None:
    """Entry point of the ``supportbot`` script.

    Arguments and standard input are decoded with replacement, so a message with invalid
    UTF-8 is answered (its unreadable bytes shown as U+FFFD) instead of failing deep inside.
    """
    sys.argv = [_readable(a) for a in sys.argv]
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")
    _register_plugins()
    app()


# After the helpers above, which the models commands use.
from supportbot.models.cli import models_app  # noqa: E402

app.add_typer(models_app, name="models")
