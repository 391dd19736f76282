"""Redaction, hand-off packets and their sinks (SQLite queue, webhook, callback).

Webhook tests run against a real HTTP server on 127.0.0.1 (no network beyond loopback).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import socket
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supportbot.config import HandoffSettings, load_settings
from supportbot.conversation import Turn
from supportbot.errors import ConfigError, HandoffError, HandoffNotFound
from supportbot.factory import build_sinks
from supportbot.handoff.outbox import Outbox
from supportbot.handoff.packet import (
    HandoffPacket,
    build_packet,
    extract_customer_fields,
    priority_for,
    summarize,
)
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.handoff.sinks import (
    BackgroundSink,
    CallbackSink,
    HandoffSink,
    WebhookSink,
    deliver_packet,
)
from supportbot.safety.redact import find_pii, luhn_valid, mask, redact
from supportbot.types import Chunk, Hit

ROOT = Path(__file__).resolve().parent.parent
# The sample product's identifier formats (its BWN... serials), from its profile.
SAMPLE_IDS = load_settings(ROOT / "kb" / "supportbot.toml").product.identifier_patterns

# The company's own public contact details, as published in the knowledge base.
PUBLIC_CONTACTS = (
    "1-800-555-0142",
    "support@brightwave.example",
    "1200 Harbor Point Drive, Suite 400",
    "name@isp.example",  # the manual's placeholder address
)


# -- redaction: table tests ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jane.doe+router@example.co.uk please", "mail me at [EMAIL] please"),
        ("JOHN_SMITH99@Mail.Example.COM.", "[EMAIL]."),
        ("call +44 20 7946 0958 tonight", "call [PHONE] tonight"),
        ("call +1 (415) 555-0132", "call [PHONE]"),
        ("tel:+14155550132", "tel:[PHONE]"),
        ("my cell is (415) 555-0132", "my cell is [PHONE]"),
        ("415-555-0132 or 415.555.0132", "[PHONE] or [PHONE]"),
        ("4155550132", "[PHONE]"),
        ("0044 20 7946 0958", "[PHONE]"),
        ("ring 020 7946 0958 or 07700 900123", "ring [PHONE] or [PHONE]"),
        ("appelez le 01 23 45 67 89", "appelez le [PHONE]"),
        ("+49 30 901820, ext. 12", "[PHONE], ext. 12"),
        ("415-555-0132 ext. 12", "[PHONE]"),
        ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"),
        ("5500-0000-0000-0004", "[CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("4012888888881881", "[CARD]"),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [IBAN] thanks"),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("be68 5390 0754 7034 from my bank", "[IBAN] from my bank"),
        ("SSN 078-05-1120", "SSN [SSN]"),
        ("social security number: 078051120", "social security number: [SSN]"),
        ("my ssn is 219 09 9999", "my ssn is [SSN]"),
        ("my WAN IP is 81.2.69.160", "my WAN IP is [IP]"),
        ("from 203.0.113.7:8080", "from [IP]:8080"),
        ("v6 2a02:8070:a182:4e00::1f", "v6 [IP]"),
        ("I live at 221B Baker Street, London", "I live at [ADDRESS], London"),
        ("ship to 1600 Pennsylvania Avenue NW", "ship to [ADDRESS]"),
        ("send it to 12 oak st", "send it to [ADDRESS]"),
        ("350 5th Ave, Apt 4B, New York", "[ADDRESS], New York"),
        ("742 Evergreen Terrace", "[ADDRESS]"),
        ("4 Privet Drive, Little Whinging", "[ADDRESS], Little Whinging"),
        ("PO Box 1234", "[ADDRESS]"),
    ],
)
def test_each_kind_of_pii_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "My R1 shows E-104 and the LED blinks amber",
        "I need a new BW-PSU-12-2A adapter, is it $19.99 or $24.99?",
        "The desk stand BW-STD-S1 costs $9.99 and the cable BW-CAB-C6-2 $7.99",
        "updated to firmware 3.4.2 (released 2026-09-15) but 3.3.10 was fine",
        "it broke on 09/15/2026, or 15.09.2026, in 2024 and again at 8:00-20:00 ET",
        "serial BWN20473318, order placed last week",
        "router at 192.168.50.1, laptop got 192.168.50.100, netmask 255.255.255.0",
        "subnets 10.0.50.0/24 and 172.16.50.1 and 169.254.10.20 and 127.0.0.1",
        "my ISP gives me a WAN address of 100.72.13.5 so I am behind CGNAT",
        "coverage about 1,800 sq ft, 12 V 2 A, AX3000 and BE9300, 30 W PoE",
        "I moved the satellite 2 rooms down the road side of the house",
        "my 1 hard drive and 3 devices on the way",
        "ticket 1234 5678 9012 3456 is still open",  # 16 digits, fails Luhn
        "the MAC is AA:BB:CC:DD:EE:FF and uptime 12:30:45",
        "version 10.2.3.4567 and build 20260915.1",
        "error codes E-101 to E-120, channels 36-48",
        "order number 100234987",  # 9 digits: not a phone
    ],
)
def test_support_talk_is_not_redacted(text: str) -> None:
    assert find_pii(text) == [], [text[s.start : s.end] for s in find_pii(text)]
    assert redact(text) == text


def test_the_public_support_number_is_a_phone_unless_allowed() -> None:
    # The KB's support line is shaped like any customer's phone number. In customer text
    # it is redacted like one; callers pass the company's public contacts in `allow`.
    text = "I called 1-800-555-0142 and 415-555-0132"
    assert redact(text) == "I called [PHONE] and [PHONE]"
    assert redact(text, allow=["1 800 555 0142"]) == "I called 1-800-555-0142 and [PHONE]"


def test_knowledge_base_has_no_pii_beyond_the_public_contacts() -> None:
    """Precision on ~300 kB of real support text: codes, parts, prices, IPs, versions."""
    texts = [
        *(ROOT / "kb" / "docs").glob("*.md"),
        *(ROOT / "kb" / "docs").glob("*.yaml"),
        *(ROOT / "kb" / "docs").glob("*.txt"),
        *(ROOT / "kb" / "docs").glob("*.html"),
        *(ROOT / "kb" / "pdf-src").glob("*.md"),
        ROOT / "kb" / "eval" / "questions.jsonl",
    ]
    assert len(texts) >= 5
    for path in texts:
        text = path.read_text(encoding="utf-8")
        found = [(s.kind, text[s.start : s.end]) for s in find_pii(text, PUBLIC_CONTACTS)]
        assert found == [], path.name


def test_overlaps_are_settled_by_kind_order() -> None:
    spans = find_pii("card 4111 1111 1111 1111, mail a.b@example.com")
    assert [s.kind for s in spans] == ["CARD", "EMAIL"]
    assert spans[0] == ("CARD", 5, 24)  # a NamedTuple: compares as a plain tuple


# -- redaction: recall over generated PII ----------------------------------------------

FIRST = ["jane", "john", "maria", "li", "ahmed", "olga", "pierre", "sam", "priya", "kofi"]
LAST = ["doe", "smith", "garcia", "wang", "khan", "ivanova", "dubois", "lee", "patel", "mensah"]
DOMAINS = [
    "gmail.com",
    "outlook.co.uk",
    "example.org",
    "mail.brightwave-users.net",
    "uni.edu.au",
    "proton.me",
    "web.de",
    "yahoo.fr",
]
STREETS = [
    "Baker",
    "Main",
    "Oak",
    "Evergreen",
    "Harbor Point",
    "Maple Leaf",
    "Kings",
    "Martin Luther King",
    "5th",
    "Elm",
    "Station",
    "High",
]
SUFFIXES = [
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Lane",
    "Drive",
    "Blvd",
    "Boulevard",
    "Court",
    "Way",
    "Place",
    "Terrace",
]
TEMPLATES = [
    "you can reach me at {x}",
    "{x} is the one on my account",
    "details: {x}.",
    "(it's {x})",
    "my info - {x}, thanks!",
    "Please use {x}\nfor this",
]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def _gen_email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [
            f"{f}.{last}",
            f"{f}_{last}",
            f"{f[0]}{last}{rng.randint(1, 99)}",
            f"{f}+wifi",
            f"{f}.{last}{rng.randint(1970, 2005)}",
        ]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def _gen_phone(rng: random.Random) -> str:
    def d(n: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(n))

    area, exch = f"{rng.randint(2, 9)}{d(2)}", f"{rng.randint(2, 9)}{d(2)}"
    return rng.choice(
        [
            f"({area}) {exch}-{d(4)}",
            f"{area}-{exch}-{d(4)}",
            f"{area}.{exch}.{d(4)}",
            f"+1 {area} {exch} {d(4)}",
            f"+1-{area}-{exch}-{d(4)}",
            f"1-{area}-{exch}-{d(4)}",
            f"{area}{exch}{d(4)}",
            f"+44 20 {d(4)} {d(4)}",
            f"+44 7{d(3)} {d(6)}",
            f"+44 (0)20 {d(4)} {d(4)}",
            f"020 {d(4)} {d(4)}",
            f"07{d(3)} {d(6)}",
            f"+49 30 {d(7)}",
            f"+49 151 {d(8)}",
            f"+33 {rng.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
            f"0{rng.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+61 2 {d(4)} {d(4)}",
            f"+91 {rng.randint(6, 9)}{d(4)} {d(5)}",
            f"+353 1 {d(3)} {d(4)}",
            f"0044 20 {d(4)} {d(4)}",
        ]
    )


def _gen_card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "visa13", "mc", "mc2", "amex", "discover", "jcb", "unionpay"])
    if kind == "amex":
        n = _luhn_complete(rng.choice(["34", "37"]), 15, rng)
        groups = [n[:4], n[4:10], n[10:]]
    else:
        prefix, length = {
            "visa": ("4", 16),
            "visa13": ("4", 13),
            "mc": (str(rng.randint(51, 55)), 16),
            "mc2": (str(rng.randint(2221, 2720)), 16),
            "discover": ("6011", 16),
            "jcb": ("35", 16),
            "unionpay": ("62", 19),
        }[kind]
        n = _luhn_complete(prefix, length, rng)
        groups = [n[i : i + 4] for i in range(0, len(n), 4)]
    return rng.choice([" ", "-", ""]).join(groups)


IBAN_BBANS: dict[str, Callable[[random.Random], str]] = {
    "DE": lambda r: "".join(r.choice(string.digits) for _ in range(18)),
    "GB": lambda r: (
        "".join(r.choice(string.ascii_uppercase) for _ in range(4))
        + "".join(r.choice(string.digits) for _ in range(14))
    ),
    "FR": lambda r: "".join(r.choice(string.digits) for _ in range(23)),
    "ES": lambda r: "".join(r.choice(string.digits) for _ in range(20)),
    "NL": lambda r: (
        "".join(r.choice(string.ascii_uppercase) for _ in range(4))
        + "".join(r.choice(string.digits) for _ in range(10))
    ),
    "BE": lambda r: "".join(r.choice(string.digits) for _ in range(12)),
    "CH": lambda r: "".join(r.choice(string.digits) for _ in range(17)),
    "IT": lambda r: (
        r.choice(string.ascii_uppercase) + "".join(r.choice(string.digits) for _ in range(22))
    ),
}


def _gen_iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_BBANS))
    iban = _iban(country, IBAN_BBANS[country](rng))
    if rng.random() < 0.6:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.15 else iban


def _gen_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = rng.choice(["-", " "])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def _gen_ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        groups = (rng.randint(0x1000, 0xFFFF), rng.randint(0, 0xFFFF), rng.randint(1, 0xFF))
        return "2a02:{:x}:{:x}::{:x}".format(*groups)
    while True:
        first = rng.randint(1, 223)
        second = rng.randint(0, 255)
        if first in (10, 127) or (first, second) == (192, 168) or (first == 169 and second == 254):
            continue
        if first == 172 and 16 <= second <= 31 or first == 100 and 64 <= second <= 127:
            continue
        return f"{first}.{second}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _gen_address(rng: random.Random) -> str:
    number = rng.choice([str(rng.randint(1, 9999)), f"{rng.randint(1, 300)}{rng.choice('AB')}"])
    street = f"{number} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    roll = rng.random()
    if roll < 0.2:
        street += f", Apt {rng.randint(1, 40)}"
    elif roll < 0.3:
        street = street.lower() if street.split()[-1] in ("Street", "Road", "Avenue") else street
    return street


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": _gen_email,
    "PHONE": _gen_phone,
    "CARD": _gen_card,
    "IBAN": _gen_iban,
    "SSN": _gen_ssn,
    "IP": _gen_ip,
    "ADDRESS": _gen_address,
}


def test_recall_over_generated_pii() -> None:
    rng = random.Random(20260915)
    hits: dict[str, int] = dict.fromkeys(GENERATORS, 0)
    missed: dict[str, list[str]] = {k: [] for k in GENERATORS}
    per_kind = 60
    for kind, gen in GENERATORS.items():
        for _ in range(per_kind):
            value = gen(rng)
            template = rng.choice(TEMPLATES)
            text = template.format(x=value)
            start = template.index("{x}")
            expected = (kind, start, start + len(value))
            if expected in find_pii(text):
                hits[kind] += 1
            else:
                missed[kind].append(text)
    total = per_kind * len(GENERATORS)
    assert total >= 200
    pattern_kinds = [k for k in GENERATORS if k != "ADDRESS"]
    recall = sum(hits[k] for k in pattern_kinds) / (per_kind * len(pattern_kinds))
    assert recall >= 0.99, missed
    for kind in pattern_kinds:
        assert hits[kind] / per_kind >= 0.97, (kind, missed[kind])
    # Addresses are a heuristic (no checksum, free-form names): held to a lower bar.
    assert hits["ADDRESS"] / per_kind >= 0.95, missed["ADDRESS"]


def test_luhn_failing_digit_runs_are_kept() -> None:
    rng = random.Random(7)
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert not luhn_valid("4111 1111")
    kept = 0
    for _ in range(300):
        number = _luhn_complete("4", 16, rng)
        wrong = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
        assert not luhn_valid(wrong)
        text = f"ref {' '.join(wrong[i : i + 4] for i in range(0, 16, 4))} ok"
        kept += not any(s.kind == "CARD" for s in find_pii(text))
        assert redact(f"ref {number} ok") == "ref [CARD] ok"
    assert kept == 300


def test_mask_keeps_the_last_four_characters() -> None:
    assert mask("BWN20473318") == "*******3318"
    assert mask("A-100234987") == "*******4987"
    assert mask("abc") == "***"
    assert mask("jane.doe@example.com") == "j***@example.com"
    assert mask("secret", keep=0) == "******"


# -- packets ---------------------------------------------------------------------------

RAW_PII = [
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-0132",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "078-05-1120",
    "81.2.69.160",
    "221B Baker Street",
    "BWN20473318",
    "A-100234987",
]


def _pii_transcript() -> list[Turn]:
    t0 = 1_790_000_000.0
    return [
        Turn("user", "hi", ts=t0),
        Turn(
            "user",
            "My R1 BWN20473318 shows E-104 since the 3.4.2 update. My order number is "
            "A-100234987, email jane.doe@example.com, phone +44 20 7946 0958.",
            ts=t0 + 1,
        ),
        Turn(
            "assistant",
            "I could not find this in the documentation I have.",
            ts=t0 + 2,
            meta={"mode": "none"},
        ),
        Turn(
            "user",
            "I was charged twice on card 4111 1111 1111 1111, refund to "
            "DE89 3704 0044 0532 0130 00. SSN 078-05-1120, my IP 81.2.69.160",
            ts=t0 + 3,
        ),
        Turn("assistant", "Please call 1-800-555-0142.", ts=t0 + 4),
        Turn(
            "user",
            "The router is sparking and smells of smoke! I live at 221B Baker Street, "
            "call me on (415) 555-0132",
            ts=t0 + 5,
        ),
    ]


def _evidence() -> list[dict[str, Any]]:
    return [
        {
            "reason": "SENSITIVE_TOPIC",
            "detail": "safety: 'smoke' in 'smells of smoke! call (415) 555-0132'",
            "score": None,
            "matched": ["smoke", "jane.doe@example.com"],
        },
        {
            "reason": "NO_RELEVANT_CONTEXT",
            "detail": "best relevance 0.12",
            "score": 0.12,
            "matched": [],
        },
    ]


def _packet(**overrides: Any) -> HandoffPacket:
    args: dict[str, Any] = {
        "conversation_id": "conv-1",
        "transcript": _pii_transcript(),
        "reasons": ["SENSITIVE_TOPIC", "NO_RELEVANT_CONTEXT"],
        "evidence": _evidence(),
        "passages": [],
        "suggested_reply": "Unplug the router now. We will email jane.doe@example.com.",
        "identifiers": SAMPLE_IDS,
    }
    args.update(overrides)
    return build_packet(**args)


def test_packet_carries_no_residual_pii() -> None:
    packet = _packet(allow=["1-800-555-0142"])
    body = json.dumps(packet.to_dict())
    for value in RAW_PII:
        assert value not in body
        assert value.replace(" ", "") not in body
    assert find_pii(body, allow=["1-800-555-0142"]) == []
    # what the agent still gets
    assert packet.customer_fields == {
        "email": "j***@example.com",
        "phone": "**********0132",
        "serial": "*******3318",
        "order_number": "*******4987",
    }
    user = packet.transcript[1]["text"]
    assert "*******3318" in user and "*******4987" in user and "E-104" in user
    assert "[EMAIL]" in user and "[PHONE]" in user and "3.4.2" in user
    assert "[CARD]" in packet.transcript[3]["text"] and "[SSN]" in packet.transcript[3]["text"]
    assert packet.transcript[4]["text"] == "Please call 1-800-555-0142."
    assert packet.suggested_reply == "Unplug the router now. We will email [EMAIL]."
    assert packet.evidence[0]["matched"] == ["smoke", "[EMAIL]"]
    assert "[PHONE]" in packet.evidence[0]["detail"]


def test_packet_without_redaction_keeps_the_text() -> None:
    packet = _packet(redact_pii=False)
    assert packet.customer_fields["email"] == "jane.doe@example.com"
    assert packet.customer_fields["serial"] == "BWN20473318"
    assert "4111 1111 1111 1111" in packet.transcript[3]["text"]


def test_packet_shape_and_transcript_timestamps() -> None:
    packet = _packet()
    assert len(packet.id) == 32 and packet.status == "open" and packet.agent is None
    assert packet.created_at.endswith("Z")
    assert packet.reasons == ["SENSITIVE_TOPIC", "NO_RELEVANT_CONTEXT"]
    assert [t["role"] for t in packet.transcript] == [
        "user",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert packet.transcript[0] == {"role": "user", "text": "hi", "ts": "2026-09-21T14:13:20Z"}


def test_summary_is_the_first_substantive_question_and_the_latest() -> None:
    packet = _packet()
    assert packet.summary.startswith("My R1 *******3318 shows E-104 since the 3.4.2 update.")
    assert "| Latest: The router is sparking and smells of smoke!" in packet.summary
    assert "jane.doe" not in packet.summary
    assert (
        summarize(
            ["hello", "my S1 keeps dropping off the mesh every night", "talk to a human please"]
        )
        == "my S1 keeps dropping off the mesh every night"
    )
    assert summarize(["agent"]) == "agent"
    assert summarize([]) == "(no customer message)"
    long = "why " * 200
    assert len(summarize([long])) <= 200 and summarize([long]).endswith("...")


class FakeReason(str, Enum):  # noqa: UP042 - like the policy's Reason, str() is not .value
    """Stands in for supportbot.escalation.policy.Reason (a str Enum)."""

    SENSITIVE_TOPIC = "SENSITIVE_TOPIC"
    FRUSTRATION = "FRUSTRATION"


@dataclass(frozen=True)
class FakeEvidence:
    reason: FakeReason
    detail: str
    score: float | None
    matched: tuple[str, ...]


@pytest.mark.parametrize(
    ("reasons", "text", "failures", "expected"),
    [
        (["SENSITIVE_TOPIC"], "there is smoke coming out of the router", False, "urgent"),
        (["SENSITIVE_TOPIC"], "it gave me an electric shock", False, "urgent"),
        (["SENSITIVE_TOPIC", "FRUSTRATION"], "my lawyer will hear about this", False, "urgent"),
        (["SENSITIVE_TOPIC"], "I will take you to court", False, "urgent"),
        (["SENSITIVE_TOPIC"], "I want a refund", False, "high"),
        (["FRUSTRATION"], "this is useless, it caught fire", False, "high"),  # not sensitive
        (["FRUSTRATION"], "useless bot", False, "high"),
        (["HUMAN_REQUESTED", "REPEATED_FAILURE"], "get me a person", False, "high"),
        (["HUMAN_REQUESTED", "LOW_CONFIDENCE"], "agent", False, "high"),
        (["HUMAN_REQUESTED"], "agent please", True, "high"),
        (["HUMAN_REQUESTED"], "agent please", False, "normal"),
        (["LOW_CONFIDENCE"], "", False, "normal"),
        (["ACCOUNT_SPECIFIC"], "", False, "normal"),
        ([], "", False, "normal"),
        (["NO_RELEVANT_CONTEXT"], "do you sell fridges", False, "low"),
        (["NO_RELEVANT_CONTEXT", "HUMAN_REQUESTED"], "human", False, "high"),
        (["no_relevant_context"], "", False, "low"),  # codes compared case-insensitively
        (["SENSITIVE_TOPIC"], "my firewall blocks it", False, "high"),  # fire != firewall
    ],
)
def test_priority_rules(reasons: list[str], text: str, failures: bool, expected: str) -> None:
    assert priority_for(reasons, text, failures) == expected


def test_priority_uses_the_transcript_and_earlier_bot_failures() -> None:
    assert _packet().priority == "urgent"  # SENSITIVE_TOPIC + sparking/smoke
    turns = [
        Turn("user", "how do I set up port forwarding for my console?"),
        Turn("assistant", "I could not find this.", meta={"mode": "none"}),
        Turn("user", "let me talk to a human"),
    ]
    assert build_packet("c", turns, ["HUMAN_REQUESTED"]).priority == "high"
    assert build_packet("c", turns[:1] + turns[2:], ["HUMAN_REQUESTED"]).priority == "normal"
    assert build_packet("c", turns[:1], ["NO_RELEVANT_CONTEXT"]).priority == "low"


def test_reasons_and_evidence_accept_the_policy_enum_and_dataclass() -> None:
    ev = FakeEvidence(FakeReason.SENSITIVE_TOPIC, "matched fire", 0.9, ("fire",))
    packet = build_packet(
        "c",
        [Turn("user", "the adapter is on fire")],
        [FakeReason.SENSITIVE_TOPIC, FakeReason.SENSITIVE_TOPIC],
        [ev],
    )
    assert packet.reasons == ["SENSITIVE_TOPIC"]
    assert packet.evidence == [
        {"reason": "SENSITIVE_TOPIC", "detail": "matched fire", "score": 0.9, "matched": ["fire"]}
    ]
    assert packet.priority == "urgent"
    json.dumps(packet.to_dict())


def test_passages_from_hits_and_mappings() -> None:
    chunk = Chunk(
        id="c1",
        text="E-104 means the WAN cable is unplugged. " * 20,
        source="nexa-user-manual.md",
        title="Nexa User Manual",
        heading="Troubleshooting > E-104",
        page=12,
    )
    citation = {
        "source": "faq.yaml",
        "title": "FAQ",
        "heading": "",
        "page": None,
        "score": 0.5,
        "snippet": "Call 1-800-555-0142.",
    }
    packet = build_packet(
        "c",
        [Turn("user", "E-104?")],
        ["LOW_CONFIDENCE"],
        passages=[Hit(chunk, 0.823456, 1), citation],
    )
    first, second = packet.passages
    assert first["source"] == "nexa-user-manual.md" and first["page"] == 12
    assert first["heading"] == "Troubleshooting > E-104" and first["score"] == 0.8235
    assert len(first["snippet"]) <= 300 and first["snippet"].endswith("...")
    # knowledge-base text is not customer data: passages are not redacted
    assert second == citation


def test_idempotency_key_is_stable() -> None:
    a = _packet()
    b = _packet(reasons=["NO_RELEVANT_CONTEXT", "SENSITIVE_TOPIC"])
    assert a.id != b.id
    assert a.idempotency_key == b.idempotency_key
    expected = hashlib.sha256(b"conv-1\nNO_RELEVANT_CONTEXT,SENSITIVE_TOPIC\n6").hexdigest()
    assert a.idempotency_key == expected
    assert _packet(transcript=_pii_transcript()[:5]).idempotency_key != a.idempotency_key
    assert _packet(conversation_id="conv-2").idempotency_key != a.idempotency_key
    assert _packet(reasons=["FRUSTRATION"]).idempotency_key != a.idempotency_key


def test_packet_round_trips_through_json() -> None:
    packet = _packet()
    data = json.loads(json.dumps(packet.to_dict()))
    assert HandoffPacket.from_dict(data) == packet
    assert HandoffPacket.from_json(packet.to_json()) == packet
    with pytest.raises(HandoffError, match="status"):
        HandoffPacket.from_dict({**data, "status": "lost"})
    with pytest.raises(HandoffError, match="summary"):
        HandoffPacket.from_dict({k: v for k, v in data.items() if k != "summary"})


def test_customer_fields_extraction() -> None:
    fields = extract_customer_fields(
        [
            "order #BW-2026-0012345 hasn't arrived",
            "serial is bwn20473318",
            "I ordered an S1",
            "my order and my account",
            "reach me at a@b.example or a@c.example",
        ]
    )
    assert fields == {
        "order_number": "BW-2026-0012345",
        "serial": "BWN20473318",
        "email": "a@c.example",
    }
    given = build_packet(
        "c",
        [Turn("user", "order: 55512")],
        [],
        customer_fields={"email": "known@example.com", "plan": "Premium"},
    )
    assert given.customer_fields == {
        "order_number": "*5512",
        "email": "k***@example.com",
        "plan": "Premium",
    }


def test_a_hand_off_without_contact_details_does_not_load_the_pii_detector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Extraction keeps only e-mail and phone spans: no sign of one, no detector (seconds)."""
    from supportbot.safety import redact as redact_module

    def not_needed() -> None:
        raise AssertionError("the PII detector was loaded")

    monkeypatch.setattr(redact_module, "_analyzer_instance", None)  # as in a fresh process
    monkeypatch.setattr(redact_module, "_build_analyzer", not_needed)
    said = ["this is useless, get me a real person (hand-off test 1)", "serial is sn-4471-xq"]
    assert extract_customer_fields(said) == {"serial": "SN-4471-XQ"}
    turns = [Turn("user", t) for t in said]
    packet = build_packet("c", turns, ["HUMAN_REQUESTED"], redact_pii=False)
    assert packet.customer_fields == {"serial": "SN-4471-XQ"}
    with pytest.raises(AssertionError, match="detector was loaded"):  # the control
        extract_customer_fields(["call me on 415 555 0132 (hand-off test 1)"])


def test_identifier_formats_are_data() -> None:
    said = ["my BWN20473318 died", "member id M-88120417, serial number is sn-4471-xq"]
    # built in: a serial after the word "serial"; a bare one in the sample's format is not one
    assert extract_customer_fields(said) == {"serial": "SN-4471-XQ"}
    # the sample's profile: its serial format wins over the built-in rule
    assert extract_customer_fields(said, SAMPLE_IDS) == {"serial": "BWN20473318"}
    # another product's: any field, its value masked in the packet and in the text
    ids = {"member_id": r"\bM-(?P<value>\d{8})\b"}
    assert extract_customer_fields(said, ids) == {"serial": "SN-4471-XQ", "member_id": "88120417"}
    packet = build_packet("c", [Turn("user", said[1])], [], identifiers=ids)
    assert packet.customer_fields == {"serial": "******1-XQ", "member_id": "****0417"}
    assert "88120417" not in json.dumps(packet.to_dict())


# -- SQLite queue ----------------------------------------------------------------------


def _simple(conv: str, reasons: list[str], turns: int = 1, text: str = "help") -> HandoffPacket:
    return build_packet(conv, [Turn("user", f"{text} {i}") for i in range(turns)], reasons)


@pytest.fixture
def queue(tmp_path: Path) -> SqliteHandoffQueue:
    return SqliteHandoffQueue(tmp_path / "handoffs.db")


def test_queue_lists_by_priority_then_newest(queue: SqliteHandoffQueue) -> None:
    made = [
        _simple("low", ["NO_RELEVANT_CONTEXT"]),
        _simple("normal-old", ["LOW_CONFIDENCE"]),
        _simple("urgent", ["SENSITIVE_TOPIC"], text="there is smoke"),
        _simple("high", ["FRUSTRATION"]),
        _simple("normal-new", ["LOW_CONFIDENCE"]),
    ]
    for p in made:
        queue.deliver(p)
    assert [p.conversation_id for p in queue.list()] == [
        "urgent",
        "high",
        "normal-new",
        "normal-old",
        "low",
    ]
    assert [p.priority for p in queue.list()] == ["urgent", "high", "normal", "normal", "low"]
    assert queue.list()[0] == made[2]


def test_queue_ignores_duplicate_escalations(queue: SqliteHandoffQueue) -> None:
    first = _simple("c1", ["HUMAN_REQUESTED"])
    again = _simple("c1", ["HUMAN_REQUESTED"])
    assert first.id != again.id and first.idempotency_key == again.idempotency_key
    queue.deliver(first)
    queue.deliver(again)
    queue.deliver(first)
    assert [p.id for p in queue.list()] == [first.id]
    later = _simple("c1", ["HUMAN_REQUESTED"], turns=3)  # the conversation went on
    queue.deliver(later)
    assert len(queue.list()) == 2


def test_queue_status_updates(tmp_path: Path, queue: SqliteHandoffQueue) -> None:
    a, b = _simple("c1", ["FRUSTRATION"]), _simple("c2", ["LOW_CONFIDENCE"])
    queue.deliver(a)
    queue.deliver(b)
    claimed = queue.update_status(a.id, "claimed", agent="sam")
    assert claimed.status == "claimed" and claimed.agent == "sam"
    assert queue.get(a.id) == claimed
    assert queue.get("missing") is None
    assert [p.id for p in queue.list(status="open")] == [b.id]
    assert queue.get_by_conversation("c1") == claimed  # claimed is still open
    resolved = queue.update_status(a.id, "resolved")
    assert resolved.agent == "sam"  # kept when not given
    assert queue.get_by_conversation("c1") is None
    assert queue.get_by_conversation("c1", open_only=False) == resolved
    assert queue.get_by_conversation("nobody", open_only=False) is None
    newer = _simple("c1", ["FRUSTRATION"], turns=4)  # escalated again later
    queue.deliver(newer)
    assert queue.get_by_conversation("c1") == newer
    queue.update_status(b.id, "handed_back", agent="kim")
    with pytest.raises(HandoffError, match="status"):
        queue.update_status(b.id, "done")
    with pytest.raises(HandoffNotFound):
        queue.update_status("missing", "claimed")
    reopened = SqliteHandoffQueue(tmp_path / "handoffs.db")
    assert {p.id: (p.status, p.agent) for p in reopened.list()} == {
        a.id: ("resolved", "sam"),
        b.id: ("handed_back", "kim"),
        newer.id: ("open", None),
    }
    row = (
        sqlite3.connect(tmp_path / "handoffs.db")
        .execute(
            "SELECT status, priority, agent, created_at, updated_at FROM handoffs WHERE id = ?",
            (a.id,),
        )
        .fetchone()
    )
    assert row[:3] == ("resolved", "high", "sam") and row[3] <= row[4]


def test_queue_is_thread_safe(queue: SqliteHandoffQueue) -> None:
    def work(n: int) -> None:
        for i in range(10):
            queue.deliver(_simple(f"c{n}-{i}", ["LOW_CONFIDENCE"]))
            queue.deliver(_simple(f"c{n}-{i}", ["LOW_CONFIDENCE"]))  # duplicate

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queue.list()) == 40


# -- webhook against a real HTTP server ------------------------------------------------


class Helpdesk:
    """An HTTP server on 127.0.0.1 answering POSTs with scripted statuses."""

    def __init__(
        self,
        script: list[int] | None = None,
        default: int = 200,
        retry_after: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.script = list(script or [])
        self.default = default
        self.retry_after = retry_after
        self.delay = delay
        self.requests: list[tuple[dict[str, str], bytes]] = []
        helpdesk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                helpdesk.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = helpdesk.script.pop(0) if helpdesk.script else helpdesk.default
                if helpdesk.delay and len(helpdesk.requests) == 1:
                    time.sleep(helpdesk.delay)
                    self.close_connection = True
                    return  # the client timed out long ago: nothing to answer
                self.send_response(status)
                if helpdesk.retry_after is not None:
                    self.send_header("Retry-After", helpdesk.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/supportbot?token=t0k3n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def helpdesk() -> Iterator[Callable[..., Helpdesk]]:
    servers: list[Helpdesk] = []

    def start(**kwargs: Any) -> Helpdesk:
        servers.append(Helpdesk(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _dead_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT packet, url, last_error, attempts, created_at FROM dead_letters"
        ).fetchall()


def test_webhook_retries_until_the_helpdesk_answers(
    helpdesk: Callable[..., Helpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk(script=[503, 503])
    sink = WebhookSink(server.url, secret="s3cret", retries=5, backoff=0.01, dead_letter=queue)
    packet = _packet()
    sink.deliver(packet)
    assert len(server.requests) == 3
    keys = {headers["idempotency-key"] for headers, _ in server.requests}
    assert keys == {packet.idempotency_key}
    for headers, body in server.requests:
        assert headers["content-type"] == "application/json"
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-supportbot-signature"] == f"sha256={expected}"
        assert json.loads(body) == packet.to_dict()
        assert HandoffPacket.from_json(body.decode()) == packet
    assert sink.dead_letters() == [] and queue.dead_letters() == []


def test_webhook_dead_letters_and_redelivers(
    helpdesk: Callable[..., Helpdesk], tmp_path: Path
) -> None:
    server = helpdesk(default=503)
    db = tmp_path / "dead.db"
    sink = WebhookSink(server.url, retries=2, backoff=0.01, dead_letter=SqliteHandoffQueue(db))
    packet = _packet()
    sink.deliver(packet)  # does not raise
    assert len(server.requests) == 3
    rows = _dead_rows(db)
    assert len(rows) == 1
    assert json.loads(rows[0][0]) == packet.to_dict()
    assert rows[0][1] == server.url and rows[0][2].startswith("HTTP 503") and rows[0][3] == 3
    # still down: the pass stops, the letter stays with one more attempt
    assert sink.redeliver_dead_letters() == 0
    assert _dead_rows(db)[0][3] == 4
    server.default = 200  # the helpdesk recovers
    before = len(server.requests)
    assert sink.redeliver_dead_letters() == 1
    assert _dead_rows(db) == []
    headers, body = server.requests[-1]
    assert len(server.requests) == before + 1
    assert json.loads(body) == packet.to_dict()
    assert headers["idempotency-key"] == packet.idempotency_key
    assert "x-supportbot-signature" not in headers  # no secret, no signature


def test_webhook_does_not_retry_a_client_error(
    helpdesk: Callable[..., Helpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk(default=400)
    sink = WebhookSink(server.url, retries=5, backoff=0.01, dead_letter=queue)
    sink.deliver(_packet())
    assert len(server.requests) == 1
    [letter] = queue.dead_letters()
    assert letter.last_error == "HTTP 400 Bad Request" and letter.attempts == 1


def test_webhook_retries_connection_errors_and_timeouts(
    helpdesk: Callable[..., Helpdesk], queue: SqliteHandoffQueue
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    sink = WebhookSink(
        f"http://127.0.0.1:{closed_port}/hook", retries=2, backoff=0.01, dead_letter=queue
    )
    sink.deliver(_packet())
    [letter] = queue.dead_letters()
    assert letter.attempts == 3 and "ConnectError" in letter.last_error

    slow = helpdesk(delay=1.0)  # the first request times out, the retry succeeds
    sink = WebhookSink(slow.url, retries=2, backoff=0.01, timeout=0.2, dead_letter=queue)
    sink.deliver(_packet(conversation_id="conv-slow"))
    assert len(slow.requests) == 2
    assert len(queue.dead_letters()) == 1


def test_webhook_honours_retry_after_with_a_cap(
    helpdesk: Callable[..., Helpdesk], queue: SqliteHandoffQueue
) -> None:
    slept: list[float] = []
    server = helpdesk(script=[429, 503], retry_after="2")
    sink = WebhookSink(server.url, backoff=0.01, dead_letter=queue, sleep=slept.append)
    sink.deliver(_packet())
    assert slept == [2.0, 2.0] and len(server.requests) == 3

    slept.clear()
    server = helpdesk(script=[429], retry_after="9999")
    sink = WebhookSink(
        server.url, backoff=0.01, dead_letter=queue, sleep=slept.append, max_retry_after=5
    )
    sink.deliver(_packet())
    assert slept == [5.0]

    slept.clear()
    server = helpdesk(script=[503, 502, 500])
    sink = WebhookSink(server.url, backoff=0.25, dead_letter=queue, sleep=slept.append)
    sink.deliver(_packet())
    assert slept == [0.25, 0.5, 1.0] and queue.dead_letters() == []


def test_webhook_needs_a_url(queue: SqliteHandoffQueue) -> None:
    with pytest.raises(ConfigError, match="URL"):
        WebhookSink("", dead_letter=queue)
    with pytest.raises(ConfigError, match="http"):
        WebhookSink("ftp://127.0.0.1/x", dead_letter=queue)


def test_webhook_keeps_dead_letters_in_memory_without_a_queue(
    helpdesk: Callable[..., Helpdesk],
) -> None:
    server = helpdesk(default=500)
    sink = WebhookSink(server.url, retries=0)
    sink.deliver(_packet())
    assert len(sink.dead_letters()) == 1
    server.default = 204
    assert sink.redeliver_dead_letters() == 1 and sink.dead_letters() == []


# -- callback, background, dispatch, build_sinks ----------------------------------------


def test_callback_sink_records_exceptions() -> None:
    got: list[HandoffPacket] = []
    ok = CallbackSink(got.append)
    packet = _packet()
    ok.deliver(packet)
    assert got == [packet] and ok.dead_letters == []

    def broken(p: HandoffPacket) -> None:
        raise RuntimeError("helpdesk SDK exploded")

    bad = CallbackSink(broken)
    bad.deliver(packet)  # does not raise
    [letter] = bad.dead_letters
    assert letter.packet == packet and "RuntimeError: helpdesk SDK exploded" in letter.last_error
    assert letter.url.startswith("callback:") and "broken" in letter.url


def test_background_sink_delivers_off_the_calling_thread() -> None:
    release = threading.Event()
    got: list[str] = []

    def slow(p: HandoffPacket) -> None:
        release.wait(5)
        got.append(threading.current_thread().name)

    sink = BackgroundSink(CallbackSink(slow))
    started = time.perf_counter()
    sink.deliver(_packet())
    assert time.perf_counter() - started < 0.5 and got == []
    assert sink.join(timeout=0.05) is False
    release.set()
    assert sink.join(timeout=5)
    assert got == ["supportbot-handoff"]


def test_deliver_packet_survives_a_failing_sink(queue: SqliteHandoffQueue) -> None:
    class Exploding:
        def deliver(self, packet: HandoffPacket) -> None:
            raise OSError("disk full")

    got: list[HandoffPacket] = []
    packet = _packet()
    deliver_packet(packet, [Exploding(), queue, CallbackSink(got.append)])
    assert queue.list() == [packet] and got == [packet]


def test_build_sinks(tmp_path: Path, helpdesk: Callable[..., Helpdesk]) -> None:
    queue = SqliteHandoffQueue(tmp_path / "q.db")
    assert build_sinks(HandoffSettings(), queue) == []  # the queue itself is no extra sink

    server = helpdesk(default=500)
    settings = HandoffSettings(
        sinks=["sqlite", "webhook", "callback"],
        webhook_url=server.url,
        webhook_secret="x",
        webhook_retries=0,
        webhook_backoff=0.01,
        webhook_timeout=2,
    )
    got: list[HandoffPacket] = []
    sinks = build_sinks(settings, queue, callback=got.append)
    assert [type(s) for s in sinks] == [Outbox, CallbackSink]  # webhooks: the durable outbox
    assert all(isinstance(s, HandoffSink) for s in sinks)
    outbox = sinks[0]
    assert isinstance(outbox, Outbox)
    web = outbox.webhook
    assert (web.secret, web.retries, web.backoff, web.timeout) == ("x", 0, 0.01, 2)
    packet = _packet()
    deliver_packet(packet, sinks)
    assert outbox.wait(timeout=5)
    outbox.close()
    assert got == [packet]
    assert [d.packet for d in outbox.dead_letters()] == [packet]  # webhook failed: same db
    assert [e.state for e in queue.outbox()] == ["dead"]

    with pytest.raises(ConfigError, match="webhook_url"):
        build_sinks(HandoffSettings(sinks=["webhook"]), queue)
    with pytest.raises(ConfigError, match="callback"):
        build_sinks(HandoffSettings(sinks=["callback"]), queue)
    with pytest.raises(ConfigError, match="webhook_url"):
        build_sinks(HandoffSettings(sinks=["webhook"], webhook_url="not a url"), queue)


def test_delivery_logs_carry_no_pii(
    caplog: pytest.LogCaptureFixture, helpdesk: Callable[..., Helpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk(script=[503], default=400)

    def broken(p: HandoffPacket) -> None:
        raise ValueError(f"cannot file ticket for {p.customer_fields}")

    packet = _packet()
    with caplog.at_level(logging.INFO, logger="supportbot.handoff.packet"):
        deliver_packet(
            packet,
            [queue, WebhookSink(server.url, backoff=0.01, dead_letter=queue), CallbackSink(broken)],
        )
        queue.deliver(packet)
        queue.update_status(packet.id, "claimed", agent="sam")
    text = caplog.text
    assert packet.id in text and "NOT delivered" in text and "callback" in text
    for value in [*RAW_PII, "j***@example.com", "t0k3n", "/hooks/supportbot"]:
        assert value not in text
    assert find_pii(text) == []
