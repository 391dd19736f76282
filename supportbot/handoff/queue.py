"""The local hand-off queue: the system of record for hand-offs and their lifecycle.

One SQLite file holds every packet with its status (open, claimed, resolved, handed
back), the **outbox** of deliveries still owed to a helpdesk (written in the same
transaction as the packet, see :mod:`supportbot.handoff.outbox`) and the dead letters of
deliveries that failed, so the agent console, the bot and webhook retries share one truth
across threads and processes.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

from supportbot.errors import HandoffError, HandoffNotFound
from supportbot.handoff.packet import _OPEN, PRIORITIES, STATUSES, HandoffPacket, _now_iso

__all__ = ["DeadLetter", "MemoryDeadLetters", "OutboxEntry", "SqliteHandoffQueue"]

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


OutboxState = Literal["pending", "sending", "delivered", "dead"]
OUTBOX_STATES: tuple[OutboxState, ...] = ("pending", "sending", "delivered", "dead")
"""pending (waiting for its next attempt) -> sending (one attempt in flight, leased to one
worker) -> delivered, or back to pending after a failure, or dead (retries exhausted or a
4xx answer); a dead one is re-sent on request (console button, ``supportbot handoffs
retry``)."""


@dataclass(frozen=True)
class OutboxEntry:
    """One delivery owed to one target (a helpdesk webhook), as the outbox table holds it."""

    id: int
    handoff_id: str
    target: str
    """The sink that delivers it (``webhook``)."""
    url: str
    """Where it was going when it was queued (shown to people; the configured URL is used)."""
    idempotency_key: str
    body: str
    """The packet's JSON exactly as queued: every attempt sends these bytes."""
    state: OutboxState
    attempts: int
    next_attempt_at: float
    """Epoch seconds: no attempt before this."""
    timeout: float | None
    """Seconds the next attempt waits for an answer (grows after a timeout)."""
    lease_owner: str | None
    """``host:pid:token`` of the worker whose attempt is in flight (state ``sending``)."""
    lease_until: float | None
    last_error: str
    created_at: str
    updated_at: str
    delivered_at: str | None

    @property
    def packet(self) -> HandoffPacket:
        """The packet this delivery carries."""
        return HandoffPacket.from_json(self.body)


_OUTBOX_COLUMNS = (
    "id, handoff_id, target, url, idempotency_key, body, state, attempts, next_attempt_at, "
    "timeout, lease_owner, lease_until, last_error, created_at, updated_at, delivered_at"
)

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
    # Deliveries owed to helpdesks, written with the packet (see open_handoff).
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "handoff_id TEXT NOT NULL, target TEXT NOT NULL, url TEXT NOT NULL, "
    "idempotency_key TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, timeout REAL, "
    "lease_owner TEXT, lease_until REAL, last_error TEXT NOT NULL DEFAULT '', "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, delivered_at TEXT, "
    "UNIQUE (handoff_id, target))",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(target, state, next_attempt_at)",
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
            inserted = self._insert(db, packet, now)
        if inserted:
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

    def open_handoff(
        self, packet: HandoffPacket, deliveries: Sequence[tuple[str, str]] = ()
    ) -> tuple[HandoffPacket, bool]:
        """Queue ``packet`` unless its conversation already has an open hand-off.

        One ``BEGIN IMMEDIATE`` transaction (one writer at a time, across threads and
        processes) checks for an open or claimed hand-off of the conversation, inserts the
        packet and one outbox row per ``(target, url)`` in ``deliveries``, so a packet is
        never recorded without the deliveries it is owed, and two simultaneous
        escalations of one conversation give one packet.

        Returns:
            ``(packet, True)`` when queued; ``(the open one, False)`` when the
            conversation already had one (or a packet with the same idempotency key).
        """
        now, epoch = _now_iso(), time.time()
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT packet, status, agent FROM handoffs WHERE conversation_id = ? AND "
                f"status IN ({', '.join('?' for _ in _OPEN)}) "
                "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (packet.conversation_id, *_OPEN),
            ).fetchone()
            if row is None:
                row = db.execute(
                    "SELECT packet, status, agent FROM handoffs WHERE idempotency_key = ?",
                    (packet.idempotency_key,),
                ).fetchone()
            if row is not None:
                db.commit()
                existing = self._packet(row)
                logger.info(
                    "hand-off for conversation %s not queued: %s is already there",
                    packet.conversation_id,
                    existing.id,
                )
                return existing, False
            self._insert(db, packet, now)
            body = packet.to_json()
            for target, url in deliveries:
                db.execute(
                    "INSERT OR IGNORE INTO outbox (handoff_id, target, url, idempotency_key, "
                    "body, state, next_attempt_at, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                    (packet.id, target, url, packet.idempotency_key, body, epoch, now, now),
                )
            db.commit()
        except BaseException:
            db.rollback()
            raise
        logger.info(
            "hand-off %s queued (conversation %s, priority %s, reasons %s, %d delivery(ies))",
            packet.id,
            packet.conversation_id,
            packet.priority,
            ",".join(packet.reasons),
            len(deliveries),
        )
        return packet, True

    @staticmethod
    def _insert(db: sqlite3.Connection, packet: HandoffPacket, now: str) -> int:
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
        return cur.rowcount

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

    # outbox (used by supportbot.handoff.outbox.Outbox)

    def outbox_add(self, packet: HandoffPacket, target: str, url: str) -> bool:
        """Owe ``target`` a delivery of ``packet`` (once per packet and target)."""
        now = _now_iso()
        with self._conn() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox (handoff_id, target, url, idempotency_key, body, "
                "state, next_attempt_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (packet.id, target, url, packet.idempotency_key, packet.to_json(), time.time(),
                 now, now),
            )  # fmt: skip
        return bool(cur.rowcount)

    def outbox(
        self,
        states: Sequence[str] | None = None,
        target: str | None = None,
        handoff_ids: Sequence[str] | None = None,
    ) -> builtins.list[OutboxEntry]:
        """Outbox rows, oldest first, optionally of some states, one target, some packets."""
        sql, args = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE 1", []
        if states is not None:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            args += list(states)
        if target is not None:
            sql += " AND target = ?"
            args.append(target)
        if handoff_ids is not None:
            sql += f" AND handoff_id IN ({', '.join('?' for _ in handoff_ids)})"
            args += list(handoff_ids)
        rows = self._conn().execute(sql + " ORDER BY id", args).fetchall()
        return [OutboxEntry(*r) for r in rows]

    def outbox_entry(self, id: int) -> OutboxEntry | None:
        """One outbox row, or None."""
        row = (
            self._conn()
            .execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (id,))
            .fetchone()
        )
        return OutboxEntry(*row) if row else None

    def outbox_candidates(
        self, target: str, now: float, limit: int = 50
    ) -> builtins.list[OutboxEntry]:
        """Rows a worker may take: pending ones that are due, and every one in flight.

        Of those in flight, the caller keeps the ones whose lease ran out or whose worker
        died.
        """
        rows = (
            self._conn()
            .execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE target = ? AND "
                "((state = 'pending' AND next_attempt_at <= ?) OR state = 'sending') "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (target, now, limit),
            )
            .fetchall()
        )
        return [OutboxEntry(*r) for r in rows]

    def outbox_next_wake(self, target: str) -> float | None:
        """The earliest moment a row of ``target`` becomes due or its lease runs out."""
        row = (
            self._conn()
            .execute(
                "SELECT MIN(CASE state WHEN 'pending' THEN next_attempt_at ELSE lease_until END) "
                "FROM outbox WHERE target = ? AND state IN ('pending', 'sending')",
                (target,),
            )
            .fetchone()
        )
        return float(row[0]) if row and row[0] is not None else None

    def outbox_claim(
        self, entry: OutboxEntry, owner: str, lease_until: float
    ) -> OutboxEntry | None:
        """Take ``entry`` for one attempt if nobody changed it since it was read.

        A compare-and-set on its state and lease owner: of several workers (threads or
        processes) reading the same row, exactly one gets it.
        """
        with self._conn() as db:
            cur = db.execute(
                "UPDATE outbox SET state = 'sending', lease_owner = ?, lease_until = ?, "
                "updated_at = ? WHERE id = ? AND state = ? AND lease_owner IS ? AND attempts = ?",
                (owner, lease_until, _now_iso(), entry.id, entry.state, entry.lease_owner,
                 entry.attempts),
            )  # fmt: skip
        return self.outbox_entry(entry.id) if cur.rowcount == 1 else None

    def outbox_finish(
        self,
        id: int,
        owner: str,
        state: OutboxState,
        error: str = "",
        next_attempt_at: float | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Record the outcome of ``owner``'s attempt: one more attempt, the new state.

        Returns False when the row was no longer leased to ``owner`` (nothing written).
        """
        now = _now_iso()
        with self._conn() as db:
            cur = db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), timeout = COALESCE(?, timeout), "
                "lease_owner = NULL, lease_until = NULL, updated_at = ?, "
                "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END "
                "WHERE id = ? AND state = 'sending' AND lease_owner = ?",
                (state, error, next_attempt_at, timeout, now, state, now, id, owner),
            )
        return cur.rowcount == 1

    def outbox_due_now(self, target: str) -> int:
        """Make every pending row of ``target`` due now (an operator's "retry now")."""
        with self._conn() as db:
            cur = db.execute(
                "UPDATE outbox SET next_attempt_at = ?, updated_at = ? "
                "WHERE target = ? AND state = 'pending' AND next_attempt_at > ?",
                (time.time(), _now_iso(), target, time.time()),
            )
        return cur.rowcount

    def outbox_adopt_dead_letters(self, target: str, url: str) -> int:
        """Move dead letters of an older version into the outbox as dead rows of ``target``.

        They were kept in the ``dead_letters`` table; as outbox rows the console and the
        CLI list and retry them like any other.
        """
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                "SELECT id, packet, url, last_error, attempts, created_at FROM dead_letters"
            ).fetchall()
            moved = 0
            for id, body, old_url, error, attempts, created in rows:
                packet = HandoffPacket.from_json(body)
                db.execute(
                    "INSERT OR IGNORE INTO outbox (handoff_id, target, url, idempotency_key, "
                    "body, state, attempts, next_attempt_at, last_error, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, 'dead', ?, ?, ?, ?, ?)",
                    (packet.id, target, old_url or url, packet.idempotency_key, body, attempts,
                     time.time(), error, created, _now_iso()),
                )  # fmt: skip
                db.execute("DELETE FROM dead_letters WHERE id = ?", (id,))
                moved += 1
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return moved


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
