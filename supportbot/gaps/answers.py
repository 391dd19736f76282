"""The managed FAQ: agents' answers, approved, that the bot may give as its own.

An agent who answered a hand-off turns the customer's question and their reply into an
entry; both are edited, PII-redacted and then approved (or kept as a draft for someone
allowed to approve, ``gaps.approve_role``). Entries live in one YAML file in the data
folder (``<data_dir>/agent-answers.yaml``), a plain FAQ file any reviewer can read::

    title: Answers from our support team
    entries:
    - id: 3f9c2a1b7d40
      question: Does the Nexa work with Starlink?
      also_asked: [can i use my nexa router with starlink internet]
      answer: Yes. Put the Starlink router in bypass mode ...
      status: approved            # or draft: never indexed, never served
      author: agent
      approved_by: maria
      approved_at: '2025-03-14T10:22:31Z'

It is ingested like any FAQ (``ingest/answers.py`` runs the incremental pipeline on it
after every change): only ``approved`` entries are loaded, the customers' own wordings
(``also_asked``) are embedded with the question, and citations name the entry as an
agent-written answer with its approval date. Every change is written under a file lock
and replaced atomically, and recorded in the audit log with who made it.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from supportbot.errors import FaqEntryNotFound, FaqError, InputError
from supportbot.safety.hygiene import check_text, strip_invisible
from supportbot.safety.redact import find_pii, redact

if TYPE_CHECKING:
    from supportbot.audit import AuditLog

__all__ = [
    "AGENT_AUTHOR",
    "AgentAnswer",
    "AgentAnswers",
    "Redacted",
    "agent_heading",
    "redact_shown",
]

AGENT_AUTHOR = "agent"
"""The ``author`` of an entry a support agent wrote (what ingestion and citations read)."""
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 4000
Status = Literal["draft", "approved"]
_HEADER = (
    "# Approved answers of the support team: the managed FAQ of `supportbot gaps`.\n"
    "# Written by supportbot. Change entries in the agent console (Gaps tab) or with\n"
    "# `supportbot gaps approve|edit|remove`, which re-index them at once; an edit made here\n"
    "# by hand is served after `supportbot ingest` on this file. Only `status: approved`\n"
    "# entries are ever indexed or served.\n"
)


def agent_heading(date: str) -> str:
    """The section a citation of an agent-written entry names: who wrote it, and when."""
    return f"Written by a support agent, {date}" if date else "Written by a support agent"


@dataclass(frozen=True)
class Redacted:
    """A text after redaction, and the kinds of personal data taken out (for the UI)."""

    text: str
    removed: tuple[str, ...] = ()


def redact_shown(text: str, allow: Collection[str] = ()) -> Redacted:
    """``text`` redacted, with what was removed: what the console shows before saving."""
    spans = find_pii(text, allow)
    return Redacted(redact(text, allow), tuple(s.kind for s in spans))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AgentAnswer:
    """One entry of the managed FAQ (every text already redacted).

    Attributes:
        id: 12 hex digits.
        question: the question as the agent worded it.
        answer: the answer customers get.
        also_asked: customers' own wordings of the question (matched with it).
        status: ``draft`` (never served) or ``approved``.
        written_by: the agent whose reply it came from.
        created_by, created_at: who saved it first, and when (ISO 8601, UTC).
        approved_by, approved_at: who approved this text, and when ("" for a draft).
        updated_at: the last change.
        handoff: the hand-off it came from ("" when typed in).
        gap: the gap's label when it was made from one.
    """

    id: str
    question: str
    answer: str
    also_asked: tuple[str, ...] = ()
    status: Status = "draft"
    written_by: str = ""
    created_by: str = ""
    created_at: str = ""
    approved_by: str = ""
    approved_at: str = ""
    updated_at: str = ""
    handoff: str = ""
    gap: str = ""
    author: str = field(default=AGENT_AUTHOR)

    @property
    def approved(self) -> bool:
        """Whether the bot may serve it."""
        return self.status == "approved"

    def to_dict(self) -> dict[str, Any]:
        """The entry as it is written to the file (empty fields left out)."""
        data = asdict(self)
        data["also_asked"] = list(self.also_asked)
        order = (
            "id",
            "question",
            "also_asked",
            "answer",
            "status",
            "author",
            "written_by",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "updated_at",
            "handoff",
            "gap",
        )
        return {k: data[k] for k in order if data[k] not in ("", [], None)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentAnswer:
        """An entry read from the file.

        Raises:
            FaqError: a required field is missing or has the wrong type.
        """
        try:
            status = str(data.get("status", "draft"))
            also = data.get("also_asked") or []
            if isinstance(also, str):
                also = [also]
            return cls(
                id=str(data["id"]),
                question=str(data["question"]),
                answer=str(data["answer"]),
                also_asked=tuple(str(a) for a in also),
                status="approved" if status == "approved" else "draft",
                **{
                    k: str(data.get(k) or "")
                    for k in (
                        "written_by",
                        "created_by",
                        "created_at",
                        "approved_by",
                        "approved_at",
                        "updated_at",
                        "handoff",
                        "gap",
                    )
                },
                author=str(data.get("author") or AGENT_AUTHOR),
            )
        except (KeyError, TypeError) as exc:
            raise FaqError(
                f"An entry of the agent answers file lacks {exc}: each needs an id, a "
                "question and an answer. Fix the file by hand or remove that entry."
            ) from exc


class AgentAnswers:
    """The managed FAQ file: save, approve, edit and remove agents' answers.

    It knows nothing of the index; ``ingest/answers.py`` publishes the file after a change
    (the console and the CLI do that for you).

    Example:
        >>> answers = AgentAnswers(settings.agent_answers_path, allow=settings.public_values)
        >>> entry = answers.save("Do you sell gift cards?", "Not yet.", actor="maria")
        >>> answers.entries("approved")[0].question
        'Do you sell gift cards?'
    """

    def __init__(
        self,
        path: Path,
        *,
        title: str = "Answers from our support team",
        allow: Collection[str] = (),
        audit: AuditLog | None = None,
        max_also_asked: int = 8,
    ) -> None:
        self.path = Path(path)
        self.title = title
        self.allow = tuple(allow)
        self.max_also_asked = max_also_asked
        self._audit = audit

    # -- reading -----------------------------------------------------------------------

    def entries(self, status: Status | None = None) -> list[AgentAnswer]:
        """Every entry (or those with ``status``), newest change first.

        Raises:
            FaqError: the file cannot be read or is not a managed FAQ file.
        """
        found = self._read()
        if status is not None:
            found = [e for e in found if e.status == status]
        return sorted(found, key=lambda e: e.updated_at or e.created_at, reverse=True)

    def get(self, entry_id: str) -> AgentAnswer:
        """One entry.

        Raises:
            FaqEntryNotFound: no entry has that id.
        """
        for entry in self._read():
            if entry.id == entry_id:
                return entry
        raise FaqEntryNotFound(
            f"No agent answer with id {entry_id!r}; list them with `supportbot gaps answers`."
        )

    # -- changing ----------------------------------------------------------------------

    def save(
        self,
        question: str,
        answer: str,
        *,
        actor: str,
        approve: bool = True,
        also_asked: Sequence[str] = (),
        written_by: str = "",
        handoff: str = "",
        gap: str = "",
    ) -> AgentAnswer:
        """Add an entry: redacted, then approved (served) or kept as a draft.

        Raises:
            InputError: the question or answer is empty (after redaction) or too long.
            FaqError: the file cannot be read or written.
        """
        now = _now()
        actor = self._actor(actor)
        entry = AgentAnswer(
            id=uuid.uuid4().hex[:12],
            question=self._text(question, "The question", MAX_QUESTION_CHARS),
            answer=self._text(answer, "The answer", MAX_ANSWER_CHARS),
            also_asked=self._wordings(also_asked, question),
            status="approved" if approve else "draft",
            written_by=self._name(written_by) or actor,
            created_by=actor,
            created_at=now,
            approved_by=actor if approve else "",
            approved_at=now if approve else "",
            updated_at=now,
            handoff=self._name(handoff),
            gap=self._clip(gap, MAX_QUESTION_CHARS),
        )
        self._change(lambda entries: [*entries, entry])
        self._record(actor, "faq_approve" if approve else "faq_draft", entry)
        return entry

    def approve(self, entry_id: str, actor: str) -> AgentAnswer:
        """Approve a draft as it is: from now on the bot may serve it.

        Raises:
            FaqEntryNotFound: no entry has that id.
        """
        actor = self._actor(actor)
        now = _now()
        done = self._update(
            entry_id,
            lambda e: replace(
                e, status="approved", approved_by=actor, approved_at=now, updated_at=now
            ),
        )
        self._record(actor, "faq_approve", done)
        return done

    def edit(
        self,
        entry_id: str,
        actor: str,
        *,
        question: str | None = None,
        answer: str | None = None,
        also_asked: Sequence[str] | None = None,
        approve: bool = True,
    ) -> AgentAnswer:
        """Change an entry's texts; it is approved again by ``actor``, or becomes a draft.

        Raises:
            FaqEntryNotFound: no entry has that id.
            InputError: a new text is empty or too long.
        """
        actor = self._actor(actor)
        now = _now()
        new_q = (
            None if question is None else self._text(question, "The question", MAX_QUESTION_CHARS)
        )
        new_a = None if answer is None else self._text(answer, "The answer", MAX_ANSWER_CHARS)

        def change(e: AgentAnswer) -> AgentAnswer:
            q = new_q if new_q is not None else e.question
            wordings = e.also_asked if also_asked is None else self._wordings(also_asked, q)
            return replace(
                e,
                question=q,
                answer=new_a if new_a is not None else e.answer,
                also_asked=wordings,
                status="approved" if approve else "draft",
                approved_by=actor if approve else "",
                approved_at=now if approve else "",
                updated_at=now,
            )

        done = self._update(entry_id, change)
        self._record(actor, "faq_edit" if approve else "faq_draft", done)
        return done

    def remove(self, entry_id: str, actor: str) -> AgentAnswer:
        """Delete an entry; the bot stops serving it once the file is published.

        Raises:
            FaqEntryNotFound: no entry has that id.
        """
        actor = self._actor(actor)
        gone: list[AgentAnswer] = []

        def drop(entries: list[AgentAnswer]) -> list[AgentAnswer]:
            gone.extend(e for e in entries if e.id == entry_id)
            if not gone:
                raise FaqEntryNotFound(
                    f"No agent answer with id {entry_id!r}; list them with `supportbot gaps "
                    "answers`."
                )
            return [e for e in entries if e.id != entry_id]

        self._change(drop)
        self._record(actor, "faq_remove", gone[0])
        return gone[0]

    def export(self) -> str:
        """The approved entries as a YAML FAQ for review in git (and ingestible as is)."""
        import yaml

        rows = [
            {
                k: v
                for k, v in e.to_dict().items()
                if k
                in (
                    "question",
                    "also_asked",
                    "answer",
                    "status",
                    "author",
                    "approved_by",
                    "approved_at",
                )
            }
            for e in sorted(self.entries("approved"), key=lambda e: e.created_at)
        ]
        body: str = yaml.safe_dump(
            {"title": self.title, "entries": rows}, sort_keys=False, allow_unicode=True, width=88
        )
        return (
            "# Approved answers of the support team, exported by `supportbot gaps export`.\n"
            "# A YAML FAQ: review it in git, or ingest it with `supportbot ingest FILE`.\n" + body
        )

    # -- the file ------------------------------------------------------------------------

    def _read(self) -> list[AgentAnswer]:
        import yaml

        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise FaqError(
                f"The agent answers file {self.path} cannot be read ({exc}); check its "
                "permissions and encoding."
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise FaqError(
                f"The agent answers file {self.path} is not valid YAML ({where}{problem}). Fix "
                "it by hand (or restore it from a backup); nothing was changed."
            ) from exc
        if data is None:
            return []
        rows = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FaqError(
                f"The agent answers file {self.path} has no 'entries' list of mappings. Fix it "
                "by hand (or restore it from a backup); nothing was changed."
            )
        return [AgentAnswer.from_dict(r) for r in rows]

    def _change(self, change: Any) -> None:
        """Read, change and write the file under its lock; the old file stays on failure."""
        import yaml
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=30):
            entries = change(self._read())
            body = yaml.safe_dump(
                {"title": self.title, "entries": [e.to_dict() for e in entries]},
                sort_keys=False,
                allow_unicode=True,
                width=88,
            )
            fd, tmp = tempfile.mkstemp(prefix=".agent-answers-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(_HEADER + body)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def _update(self, entry_id: str, change: Any) -> AgentAnswer:
        done: list[AgentAnswer] = []

        def apply(entries: list[AgentAnswer]) -> list[AgentAnswer]:
            out = []
            for e in entries:
                if e.id == entry_id:
                    e = change(e)
                    done.append(e)
                out.append(e)
            if not done:
                raise FaqEntryNotFound(
                    f"No agent answer with id {entry_id!r}; list them with `supportbot gaps "
                    "answers`."
                )
            return out

        self._change(apply)
        return done[0]

    # -- texts ---------------------------------------------------------------------------

    def _text(self, value: object, what: str, limit: int) -> str:
        text = " ".join(strip_invisible(check_text(value, what)).split())
        text = redact(text, self.allow).strip()
        if not re.sub(r"\[[A-Z_]+\]", "", text).strip(" .,;:!?-"):
            raise InputError(
                f"{what} is empty (or only personal data, which is not kept); write it "
                "before saving."
            )
        if len(text) > limit:
            raise InputError(f"{what} has {len(text)} characters; keep it under {limit}.")
        return text

    def _clip(self, value: str, limit: int) -> str:
        text = " ".join(strip_invisible(check_text(value, "The gap's label")).split())
        return redact(text, self.allow)[:limit]

    def _wordings(self, values: Sequence[str], question: str) -> tuple[str, ...]:
        """Customers' wordings, redacted, without repeats or the question itself."""
        seen = {" ".join(question.lower().split())}
        out: list[str] = []
        for value in values:
            text = self._clip(value, MAX_QUESTION_CHARS).strip()
            key = " ".join(text.lower().split())
            if text and key not in seen:
                seen.add(key)
                out.append(text)
        return tuple(out[: self.max_also_asked])

    @staticmethod
    def _name(value: str) -> str:
        return " ".join(strip_invisible(check_text(value, "A name")).split())[:128]

    def _actor(self, actor: str) -> str:
        name = self._name(actor)
        if not name:
            raise InputError("Say who is making this change (the agent's name).")
        return name

    def _record(self, actor: str, action: str, entry: AgentAnswer) -> None:
        if self._audit is not None:
            self._audit.record(actor, action, f"faq {entry.id}", entry.question[:200])
