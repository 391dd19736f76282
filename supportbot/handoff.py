"""Hand-off to a human agent: the packet an agent reads, and the sinks that deliver it.

When the escalation policy decides a conversation needs a person, :func:`build_packet`
turns the conversation into a :class:`HandoffPacket`: who asked what (a short extractive
summary and the transcript), why the bot gave up (reason codes and evidence), which
passages it tried, what the customer told us (order number, serial, email) and, when the
bot had a partial answer, a draft reply. Personal data is redacted by default
(:mod:`supportbot.redact`); the raw transcript stays in the local conversation store.

Sinks deliver packets; each has one method, ``deliver(packet)``:

* :class:`SqliteHandoffQueue` - the default: a local queue the agent console reads and
  updates (claim, resolve, hand back), plus agent replies that reach the customer.
* :class:`WebhookSink` - POSTs the packet as JSON to a helpdesk, signed, retried with
  backoff, idempotent; what cannot be delivered is kept as a dead letter and re-sent by
  :meth:`WebhookSink.redeliver_dead_letters`.
* :class:`CallbackSink` - calls a Python function given by the embedding application.

:func:`build_sinks` builds them from :class:`~supportbot.config.HandoffSettings`, and
:func:`deliver_packet` hands one packet to all of them without ever raising.

Reason codes are plain strings (the names of the escalation policy's ``Reason`` enum,
e.g. ``"SENSITIVE_TOPIC"``); enum members are accepted and stored by value.
"""

from __future__ import annotations

import builtins
import email.utils
import hashlib
import hmac
import json
import logging
import queue
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from supportbot.conversation import Turn
from supportbot.errors import ConfigError
from supportbot.redact import find_pii, mask, redact
from supportbot.types import Hit

if TYPE_CHECKING:
    from supportbot.config import HandoffSettings

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "AgentMessage",
    "BackgroundSink",
    "CallbackSink",
    "DeadLetter",
    "HandoffPacket",
    "HandoffSink",
    "Priority",
    "SqliteHandoffQueue",
    "Status",
    "WebhookSink",
    "build_packet",
    "build_sinks",
    "deliver_packet",
    "extract_customer_fields",
    "priority_for",
    "summarize",
]

logger = logging.getLogger("supportbot.handoff")

Status = Literal["open", "claimed", "resolved", "handed_back"]
Priority = Literal["low", "normal", "high", "urgent"]
STATUSES: tuple[Status, ...] = ("open", "claimed", "resolved", "handed_back")
"""Life of a hand-off: open -> claimed (an agent took it) -> resolved, or handed_back to
the bot."""
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
"""From least to most urgent."""
_OPEN: tuple[Status, ...] = ("open", "claimed")

# Reason codes, as the escalation policy names them.
_NO_RELEVANT_CONTEXT = "NO_RELEVANT_CONTEXT"
_HUMAN_REQUESTED = "HUMAN_REQUESTED"
_FRUSTRATION = "FRUSTRATION"
_SENSITIVE_TOPIC = "SENSITIVE_TOPIC"
_FAILURES = frozenset(
    {"NO_RELEVANT_CONTEXT", "UNSUPPORTED_ANSWER", "LOW_CONFIDENCE", "REPEATED_FAILURE"}
)

_SAFETY_WORDS = re.compile(
    r"\b(?:fire|flames?|on fire|smok(?:e|es|ed|ing|ey|y)|burn(?:s|t|ed|ing)?|sparks?|sparking"
    r"|(?:electric(?:al)? )?shock(?:s|ed|ing)?|electrocut\w*|melt(?:s|ed|ing)?|explod\w*"
    r"|explosion|injur(?:y|ies|ed)|scorch\w*)\b",
    re.IGNORECASE,
)
_LEGAL_WORDS = re.compile(
    r"\b(?:lawyers?|attorneys?|solicitors?|legal action|lawsuit|class action|sue|suing"
    r"|court|small claims|consumer protection|ombudsman|trading standards|regulator)\b",
    re.IGNORECASE,
)

# Customer fields: identifiers an agent needs, masked to their last 4 characters.
_SERIAL = re.compile(r"\bBWN[A-Z0-9]{5,15}\b", re.IGNORECASE)
_ORDER = re.compile(
    r"\border\b\s*(?:number|no\.?|num|id|ref(?:erence)?|#)?\s*(?:is|was|:|=)?\s*#?\s*"
    r"(?P<value>[A-Z0-9][A-Z0-9\-]{3,23})\b",
    re.IGNORECASE,
)
_MASKED_FIELDS = frozenset(
    {"email", "phone", "order_number", "serial", "account_id", "customer_id", "card"}
)
# Of those, the ones redact() does not find by itself: masked in the text too.
_MASKED_IN_TEXT = frozenset({"order_number", "serial", "account_id", "customer_id"})

_SNIPPET_CHARS = 300
_SUMMARY_CHARS = 200


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ts_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _code(reason: object) -> str:
    value = reason.value if isinstance(reason, Enum) else reason
    return str(value)


def _norm_code(code: str) -> str:
    return re.sub(r"[\s\-]+", "_", code.strip()).upper()


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


# -- the packet --------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffPacket:
    """Everything an agent needs to take a conversation over from the bot.

    Every value is JSON-safe; :meth:`to_dict` / :meth:`from_dict` round-trip it.

    Example:
        >>> packet = build_packet("conv-1", turns, ["HUMAN_REQUESTED"])
        >>> packet.priority, packet.summary
        >>> json.dumps(packet.to_dict())
    """

    id: str
    """uuid4 hex."""
    conversation_id: str
    created_at: str
    """ISO 8601, UTC (``...Z``)."""
    status: Status
    priority: Priority
    reasons: list[str]
    """Reason codes, e.g. ``["SENSITIVE_TOPIC"]``."""
    evidence: list[dict[str, Any]]
    """``{"reason", "detail", "score", "matched"}`` per signal the policy saw."""
    summary: str
    """The customer's first substantive question and their latest one, trimmed."""
    transcript: list[dict[str, Any]]
    """``{"role", "text", "ts"}`` per turn, oldest first, ``ts`` in ISO 8601 UTC."""
    passages: list[dict[str, Any]]
    """``{"source", "title", "heading", "page", "score", "snippet"}``: what the bot tried."""
    customer_fields: dict[str, str]
    """E.g. ``email``, ``order_number``, ``serial``, ``phone`` (masked when redacting)."""
    suggested_reply: str | None
    """A draft for the agent when the bot had a partial answer."""
    idempotency_key: str
    """sha256 of conversation id, reasons and turn count: the same escalation sent twice
    has the same key, so receivers can drop the copy."""
    agent: str | None = None
    """The agent who claimed it."""

    def to_dict(self) -> dict[str, Any]:
        """The packet as plain JSON-safe data (a deep copy)."""
        return asdict(self)

    def to_json(self) -> str:
        """The packet as a JSON document (the webhook body)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HandoffPacket:
        """Rebuild a packet from :meth:`to_dict` output; unknown keys are ignored.

        Raises:
            ValueError: a field is missing, or status/priority is not a known value.
        """
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data and n != "agent"]
        if missing:
            raise ValueError(f"Hand-off packet is missing {', '.join(missing)}.")
        if data["status"] not in STATUSES:
            raise ValueError(f"Unknown hand-off status {data['status']!r}; use one of {STATUSES}.")
        if data["priority"] not in PRIORITIES:
            raise ValueError(
                f"Unknown hand-off priority {data['priority']!r}; use one of {PRIORITIES}."
            )
        return cls(
            id=str(data["id"]),
            conversation_id=str(data["conversation_id"]),
            created_at=str(data["created_at"]),
            status=data["status"],
            priority=data["priority"],
            reasons=[str(r) for r in data["reasons"]],
            evidence=[dict(e) for e in data["evidence"]],
            summary=str(data["summary"]),
            transcript=[dict(t) for t in data["transcript"]],
            passages=[dict(p) for p in data["passages"]],
            customer_fields={str(k): str(v) for k, v in dict(data["customer_fields"]).items()},
            suggested_reply=data["suggested_reply"],
            idempotency_key=str(data["idempotency_key"]),
            agent=data.get("agent"),
        )

    @classmethod
    def from_json(cls, text: str) -> HandoffPacket:
        """Rebuild a packet from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def priority_for(
    reasons: Collection[str], customer_text: str = "", earlier_failures: bool = False
) -> Priority:
    """How urgent a hand-off is.

    * ``urgent``: SENSITIVE_TOPIC and the customer mentions safety (fire, smoke, sparks,
      shock, injury...) or legal steps (lawyer, lawsuit, court...);
    * ``high``: FRUSTRATION, any other SENSITIVE_TOPIC, or HUMAN_REQUESTED after the bot
      failed (a failure reason, or ``earlier_failures``);
    * ``low``: NO_RELEVANT_CONTEXT alone (a question the documentation does not cover);
    * ``normal``: everything else.
    """
    codes = {_norm_code(_code(r)) for r in reasons}
    if _SENSITIVE_TOPIC in codes and (
        _SAFETY_WORDS.search(customer_text) or _LEGAL_WORDS.search(customer_text)
    ):
        return "urgent"
    if _FRUSTRATION in codes or _SENSITIVE_TOPIC in codes:
        return "high"
    if _HUMAN_REQUESTED in codes and (codes & _FAILURES or earlier_failures):
        return "high"
    if codes == {_NO_RELEVANT_CONTEXT}:
        return "low"
    return "normal"


_SMALLTALK = re.compile(
    r"^\W*(?:hi|hello|hey|good (?:morning|afternoon|evening)|thanks?|thank you|ok(?:ay)?"
    r"|yes|no|yep|nope|sure|please)\b",
    re.IGNORECASE,
)
_WANTS_HUMAN = re.compile(
    r"\b(?:human|agent|person|representative|operator|someone|somebody|real people|manager"
    r"|supervisor)\b",
    re.IGNORECASE,
)


def _substantive(text: str) -> bool:
    words = re.findall(r"[\w']+", text)
    if len(words) < 4:
        return False
    if len(words) <= 10 and _WANTS_HUMAN.search(text):
        return False
    return not (len(words) <= 5 and _SMALLTALK.match(text))


def summarize(customer_messages: Sequence[str], limit: int = _SUMMARY_CHARS) -> str:
    """A short extractive summary: the first substantive question, then the latest one.

    Greetings and bare requests for a human ("agent please") are skipped; each part is
    trimmed to ``limit`` characters at a word boundary.

    Example:
        >>> summarize(["hi", "My R1 shows E-104 after the update", "get me a human"])
        'My R1 shows E-104 after the update'
    """
    if not customer_messages:
        return "(no customer message)"
    useful = [m for m in customer_messages if _substantive(m)]
    if not useful:
        return _trim(customer_messages[-1], limit)
    first, latest = _trim(useful[0], limit), _trim(useful[-1], limit)
    return first if latest == first else f"{first} | Latest: {latest}"


def extract_customer_fields(customer_messages: Iterable[str]) -> dict[str, str]:
    """Identifiers the customer gave: ``email``, ``phone``, ``order_number``, ``serial``.

    Values are raw (not masked); the last mention wins, since customers correct
    themselves. Serial numbers are Brightwave's ``BWN...``; order numbers follow the word
    "order" ("order #A-12345", "order number is 100234987") and contain a digit.
    """
    found: dict[str, str] = {}
    for text in customer_messages:
        for span in find_pii(text):
            if span.kind in ("EMAIL", "PHONE"):
                found[span.kind.lower()] = text[span.start : span.end]
        for m in _SERIAL.finditer(text):
            found["serial"] = m.group().upper()
        for m in _ORDER.finditer(text):
            value = m.group("value").strip("-")
            if any(ch.isdigit() for ch in value) and len(value) >= 4:
                found["order_number"] = value
    return found


def _evidence(item: Any) -> dict[str, Any]:
    get: Callable[[str], Any]
    if isinstance(item, Mapping):
        get = item.get
    else:

        def get(name: str) -> Any:
            return getattr(item, name, None)

    score = get("score")
    return {
        "reason": _code(get("reason") or ""),
        "detail": str(get("detail") or ""),
        "score": float(score) if score is not None else None,
        "matched": [str(m) for m in (get("matched") or ())],
    }


def _passage(item: Any) -> dict[str, Any]:
    if isinstance(item, Hit):
        c = item.chunk
        values: dict[str, Any] = {
            "source": c.source,
            "title": c.title,
            "heading": c.heading,
            "page": c.page,
            "score": item.score,
            "snippet": c.text,
        }
    else:
        get: Callable[[str], Any] = (
            item.get if isinstance(item, Mapping) else lambda n: getattr(item, n, None)
        )
        values = {n: get(n) for n in ("source", "title", "heading", "page", "score")}
        values["snippet"] = get("snippet") or get("text") or ""
    score = values["score"]
    page = values["page"]
    return {
        "source": str(values["source"] or ""),
        "title": str(values["title"] or ""),
        "heading": str(values["heading"] or ""),
        "page": int(page) if page is not None else None,
        "score": round(float(score), 4) if score is not None else None,
        "snippet": _trim(str(values["snippet"]), _SNIPPET_CHARS),
    }


def _idempotency_key(conversation_id: str, codes: Sequence[str], turns: int) -> str:
    material = "\n".join([conversation_id, ",".join(sorted(set(codes))), str(turns)])
    return hashlib.sha256(material.encode()).hexdigest()


def build_packet(
    conversation_id: str,
    transcript: Sequence[Turn],
    reasons: Sequence[str],
    evidence: Sequence[Any] = (),
    passages: Sequence[Any] = (),
    suggested_reply: str | None = None,
    redact_pii: bool = True,
    customer_fields: Mapping[str, str] | None = None,
    *,
    allow: Collection[str] = (),
) -> HandoffPacket:
    """Build the hand-off packet for one escalated conversation.

    Args:
        conversation_id: the conversation being handed over.
        transcript: its turns, oldest first (raw: redaction happens here).
        reasons: reason codes (strings or the policy's ``Reason`` members).
        evidence: the policy's evidence, as mappings or objects with ``reason``,
            ``detail``, ``score`` and ``matched``.
        passages: what the bot tried: :class:`~supportbot.types.Hit`, ``Citation`` or
            mappings with ``source``/``title``/``heading``/``page``/``score``/``snippet``.
            Passages are knowledge-base text and are not redacted.
        suggested_reply: a draft answer for the agent, if the bot had a partial one.
        redact_pii: replace personal data in every customer-derived text field
            (transcript, summary, evidence, suggested reply) by ``[KIND]`` tokens, and
            mask identifiers in ``customer_fields`` to their last 4 characters.
        customer_fields: fields known to the caller (e.g. the signed-in account's
            email); they win over what is extracted from the transcript.
        allow: public values kept verbatim even when redacting, e.g. the company's
            support phone number (see :func:`supportbot.redact.find_pii`).
    """
    codes: list[str] = []
    for r in reasons:
        code = _code(r)
        if code not in codes:
            codes.append(code)
    said = [t.text for t in transcript if t.role == "user"]
    fields_raw = {**extract_customer_fields(said), **dict(customer_fields or {})}
    items = [_evidence(e) for e in evidence]
    earlier_failures = any(
        t.role == "assistant" and t.meta.get("mode") == "none" for t in transcript
    )
    signal_text = "\n".join(
        [*said, *(e["detail"] for e in items), *(m for e in items for m in e["matched"])]
    )
    priority = priority_for(codes, signal_text, earlier_failures)

    if redact_pii:
        # Identifiers redact() does not know (serials, order numbers) are masked in the
        # text the same way as in customer_fields, longest first.
        known = sorted(
            (v for k, v in fields_raw.items() if k in _MASKED_IN_TEXT and len(v) >= 4),
            key=len,
            reverse=True,
        )
        masks = [
            (re.compile(re.escape(v), re.IGNORECASE), mask(v).replace("\\", "\\\\")) for v in known
        ]

        def scrub(text: str) -> str:
            for pattern, shown in masks:
                text = pattern.sub(shown, text)
            return redact(text, allow)

        customer = {k: mask(v) if k in _MASKED_FIELDS else scrub(v) for k, v in fields_raw.items()}
    else:

        def scrub(text: str) -> str:
            return text

        customer = dict(fields_raw)

    for e in items:
        e["detail"] = scrub(e["detail"])
        e["matched"] = [scrub(m) for m in e["matched"]]
    return HandoffPacket(
        id=uuid.uuid4().hex,
        conversation_id=conversation_id,
        created_at=_now_iso(),
        status="open",
        priority=priority,
        reasons=codes,
        evidence=items,
        # Scrub before trimming, so a cut never leaves half an email address behind.
        summary=summarize([scrub(t) for t in said]),
        transcript=[
            {"role": t.role, "text": scrub(t.text), "ts": _ts_iso(t.ts)} for t in transcript
        ],
        passages=[_passage(p) for p in passages],
        customer_fields=customer,
        suggested_reply=scrub(suggested_reply) if suggested_reply is not None else None,
        idempotency_key=_idempotency_key(conversation_id, codes, len(transcript)),
    )


# -- sinks -------------------------------------------------------------------------------


@runtime_checkable
class HandoffSink(Protocol):
    """Somewhere hand-off packets go (a queue, a helpdesk, a function)."""

    def deliver(self, packet: HandoffPacket) -> None:
        """Deliver one packet; a failed delivery is recorded, not raised."""
        ...


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


@dataclass(frozen=True)
class AgentMessage:
    """A message an agent wrote to the customer of a handed-over conversation."""

    conversation_id: str
    agent: str
    text: str
    ts: float = field(default_factory=time.time)


_RANK = {p: i for i, p in enumerate(PRIORITIES)}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS handoffs (id TEXT PRIMARY KEY, "
    "idempotency_key TEXT NOT NULL UNIQUE, conversation_id TEXT NOT NULL, "
    "packet TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL, "
    "priority_rank INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
    "agent TEXT)",
    "CREATE INDEX IF NOT EXISTS handoffs_order ON handoffs(priority_rank DESC, created_at DESC)",
    "CREATE INDEX IF NOT EXISTS handoffs_conv ON handoffs(conversation_id)",
    "CREATE TABLE IF NOT EXISTS agent_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "conversation_id TEXT NOT NULL, agent TEXT NOT NULL, text TEXT NOT NULL, ts REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS agent_messages_conv ON agent_messages(conversation_id, ts)",
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "packet TEXT NOT NULL, url TEXT NOT NULL, last_error TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
)


class SqliteHandoffQueue:
    """The local hand-off queue: packets, their status, agent replies, dead letters.

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
            raise ValueError(f"Unknown hand-off status {status!r}; use one of {STATUSES}.")
        with self._conn() as db:
            cur = db.execute(
                "UPDATE handoffs SET status = ?, agent = COALESCE(?, agent), updated_at = ? "
                "WHERE id = ?",
                (status, agent, _now_iso(), id),
            )
        if not cur.rowcount:
            raise KeyError(f"No hand-off with id {id!r}.")
        logger.info("hand-off %s is now %s", id, status)
        packet = self.get(id)
        assert packet is not None
        return packet

    # agent replies

    def add_agent_message(self, conversation_id: str, agent: str, text: str) -> AgentMessage:
        """Record an agent's message to the customer of ``conversation_id``."""
        message = AgentMessage(conversation_id, agent, text)
        with self._conn() as db:
            db.execute(
                "INSERT INTO agent_messages (conversation_id, agent, text, ts) VALUES (?, ?, ?, ?)",
                (message.conversation_id, message.agent, message.text, message.ts),
            )
        return message

    def agent_messages(
        self, conversation_id: str, since_ts: float | None = None
    ) -> builtins.list[AgentMessage]:
        """Agent messages of a conversation, oldest first; only newer than ``since_ts``."""
        rows = (
            self._conn()
            .execute(
                "SELECT conversation_id, agent, text, ts FROM agent_messages "
                "WHERE conversation_id = ? AND ts > ? ORDER BY ts, seq",
                (conversation_id, since_ts if since_ts is not None else float("-inf")),
            )
            .fetchall()
        )
        return [AgentMessage(r[0], r[1], r[2], r[3]) for r in rows]

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


class _MemoryDeadLetters:
    """Dead letters kept in memory (lost on restart) when no queue is given."""

    def __init__(self) -> None:
        self._letters: dict[int, DeadLetter] = {}
        self._next = 1
        self._lock = threading.Lock()

    def add_dead_letter(
        self, packet: HandoffPacket, url: str, error: str, attempts: int
    ) -> DeadLetter:
        with self._lock:
            letter = DeadLetter(self._next, packet, url, error, attempts, _now_iso())
            self._letters[letter.id] = letter
            self._next += 1
            return letter

    def dead_letters(self) -> list[DeadLetter]:
        with self._lock:
            return [self._letters[k] for k in sorted(self._letters)]

    def record_dead_letter_failure(self, id: int, error: str, attempts: int) -> None:
        with self._lock:
            old = self._letters.get(id)
            if old is not None:
                self._letters[id] = DeadLetter(
                    id, old.packet, old.url, error, old.attempts + attempts, old.created_at
                )

    def remove_dead_letter(self, id: int) -> None:
        with self._lock:
            self._letters.pop(id, None)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    attempts: int
    error: str
    retryable: bool


class WebhookSink:
    """POSTs packets as JSON to a helpdesk webhook, reliably.

    * Headers: ``Content-Type: application/json``, ``Idempotency-Key`` (the packet's, the
      same on every retry) and, with a ``secret``, ``X-Supportbot-Signature:
      sha256=<hex HMAC-SHA256 of the body>``.
    * Connection errors, timeouts, 429 and 5xx are retried ``retries`` times after
      ``backoff``, ``2*backoff``, ``4*backoff``... seconds, or after the ``Retry-After``
      the server asks for (capped at ``max_retry_after``). Other 4xx are not retried.
    * A packet that still cannot be delivered becomes a dead letter in ``dead_letter``
      (a :class:`SqliteHandoffQueue` or its path; in memory if None) and is re-sent by
      :meth:`redeliver_dead_letters`. :meth:`deliver` never raises for helpdesk failures.

    Delivery blocks while it retries; wrap the sink in :class:`BackgroundSink` to keep
    that off the customer's request.

    Example:
        >>> sink = WebhookSink("https://helpdesk.example/hooks/bot", secret="s3cret",
        ...                    dead_letter=SqliteHandoffQueue(Path("handoffs.db")))
        >>> sink.deliver(packet)
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        dead_letter: SqliteHandoffQueue | Path | str | None = None,
        *,
        max_retry_after: float = 30.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url or not url.strip():
            raise ValueError("WebhookSink needs the helpdesk URL (handoff.webhook_url).")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"WebhookSink URL must start with http:// or https://, got {url!r}.")
        self.url = url
        self.secret = secret
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.extra_headers = dict(headers or {})
        self._sleep = sleep
        self._dead: SqliteHandoffQueue | _MemoryDeadLetters
        if isinstance(dead_letter, SqliteHandoffQueue):
            self._dead = dead_letter
        elif dead_letter is not None:
            self._dead = SqliteHandoffQueue(Path(dead_letter))
        else:
            self._dead = _MemoryDeadLetters()
        # Only scheme and host go into logs: webhook URLs often carry a token.
        parts = urlsplit(url)
        self._target = f"{parts.scheme}://{parts.hostname}"
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def dead_letters(self) -> list[DeadLetter]:
        """Packets waiting to be re-sent, oldest first."""
        return self._dead.dead_letters()

    def headers_for(self, packet: HandoffPacket, body: bytes) -> dict[str, str]:
        """The request headers for ``body`` (the packet's JSON)."""
        headers = {
            **self.extra_headers,
            "Content-Type": "application/json",
            "Idempotency-Key": packet.idempotency_key,
            "User-Agent": "supportbot-handoff",
        }
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Supportbot-Signature"] = f"sha256={digest}"
        return headers

    def _attempt(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[bool, bool, str, float | None]:
        """One POST: (delivered, worth retrying, error, Retry-After seconds)."""
        try:
            response = self._http().post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return False, True, f"timeout ({type(exc).__name__})", None
        except httpx.TransportError as exc:
            return False, True, f"{type(exc).__name__}: {exc}", None
        except Exception as exc:  # noqa: BLE001 - never crash the bot over a helpdesk
            return False, False, f"{type(exc).__name__}: {exc}", None
        if 200 <= response.status_code < 300:
            return True, False, "", None
        retryable = response.status_code == 429 or response.status_code >= 500
        error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        return False, retryable, error, _retry_after(response) if retryable else None

    def _send(self, packet: HandoffPacket, retries: int) -> _Outcome:
        body = packet.to_json().encode()
        headers = self.headers_for(packet, body)
        error, retryable = "", False
        for attempt in range(retries + 1):
            ok, retryable, error, retry_after = self._attempt(body, headers)
            if ok:
                return _Outcome(True, attempt + 1, "", False)
            if not retryable or attempt == retries:
                return _Outcome(False, attempt + 1, error, retryable)
            delay = (
                self.backoff * 2**attempt
                if retry_after is None
                else min(retry_after, self.max_retry_after)
            )
            logger.info(
                "hand-off %s: %s answered %s; retry %d/%d in %.2fs",
                packet.id,
                self._target,
                error.split(":")[0],
                attempt + 1,
                retries,
                delay,
            )
            self._sleep(delay)
        return _Outcome(False, retries + 1, error, retryable)

    def deliver(self, packet: HandoffPacket) -> None:
        """POST the packet, retrying; on final failure keep it as a dead letter.

        Raises:
            ValueError: the sink has no URL.
        """
        if not self.url:
            raise ValueError("WebhookSink needs the helpdesk URL (handoff.webhook_url).")
        outcome = self._send(packet, self.retries)
        if outcome.ok:
            logger.info(
                "hand-off %s delivered to %s (priority %s, %d attempt(s))",
                packet.id,
                self._target,
                packet.priority,
                outcome.attempts,
            )
            return
        try:
            self._dead.add_dead_letter(packet, self.url, outcome.error, outcome.attempts)
            kept = "kept as a dead letter"
        except Exception as exc:  # noqa: BLE001 - the bot must go on answering
            kept = f"and could not be kept as a dead letter ({type(exc).__name__})"
        logger.warning(
            "hand-off %s NOT delivered to %s after %d attempt(s) (%s); %s",
            packet.id,
            self._target,
            outcome.attempts,
            outcome.error.split(":")[0],
            kept,
        )

    def redeliver_dead_letters(self) -> int:
        """Re-send dead letters (once each, oldest first) to this sink's URL.

        Delivered ones are deleted; failed ones keep their place with the new error. A
        pass stops at the first connection error, timeout, 429 or 5xx (the helpdesk is
        still down), so it never hammers a struggling server.

        Returns:
            How many were delivered.
        """
        delivered = 0
        for letter in self._dead.dead_letters():
            outcome = self._send(letter.packet, retries=0)
            if outcome.ok:
                self._dead.remove_dead_letter(letter.id)
                delivered += 1
                logger.info("dead letter %s (hand-off %s) delivered", letter.id, letter.packet.id)
                continue
            self._dead.record_dead_letter_failure(letter.id, outcome.error, outcome.attempts)
            if outcome.retryable:
                break
        return delivered


class CallbackSink:
    """Hands packets to a Python function of the embedding application.

    Whatever the function raises is caught, logged (without packet contents) and kept in
    :attr:`dead_letters`; it never reaches the customer's request.

    Example:
        >>> sink = CallbackSink(lambda packet: helpdesk.create_ticket(packet.to_dict()))
        >>> sink.deliver(packet)
        >>> sink.dead_letters   # packets the function failed on
    """

    def __init__(self, fn: Callable[[HandoffPacket], None]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self.dead_letters: list[DeadLetter] = []
        self._lock = threading.Lock()

    def deliver(self, packet: HandoffPacket) -> None:
        """Call the function; record a failure instead of raising it."""
        try:
            self.fn(packet)
        except Exception as exc:  # noqa: BLE001 - an integrator's bug must not crash the bot
            with self._lock:
                self.dead_letters.append(
                    DeadLetter(
                        len(self.dead_letters) + 1,
                        packet,
                        f"callback:{self.name}",
                        f"{type(exc).__name__}: {exc}",
                        1,
                        _now_iso(),
                    )
                )
            logger.warning(
                "hand-off %s: callback %s raised %s; kept in dead_letters",
                packet.id,
                self.name,
                type(exc).__name__,
            )
            return
        logger.info("hand-off %s passed to callback %s", packet.id, self.name)


class BackgroundSink:
    """Delivers through another sink on a worker thread, so the caller never waits.

    Useful for :class:`WebhookSink`, whose retries can take seconds. Packets still
    waiting when the process exits are lost to this sink (the SQLite queue keeps its own
    copy); call :meth:`join` before exiting to let them go.

    Example:
        >>> sink = BackgroundSink(WebhookSink(url, dead_letter=queue))
        >>> sink.deliver(packet)    # returns at once
        >>> sink.join(timeout=30)
    """

    def __init__(self, inner: HandoffSink) -> None:
        self.inner = inner
        self._queue: queue.Queue[HandoffPacket] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="supportbot-handoff", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            packet = self._queue.get()
            try:
                self.inner.deliver(packet)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                logger.error(
                    "hand-off %s: %s raised %s",
                    packet.id,
                    type(self.inner).__name__,
                    type(exc).__name__,
                )
            finally:
                self._queue.task_done()

    def deliver(self, packet: HandoffPacket) -> None:
        """Queue the packet for the worker and return at once."""
        self._queue.put(packet)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued packet was handled; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


def deliver_packet(packet: HandoffPacket, sinks: Sequence[HandoffSink]) -> None:
    """Give ``packet`` to every sink; one sink failing never stops the others or raises."""
    for sink in sinks:
        try:
            sink.deliver(packet)
        except Exception as exc:  # noqa: BLE001 - a hand-off must not break the reply
            logger.error(
                "hand-off %s: %s raised %s", packet.id, type(sink).__name__, type(exc).__name__
            )


def build_sinks(
    settings: HandoffSettings,
    queue_path: Path,
    callback: Callable[[HandoffPacket], None] | None = None,
) -> list[HandoffSink]:
    """The sinks named in ``settings.sinks``, in that order.

    The webhook's dead letters go to the SQLite queue at ``queue_path`` (the same object
    as the 'sqlite' sink when both are configured).

    Raises:
        ConfigError: 'webhook' without ``webhook_url``, or 'callback' without a callback.
    """
    sinks: list[HandoffSink] = []
    queue_: SqliteHandoffQueue | None = None

    def local_queue() -> SqliteHandoffQueue:
        nonlocal queue_
        if queue_ is None:
            queue_ = SqliteHandoffQueue(queue_path)
        return queue_

    for name in dict.fromkeys(settings.sinks):
        if name == "sqlite":
            sinks.append(local_queue())
        elif name == "webhook":
            if not settings.webhook_url:
                raise ConfigError(
                    "handoff.sinks includes 'webhook' but handoff.webhook_url is not set. Set "
                    "it ([handoff] webhook_url in supportbot.toml or "
                    "SUPPORTBOT_HANDOFF__WEBHOOK_URL) or remove 'webhook' from handoff.sinks."
                )
            try:
                sinks.append(
                    WebhookSink(
                        settings.webhook_url,
                        secret=settings.webhook_secret,
                        retries=settings.webhook_retries,
                        backoff=settings.webhook_backoff,
                        timeout=settings.webhook_timeout,
                        dead_letter=local_queue(),
                    )
                )
            except ValueError as exc:
                raise ConfigError(f"handoff.webhook_url is invalid: {exc}") from exc
        elif name == "callback":
            if callback is None:
                raise ConfigError(
                    "handoff.sinks includes 'callback' but no callback function was given. "
                    "Pass one (a function taking a HandoffPacket), or remove 'callback' from "
                    "handoff.sinks."
                )
            sinks.append(CallbackSink(callback))
        else:  # pragma: no cover - settings validation forbids other names
            raise ConfigError(f"Unknown hand-off sink {name!r}; use sqlite, webhook or callback.")
    if not sinks:
        logger.warning("handoff.sinks is empty: escalated conversations go nowhere")
    return sinks
