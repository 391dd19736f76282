"""The hand-off packet: what an agent reads when the bot hands a conversation over.

When the escalation policy decides a conversation needs a person, :func:`build_packet`
turns the conversation into a :class:`HandoffPacket`: who asked what (a short extractive
summary and the transcript), why the bot gave up (reason codes and evidence), which
passages it tried, what the customer told us (order number, serial, email) and, when the
bot had a partial answer, a draft reply. Personal data is redacted by default
(:mod:`supportbot.safety.redact`); the raw transcript stays in the local conversation store.

Reason codes are plain strings (the names of the escalation policy's ``Reason`` enum,
e.g. ``"SENSITIVE_TOPIC"``); enum members are accepted and stored by value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from supportbot.conversation import Turn
from supportbot.errors import HandoffError
from supportbot.safety.redact import find_pii, mask, may_hold_contact, redact
from supportbot.types import Hit

if TYPE_CHECKING:
    pass

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "HandoffPacket",
    "Priority",
    "Status",
    "build_packet",
    "extract_customer_fields",
    "priority_for",
    "summarize",
]

logger = logging.getLogger("supportbot.handoff.packet")

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

# Customer fields: identifiers an agent needs, masked to their last 4 characters. Built
# in: what follows the word "serial" or "order"; a product's own formats (a serial that
# is quoted bare) come from [product] identifier_patterns.
_SERIAL = re.compile(
    r"\bserial\b\s*(?:number|no\.?|num|#)?\s*(?:is|was|:|=)?\s*#?\s*"
    r"(?P<value>[A-Z0-9][A-Z0-9\-]{3,23})\b",
    re.IGNORECASE,
)
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
            raise HandoffError(f"Hand-off packet is missing {', '.join(missing)}.")
        if data["status"] not in STATUSES:
            raise HandoffError(
                f"Unknown hand-off status {data['status']!r}; use one of {STATUSES}."
            )
        if data["priority"] not in PRIORITIES:
            raise HandoffError(
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


SMALLTALK = re.compile(
    r"^\W*(?:hi|hello|hey|good (?:morning|afternoon|evening)|thanks?|thank you|ok(?:ay)?"
    r"|yes|no|yep|nope|sure|please|bye)\b",
    re.IGNORECASE,
)
"""A short message opening like this asks nothing (summaries and gap reports skip it)."""
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
    return not (len(words) <= 5 and SMALLTALK.match(text))


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


def _compiled(patterns: Mapping[str, str | re.Pattern[str]]) -> dict[str, re.Pattern[str]]:
    return {k: re.compile(v) if isinstance(v, str) else v for k, v in patterns.items()}


def _value(m: re.Match[str]) -> str:
    return (m.groupdict().get("value") or m.group(0)).strip()


def extract_customer_fields(
    customer_messages: Iterable[str], patterns: Mapping[str, str | re.Pattern[str]] | None = None
) -> dict[str, str]:
    """Identifiers the customer gave: ``email``, ``phone``, ``order_number``, ``serial``.

    Values are raw (not masked); the last mention wins, since customers correct
    themselves. Order and serial numbers follow the words "order" / "serial" ("order
    #A-12345", "serial number is SN-4471") and contain a digit.

    Args:
        customer_messages: what the customer wrote, oldest first.
        patterns: the product's identifier formats (``[product] identifier_patterns``):
            field name -> regex; the group named ``value``, else the whole match, is the
            value. A product's ``serial`` format replaces the built-in one.
    """
    found: dict[str, str] = {}
    extra = _compiled(patterns or {})
    for text in customer_messages:
        # Only e-mail and phone spans are kept: without a sign of one, the PII detector
        # (seconds to load) is not needed, and redaction may be off.
        for span in find_pii(text) if may_hold_contact(text) else ():
            if span.kind in ("EMAIL", "PHONE"):
                found[span.kind.lower()] = text[span.start : span.end]
        for m in _SERIAL.finditer(text):
            value = m.group("value").strip("-")
            if any(ch.isdigit() for ch in value) and "serial" not in extra:
                found["serial"] = value.upper()
        for m in _ORDER.finditer(text):
            value = m.group("value").strip("-")
            if any(ch.isdigit() for ch in value) and len(value) >= 4:
                found["order_number"] = value
        for field, pattern in extra.items():
            for m in pattern.finditer(text):
                if value := _value(m):
                    found[field] = value.upper() if field == "serial" else value
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
    identifiers: Mapping[str, str | re.Pattern[str]] | None = None,
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
            support phone number (see :func:`supportbot.safety.redact.find_pii`).
        identifiers: the product's identifier formats (see
            :func:`extract_customer_fields`); their values are masked like serials.
    """
    identifiers = identifiers or {}
    codes: list[str] = []
    for r in reasons:
        code = _code(r)
        if code not in codes:
            codes.append(code)
    said = [t.text for t in transcript if t.role == "user"]
    fields_raw = {**extract_customer_fields(said, identifiers), **dict(customer_fields or {})}
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
            (
                v
                for k, v in fields_raw.items()
                if (k in _MASKED_IN_TEXT or k in identifiers) and len(v) >= 4
            ),
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

        customer = {
            k: mask(v) if k in _MASKED_FIELDS or k in identifiers else scrub(v)
            for k, v in fields_raw.items()
        }
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
