"""The local hand-off queue: the system of record for hand-offs and their lifecycle.

One SQLite file holds every packet with its status (open, claimed, resolved, handed
back) and the dead letters of deliveries that failed, so the agent console, the bot and
webhook retries share one truth across threads and processes.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from supportbot.errors import HandoffError, HandoffNotFound
from supportbot.handoff.packet import _OPEN, PRIORITIES, STATUSES, HandoffPacket, _now_iso

__all__ = ["DeadLetter", "MemoryDeadLetters", "SqliteHandoffQueue"]

logger = logging.getLogger("supportbot.handoff.queue")


@dataclass(frozen=True)
class DeadLetter:
    """A packet that could not be delivered, kept so it can be re-sent."""

    id: int
    packet: HandoffPacket
    url: str
    """Where it was going (``callback:<name>`` for a :class:`CallbackSink`)."""
    last_error: str
    attempts: int
    created_at: str


_RANK = {p: i for i, p in enumerate(PRIORITIES)}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS handoffs (id TEXT PRIMARY KEY, "
    "idempotency_key TEXT NOT NULL UNIQUE, conversation_id TEXT NOT NULL, "
    "packet TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL, "
    "priority_rank INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
    "agent TEXT)",
    "CREATE INDEX IF NOT EXISTS handoffs_order ON handoffs(priority_rank DESC, created_at DESC)",
    "CREATE INDEX IF NOT EXISTS handoffs_conv ON handoffs(conversation_id)",
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "packet TEXT NOT NULL, url TEXT NOT NULL, last_error TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
)


class SqliteHandoffQueue:
    """The local hand-off queue: packets, their status and dead letters.

    One SQLite file in WAL mode with one connection per thread, so the bot, the agent
    console and webhook retries can share it from several threads and processes.

    Example:
        >>> q = SqliteHandoffQueue(Path("handoffs.db"))
        >>> q.deliver(packet); q.update_status(packet.id, "claimed", agent="sam")
        >>> q.add_agent_message(packet.conversation_id, "sam", "Hi, I can help.")
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as db:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                db.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # packets

    def deliver(self, packet: HandoffPacket) -> None:
        """Queue a packet; one with an already queued idempotency key is ignored."""
        now = _now_iso()
        with self._conn() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO handoffs (id, idempotency_key, conversation_id, packet, "
                "status, priority, priority_rank, created_at, updated_at, agent) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    packet.id,
                    packet.idempotency_key,
                    packet.conversation_id,
                    packet.to_json(),
                    packet.status,
                    packet.priority,
                    _RANK[packet.priority],
                    packet.created_at,
                    now,
                    packet.agent,
                ),
            )
        if cur.rowcount:
            logger.info(
                "hand-off %s queued (conversation %s, priority %s, reasons %s)",
                packet.id,
                packet.conversation_id,
                packet.priority,
                ",".join(packet.reasons),
            )
        else:
            logger.info(
                "hand-off %s ignored: duplicate of a queued one (idempotency key %s)",
                packet.id,
                packet.idempotency_key[:12],
            )

    @staticmethod
    def _packet(row: tuple[Any, ...]) -> HandoffPacket:
        data = json.loads(row[0])
        data["status"], data["agent"] = row[1], row[2]
        return HandoffPacket.from_dict(data)

    def list(self, status: str | None = None) -> builtins.list[HandoffPacket]:
        """Queued packets, most urgent first, then newest first; optionally one status."""
        sql = "SELECT packet, status, agent FROM handoffs"
        args: tuple[str, ...] = ()
        if status is not None:
            sql, args = sql + " WHERE status = ?", (status,)
        sql += " ORDER BY priority_rank DESC, created_at DESC, rowid DESC"
        return [self._packet(r) for r in self._conn().execute(sql, args).fetchall()]

    def get(self, id: str) -> HandoffPacket | None:
        """The packet with this id, or None."""
        row = (
            self._conn()
            .execute("SELECT packet, status, agent FROM handoffs WHERE id = ?", (id,))
            .fetchone()
        )
        return self._packet(row) if row else None

    def get_by_conversation(
        self, conversation_id: str, open_only: bool = True
    ) -> HandoffPacket | None:
        """The conversation's newest packet, or None; by default only an open or claimed one.

        The bot uses this to tell that a conversation is with an agent (resolved and
        handed-back packets give it back to the bot).
        """
        sql = "SELECT packet, status, agent FROM handoffs WHERE conversation_id = ?"
        args: tuple[str, ...] = (conversation_id,)
        if open_only:
            sql += f" AND status IN ({', '.join('?' for _ in _OPEN)})"
            args += _OPEN
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT 1"
        row = self._conn().execute(sql, args).fetchone()
        return self._packet(row) if row else None

    def update_status(self, id: str, status: str, agent: str | None = None) -> HandoffPacket:
        """Move a packet to ``status`` (and set its agent, if given); returns it updated.

        Raises:
            ValueError: ``status`` is not one of :data:`STATUSES`.
            KeyError: no packet has this id.
        """
        if status not in STATUSES:
            raise HandoffError(f"Unknown hand-off status {status!r}; use one of {STATUSES}.")
        with self._conn() as db:
            cur = db.execute(
                "UPDATE handoffs SET status = ?, agent = COALESCE(?, agent), updated_at = ? "
                "WHERE id = ?",
                (status, agent, _now_iso(), id),
            )
        if not cur.rowcount:
            raise HandoffNotFound(f"No hand-off with id {id!r}; list them with desk.handoffs().")
        logger.info("hand-off %s is now %s", id, status)
        packet = self.get(id)
        assert packet is not None
        return packet

    # dead letters (used by WebhookSink)

    def add_dead_letter(
        self, packet: HandoffPacket, url: str, error: str, attempts: int
    ) -> DeadLetter:
        """Keep a packet that could not be delivered to ``url``."""
        now = _now_iso()
        with self._conn() as db:
            cur = db.execute(
                "INSERT INTO dead_letters (packet, url, last_error, attempts, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (packet.to_json(), url, error, attempts, now, now),
            )
        assert cur.lastrowid is not None
        return DeadLetter(cur.lastrowid, packet, url, error, attempts, now)

    def dead_letters(self) -> builtins.list[DeadLetter]:
        """Undelivered packets, oldest first."""
        rows = (
            self._conn()
            .execute(
                "SELECT id, packet, url, last_error, attempts, created_at FROM dead_letters "
                "ORDER BY id"
            )
            .fetchall()
        )
        return [
            DeadLetter(r[0], HandoffPacket.from_json(r[1]), r[2], r[3], r[4], r[5]) for r in rows
        ]

    def record_dead_letter_failure(self, id: int, error: str, attempts: int) -> None:
        """Note another failed attempt to re-send a dead letter."""
        with self._conn() as db:
            db.execute(
                "UPDATE dead_letters SET last_error = ?, attempts = attempts + ?, updated_at = ? "
                "WHERE id = ?",
                (error, attempts, _now_iso(), id),
            )

    def remove_dead_letter(self, id: int) -> None:
        """Forget a dead letter (it was delivered after all)."""
        with self._conn() as db:
            db.execute("DELETE FROM dead_letters WHERE id = ?", (id,))


class MemoryDeadLetters:
    """Dead letters kept in memory (lost on restart) when no queue is given."""

    def __init__(self) -> None:
        self._letters: dict[int, DeadLetter] = {}
        self._next = 1
        self._lock = threading.Lock()

    def add_dead_letter(
        self, packet: HandoffPacket, url: str, error: str, attempts: int
    ) -> DeadLetter:
        """Keep ``packet`` as a dead letter; returns it with its id."""
        with self._lock:
            letter = DeadLetter(self._next, packet, url, error, attempts, _now_iso())
            self._letters[letter.id] = letter
            self._next += 1
            return letter

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        with self._lock:
            return [self._letters[k] for k in sorted(self._letters)]

    def record_dead_letter_failure(self, id: int, error: str, attempts: int) -> None:
        """Note one more failed re-send of dead letter ``id``."""
        with self._lock:
            old = self._letters.get(id)
            if old is not None:
                self._letters[id] = DeadLetter(
                    id, old.packet, old.url, error, old.attempts + attempts, old.created_at
                )

    def remove_dead_letter(self, id: int) -> None:
        """Forget dead letter ``id`` (it was delivered)."""
        with self._lock:
            self._letters.pop(id, None)
