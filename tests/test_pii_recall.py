"""Recall of PII redaction on Faker data and on hand-written messages, and a PII-heavy
conversation through SupportBot.

The generator is bench/pii_recall.py's (seven locales, support-chat templates), on a
smaller set than the bench's 500 per type. The hand-written sets are bench/pii_handwritten.py's
(tests/data/pii_handwritten*.jsonl), written by hand, not from those templates.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bench import pii_handwritten
from bench.pii_recall import (
    EXPECTED_KIND,
    PATTERN_TYPES,
    Case,
    generate,
    kb_sentences,
    measure_false_positives,
    measure_recall,
)
from ingest import run_ingest
from supportbot.bot import SupportBot
from supportbot.config import Settings
from supportbot.conversation import MemoryConversationStore
from supportbot.embed import HashEmbedder
from supportbot.factory import Services, build
from supportbot.generate import ScriptedGenerator
from supportbot.handoff.packet import HandoffPacket
from supportbot.safety.redact import find_pii, may_hold_contact

PER_TYPE = 120
SEED = 7  # not the bench's seed: other values than the ones the docs/measured.md figures come from


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return generate(PER_TYPE, SEED)


def test_generator_covers_every_type_and_locale(cases: list[Case]) -> None:
    assert {c.type for c in cases} == set(EXPECTED_KIND)
    assert all(sum(c.type == t for c in cases) == PER_TYPE for t in EXPECTED_KIND)
    assert {c.locale for c in cases if c.type == "PHONE"} == {
        "en_US",
        "en_GB",
        "de_DE",
        "fr_FR",
        "es_ES",
        "it_IT",
        "nl_NL",
    }
    assert all(c.text[c.start : c.end] == c.value for c in cases)
    assert generate(5, SEED) == generate(5, SEED)  # fixed seed, same data


def test_recall_per_pattern_type_is_at_least_099(cases: list[Case]) -> None:
    rows = measure_recall(cases)
    for kind in PATTERN_TYPES:
        assert rows[kind]["recall"] >= 0.99, (kind, rows[kind]["missed"])
    # Street addresses and names are free text found by heuristics: a lower bar.
    assert rows["ADDRESS"]["recall"] >= 0.95, rows["ADDRESS"]["missed"]
    assert rows["NAME"]["recall"] >= 0.95, rows["NAME"]["missed"]


def test_the_cheap_contact_check_never_misses_what_the_detector_finds(
    cases: list[Case],
) -> None:
    """may_hold_contact lets a hand-off skip the detector: only where it would find nothing.

    On every generated and hand-written message (seven locales, every kind), and on the
    knowledge base's sentences: no e-mail or phone span where the check says none.
    """
    texts = [c.text for c in cases]
    for path in (pii_handwritten.SET, pii_handwritten.HOLDOUT):
        texts += [m.text for m in pii_handwritten.load(path)]
    texts += kb_sentences()[:150]
    skipped = 0
    for text in texts:
        if not may_hold_contact(text):
            skipped += 1
            assert not [s for s in find_pii(text) if s.kind in ("EMAIL", "PHONE")], text
    for case in cases:
        if case.type in ("EMAIL", "PHONE"):
            assert may_hold_contact(case.text), case.text
    assert skipped >= len(texts) // 4  # the check does spare the detector


def test_recall_on_the_hand_written_set_meets_the_targets() -> None:
    # Issue 12's targets: >= 0.97 on every claimed type, >= 0.90 on names; nothing that
    # must stay (error codes, versions, order numbers, words that are also names, an
    # agent's name from `allow`) is touched, and nothing else is flagged.
    messages = pii_handwritten.load()
    assert len(messages) >= 60
    result = pii_handwritten.measure(messages)
    for kind, row in result.rows.items():
        assert row.n >= 3, kind
        bar = 0.90 if kind == "NAME" else 0.97
        assert row.recall >= bar, (kind, row.missed)
    assert sum(r.n for k, r in result.rows.items() if k == "NAME") >= 40
    assert result.keep_touched == []
    assert len(result.false_positives) <= 2, result.false_positives


def test_recall_on_the_hold_out_set() -> None:
    # Written after the recognisers were settled; the figures in docs/measured.md. Names
    # without a cue that are also words ("Can Grace reset...") or in lower case after
    # "it's" are missed there: the bar is what was measured, to catch a regression.
    result = pii_handwritten.measure(pii_handwritten.load(pii_handwritten.HOLDOUT))
    for kind, row in result.rows.items():
        bar = 0.85 if kind == "NAME" else 0.97
        assert row.recall >= bar, (kind, row.missed)
    assert result.keep_touched == []
    assert result.false_positives == []


def test_knowledge_base_text_stays_untouched() -> None:
    fp = measure_false_positives(kb_sentences())
    assert fp["sentences"] > 1000
    assert fp["rate"] <= 0.005, fp["examples"]


# -- end to end ------------------------------------------------------------------------


def _conversation(cases: list[Case]) -> tuple[list[str], list[str]]:
    """Customer messages carrying two values of every type, and those values."""
    picked: list[Case] = []
    for kind in EXPECTED_KIND:
        picked += [c for c in cases if c.type == kind][:2]
    # One message with all of them: several templates ("refund", "charged") escalate
    # at once, and a packet holds the turns up to the escalation.
    messages = [
        "Hi, my Nexa router shows E-104 since the 3.4.2 update, what should I do?",
        "It still fails. Here is everything: "
        + "\n".join(c.text for c in picked)
        + "\nI want to talk to a real person please",
    ]
    return messages, [c.value for c in picked]


def _bot(
    kb_dir: Path, tmp_path: Path, redact_pii: bool, delivered: list[HandoffPacket]
) -> Services:
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        escalation={"min_relevance": 0.0, "min_confidence": 0.0},
        handoff={"sinks": ["sqlite", "callback"], "redact_pii": redact_pii},
    )
    run_ingest([kb_dir], settings)
    gen = ScriptedGenerator()
    gen.enqueue(*["Restart the router and wait two minutes [1]."] * 4)
    return build(
        settings,
        delivered.append,
        embedder=HashEmbedder(64),
        generator=gen,
        conversations=MemoryConversationStore(),
    )


def _hand_over(bot: SupportBot, messages: list[str]) -> str:
    handoff_id = None
    for text in messages:
        reply = bot.ask(text, conversation_id="pii-1")
        handoff_id = reply.handoff_id or handoff_id
    assert handoff_id, "the conversation was not handed over"
    return handoff_id


def test_handoff_packet_carries_no_pii_value(
    kb_dir: Path, tmp_path: Path, cases: list[Case], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    delivered: list[HandoffPacket] = []
    services = _bot(kb_dir, tmp_path, True, delivered)
    bot, desk = services.bot, services.desk
    messages, values = _conversation(cases)
    handoff_id = _hand_over(bot, messages)
    (packet,) = desk.handoffs(status="open")
    assert packet.id == handoff_id and [p.id for p in delivered] == [handoff_id]
    assert len([t for t in packet.transcript if t["role"] == "user"]) == len(messages)
    for body in (packet.to_json(), delivered[0].to_json(), caplog.text):
        for value in values:
            for form in {value, value.replace(" ", ""), json.dumps(value)[1:-1]}:
                assert form not in body, value
    allow = bot.settings.handoff.redact_allow
    assert find_pii(json.dumps(packet.to_dict(), ensure_ascii=False), allow) == []
    # what the agent still gets: the error code and the version, and the kinds
    first, details = (t["text"] for t in packet.transcript if t["role"] == "user")
    assert "E-104" in first and "3.4.2" in first
    for kind in ("EMAIL", "PHONE", "CARD", "IBAN", "IP", "SSN", "NATIONAL_ID", "ADDRESS", "NAME"):
        assert f"[{kind}]" in details
    # the raw transcript stays in the local conversation store
    raw = " ".join(t.text for t in bot.history("pii-1"))
    assert all(v in raw for v in values)


def test_keep_setting_leaves_the_values_in_the_packet(
    kb_dir: Path, tmp_path: Path, cases: list[Case]
) -> None:
    delivered: list[HandoffPacket] = []
    services = _bot(kb_dir, tmp_path, False, delivered)
    bot, desk = services.bot, services.desk
    messages, values = _conversation(cases)
    _hand_over(bot, messages)
    (packet,) = desk.handoffs(status="open")
    body = json.dumps(packet.to_dict(), ensure_ascii=False)
    missing = [v for v in values if v not in body]
    assert missing == []
