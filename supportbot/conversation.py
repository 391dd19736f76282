"""Conversations: the turns of each customer, kept per conversation id.

In memory by default; SQLite when configured, so conversations survive a restart and
several processes (web UI workers) can share them. Both are safe to use from several
threads at once.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from supportbot.keyword import tokenize

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message."""

    role: Role
    text: str
    ts: float = field(default_factory=time.time)
    meta: dict[str, Any] = field(default_factory=dict)


class ConversationStore(Protocol):
    """Keeps the turns of each conversation."""

    def history(self, conversation_id: str) -> list[Turn]:
        """All turns, oldest first (empty for an unknown id)."""
        ...

    def append(self, conversation_id: str, turn: Turn) -> None:
        """Add a turn at the end."""
        ...

    def annotate_last(self, conversation_id: str, role: Role, **meta: Any) -> bool:
        """Merge ``meta`` into the newest turn of ``role``; False if there is none."""
        ...

    def annotate_at(self, conversation_id: str, index: int, **meta: Any) -> bool:
        """Merge ``meta`` into the turn at ``index`` of :meth:`history`; False if none."""
        ...

    def since(self, ts: float) -> list[tuple[str, Turn]]:
        """``(conversation_id, turn)`` for every turn at or after ``ts``, oldest first.

        What the agent console's activity figures are counted from.
        """
        ...


class MemoryConversationStore:
    """Turns in a dict, guarded by a lock."""

    def __init__(self) -> None:
        self._turns: dict[str, list[Turn]] = {}
        self._lock = threading.Lock()

    def history(self, conversation_id: str) -> list[Turn]:
        """A copy of the turns."""
        with self._lock:
            return list(self._turns.get(conversation_id, []))

    def append(self, conversation_id: str, turn: Turn) -> None:
        """Add a turn."""
        with self._lock:
            self._turns.setdefault(conversation_id, []).append(turn)

    def annotate_last(self, conversation_id: str, role: Role, **meta: Any) -> bool:
        """Merge ``meta`` into the newest turn of ``role`` (e.g. a thumbs-down)."""
        with self._lock:
            turns = self._turns.get(conversation_id, [])
            last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == role), -1)
            return self._merge_at(turns, last, meta)

    def annotate_at(self, conversation_id: str, index: int, **meta: Any) -> bool:
        """Merge ``meta`` into the turn at ``index`` (e.g. a thumbs-up on an older answer)."""
        with self._lock:
            return self._merge_at(self._turns.get(conversation_id, []), index, meta)

    @staticmethod
    def _merge_at(turns: list[Turn], index: int, meta: dict[str, Any]) -> bool:
        if not 0 <= index < len(turns):
            return False
        t = turns[index]
        turns[index] = Turn(t.role, t.text, t.ts, {**t.meta, **meta})
        return True

    def since(self, ts: float) -> list[tuple[str, Turn]]:
        """Turns of every conversation at or after ``ts``, oldest first."""
        with self._lock:
            out = [(c, t) for c, turns in self._turns.items() for t in turns if t.ts >= ts]
        return sorted(out, key=lambda ct: ct[1].ts)


class SqliteConversationStore:
    """Turns in a SQLite file (WAL mode, one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS turns (conversation_id TEXT NOT NULL, "
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT NOT NULL, text TEXT NOT NULL, "
                "ts REAL NOT NULL, meta TEXT NOT NULL DEFAULT '{}')"
            )
            db.execute("CREATE INDEX IF NOT EXISTS turns_conv ON turns(conversation_id, seq)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30)
            self._local.conn = conn
        return conn

    def history(self, conversation_id: str) -> list[Turn]:
        """Turns read from the file."""
        rows = (
            self._conn()
            .execute(
                "SELECT role, text, ts, meta FROM turns WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            )
            .fetchall()
        )
        return [Turn(role=r[0], text=r[1], ts=r[2], meta=json.loads(r[3])) for r in rows]

    def annotate_last(self, conversation_id: str, role: Role, **meta: Any) -> bool:
        """Merge ``meta`` into the newest turn of ``role`` (e.g. a thumbs-down)."""
        return self._merge_meta(
            "SELECT seq, meta FROM turns WHERE conversation_id = ? AND role = ? "
            "ORDER BY seq DESC LIMIT 1",
            (conversation_id, role),
            meta,
        )

    def annotate_at(self, conversation_id: str, index: int, **meta: Any) -> bool:
        """Merge ``meta`` into the turn at ``index`` (e.g. a thumbs-up on an older answer)."""
        if index < 0:
            return False
        return self._merge_meta(
            "SELECT seq, meta FROM turns WHERE conversation_id = ? ORDER BY seq LIMIT 1 OFFSET ?",
            (conversation_id, index),
            meta,
        )

    def _merge_meta(self, select: str, args: tuple[Any, ...], meta: dict[str, Any]) -> bool:
        """Merge ``meta`` into the one turn ``select`` finds (seq, meta); False if none."""
        with self._conn() as db:
            row = db.execute(select, args).fetchone()
            if row is None:
                return False
            merged = {**json.loads(row[1]), **meta}
            db.execute("UPDATE turns SET meta = ? WHERE seq = ?", (json.dumps(merged), row[0]))
            return True

    def since(self, ts: float) -> list[tuple[str, Turn]]:
        """Turns of every conversation at or after ``ts``, oldest first."""
        rows = (
            self._conn()
            .execute(
                "SELECT conversation_id, role, text, ts, meta FROM turns WHERE ts >= ? "
                "ORDER BY seq",
                (ts,),
            )
            .fetchall()
        )
        return [(r[0], Turn(role=r[1], text=r[2], ts=r[3], meta=json.loads(r[4]))) for r in rows]

    def append(self, conversation_id: str, turn: Turn) -> None:
        """Insert a turn (committed at once)."""
        with self._conn() as db:
            db.execute(
                "INSERT INTO turns (conversation_id, role, text, ts, meta) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, turn.role, turn.text, turn.ts, json.dumps(turn.meta)),
            )


_REFERRING = {
    "it",
    "that",
    "this",
    "they",
    "them",
    "those",
    "these",
    "one",
    "ones",
    "there",
    "same",
    "other",
}


def is_followup(question: str) -> bool:
    """Whether a message is elliptical: it cannot be searched without the previous one.

    True when it has at most two content words ("and the satellites?", "how long does
    that take?"), or three with a word pointing back ("can I use it with my modem?"). A
    complete question is searched on its own even when it opens like a follow-up ("and
    how long does a factory reset take?"): joining it to the previous question would
    pull the search back to the previous topic.
    """
    q = question.lower().strip()
    words = set(re.findall(r"[a-z']+", q))
    content = tokenize(q)
    return len(content) <= 2 or (len(content) <= 3 and bool(words & _REFERRING))


def retrieval_query(question: str, history: list[Turn]) -> str:
    """The text to search with: a follow-up is joined to the customer's previous question."""
    previous = [t.text for t in history if t.role == "user"]
    if previous and is_followup(question):
        return f"{previous[-1]} {question}"
    return question
