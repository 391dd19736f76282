"""The audit log: who did what to which hand-off, document or account, and when.

Agents' desk actions (claim, reply, resolve, hand back), the knowledge-base page's
ingest and remove, sign-ins (failed ones too), sign-outs and account changes are
appended to one SQLite table in the data folder (``<data_dir>/audit.db``). Entries are
only ever added; nothing in supportbot updates or deletes them. Admins see the recent
entries on the knowledge-base page; ``supportbot audit`` lists them in a terminal.

What is written is bounded and plain: control and invisible characters are removed and
each field is capped, so a hostile name typed into the sign-in form cannot forge lines
in a terminal or fill the disk. Reply texts are not copied here (they stay in the
conversation store); the entry says how long the reply was.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from supportbot.safety.hygiene import strip_invisible

__all__ = ["ACTIONS", "AuditEntry", "AuditLog"]

logger = logging.getLogger("supportbot.audit")

ACTIONS = (
    "claim",
    "reply",
    "resolve",
    "hand_back",
    "ingest",
    "remove",
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "account_add",
    "account_remove",
    "account_password",
    "account_role",
)
"""Every action the product records (others are accepted, for integrators' own)."""

_LIMITS = {"actor": 128, "action": 32, "target": 256, "detail": 500}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "ts REAL NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, "
    "target TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts DESC)",
)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action.

    Attributes:
        id: increasing number (the order entries were written in).
        at: when, ISO 8601 in UTC (``2025-01-31T09:15:02Z``).
        actor: who: an account name, ``cli:<os user>`` for the command line, or the name
            typed into a failed sign-in.
        action: what, one of :data:`ACTIONS`.
        target: on what: a hand-off id, a document, a folder or an account name.
        detail: a short note (counts, the new role).
    """

    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: str


def _clean(value: object, field: str) -> str:
    text = str(value).encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    text = strip_invisible(text).replace("\n", " ").replace("\r", " ").strip()
    limit = _LIMITS[field]
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AuditLog:
    """An append-only table of actions in one SQLite file.

    The file is created on the first entry (a process that never acts writes nothing),
    readable by its owner only. Each call opens its own short connection, so one log
    can be shared by every thread and process using the data folder.

    Example:
        >>> log = AuditLog(Path(".supportbot/audit.db"))
        >>> log.record("maria", "claim", "1a2b3c4d")
        >>> [(e.actor, e.action, e.target) for e in log.recent(5)]
        [('maria', 'claim', '1a2b3c4d')]
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fresh = not self.path.exists()
                    with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
                        db.execute("PRAGMA journal_mode=WAL")
                        for statement in _SCHEMA:
                            db.execute(statement)
                    if fresh:
                        os.chmod(self.path, 0o600)
                    self._ready = True
        return sqlite3.connect(self.path, timeout=30)

    def record(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        """Append one entry (now, in UTC).

        A failure to write (a full disk, a read-only folder) is logged at ERROR level and
        does not undo or block the action itself, which has already happened.
        """
        now = time.time()
        at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = (
            now,
            at,
            _clean(actor, "actor") or "unknown",
            _clean(action, "action"),
            _clean(target, "target"),
            _clean(detail, "detail"),
        )
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    "INSERT INTO audit (ts, at, actor, action, target, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
        except (sqlite3.Error, OSError) as exc:
            logger.error("audit entry not written (%s): %s %s %s", exc, row[2], row[3], row[4])

    def recent(
        self, limit: int = 100, *, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """The newest entries first, at most ``limit``, optionally for one actor or action."""
        if not self.path.exists():
            return []
        where, args = [], []
        if actor is not None:
            where.append("actor = ?")
            args.append(actor)
        if action is not None:
            where.append("action = ?")
            args.append(action)
        sql = "SELECT id, at, actor, action, target, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with closing(self._connect()) as db:
            rows = db.execute(sql, (*args, max(0, int(limit)))).fetchall()
        return [AuditEntry(*row) for row in rows]
