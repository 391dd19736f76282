"""Escalation inside SupportBot and the bot-to-human lifecycle (fakes: no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import IN_PROCESS

from ingest import run_ingest
from supportbot.bot import SupportBot
from supportbot.config import Settings
from supportbot.conversation import MemoryConversationStore
from supportbot.desk import AgentDesk
from supportbot.embed import HashEmbedder
from supportbot.escalation import Reason
from supportbot.factory import Services, build
from supportbot.generate import ScriptedGenerator
from supportbot.handoff.packet import HandoffPacket


@pytest.fixture
def gen() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture
def delivered() -> list[HandoffPacket]:
    return []


@pytest.fixture
def services(
    kb_dir: Path, tmp_path: Path, gen: ScriptedGenerator, delivered: list[HandoffPacket]
) -> Services:
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        escalation={"min_relevance": 0.0, "min_confidence": 0.0},
        handoff={"sinks": ["sqlite", "callback"]},
        ingest=IN_PROCESS,
    )
    run_ingest([kb_dir], settings)
    return build(
        settings,
        delivered.append,
        embedder=HashEmbedder(64),
        generator=gen,
        conversations=MemoryConversationStore(),
    )


@pytest.fixture
def bot(services: Services) -> SupportBot:
    return services.bot


@pytest.fixture
def desk(services: Services) -> AgentDesk:
    return services.desk


def test_request_for_a_person_hands_over_with_a_packet(
    bot: SupportBot, gen: ScriptedGenerator, delivered: list[HandoffPacket], desk: AgentDesk
) -> None:
    reply = bot.ask(
        "I want to talk to a real person. My email is jane.doe@example.com", conversation_id="c1"
    )
    assert reply.mode == "handoff" and reply.escalation is not None
    assert reply.escalation.escalate and Reason.HUMAN_REQUESTED in reply.escalation.reasons
    assert reply.handoff_id and f"#{reply.handoff_id[:8]}" in reply.answer
    assert gen.history == []  # no generation for a hand-off decided up front
    (packet,) = desk.handoffs(status="open")
    assert packet.id == reply.handoff_id and packet.conversation_id == "c1"
    assert "HUMAN_REQUESTED" in packet.reasons
    dumped = json.dumps(packet.to_dict())
    assert "jane.doe@example.com" not in dumped and "[EMAIL]" in dumped
    assert [p.id for p in delivered] == [packet.id]  # the callback sink got it too


def test_bot_stays_quiet_while_an_agent_owns_the_conversation(
    bot: SupportBot, gen: ScriptedGenerator
) -> None:
    first = bot.ask("agent please", conversation_id="c2")
    reply = bot.ask("how long does charging the widget take?", conversation_id="c2")
    assert reply.mode == "handoff" and "support agent has your conversation" in reply.answer
    assert gen.history == []
    assert reply.handoff_id == first.handoff_id


def test_agent_claims_replies_and_hands_back(
    bot: SupportBot, gen: ScriptedGenerator, desk: AgentDesk
) -> None:
    reply = bot.ask("can I speak to a human", conversation_id="c3")
    hid = reply.handoff_id
    assert hid is not None
    assert desk.claim(hid, "maria").status == "claimed"
    desk.reply(hid, "maria", "Hi, Maria here. Let me check that for you.")
    turns = bot.history("c3")
    assert turns[-1].text.startswith("Hi, Maria here") and turns[-1].meta["agent"] == "maria"
    assert desk.hand_back(hid, "maria").status == "handed_back"
    gen.enqueue("A full charge takes 90 minutes [1].")
    after = bot.ask("charging the widget: how many minutes for a full charge", conversation_id="c3")
    assert after.mode == "generated" and "90 minutes" in after.answer


def test_handed_back_reason_is_not_re_escalated_on_the_next_turn(
    bot: SupportBot, gen: ScriptedGenerator, desk: AgentDesk
) -> None:
    reply = bot.ask("I want to speak to someone", conversation_id="c4")
    desk.hand_back(reply.handoff_id or "", "maria")
    gen.enqueue("A full charge takes 90 minutes [1].")
    again = bot.ask(
        "ok but I still want to speak to someone about charging the widget", conversation_id="c4"
    )
    assert again.mode != "handoff"
    assert Reason.HUMAN_REQUESTED not in (again.escalation.reasons if again.escalation else ())
    later = bot.ask("I want to speak to someone", conversation_id="c4")
    assert later.mode == "handoff"  # the next time it counts again


def test_resolve_lets_the_bot_answer_again(
    bot: SupportBot, gen: ScriptedGenerator, desk: AgentDesk
) -> None:
    reply = bot.ask("get me a human", conversation_id="c5")
    assert desk.resolve(reply.handoff_id or "", "maria").status == "resolved"
    assert desk.handoffs(status="open") == []
    gen.enqueue("Hold the pair button for 5 seconds [1].")
    assert (
        bot.ask("pairing the widget with my phone: which button", conversation_id="c5").mode
        == "generated"
    )


def test_two_thumbs_down_escalate_the_next_turn(bot: SupportBot, gen: ScriptedGenerator) -> None:
    gen.enqueue("A full charge takes 90 minutes [1].", "Hold the pair button for 5 seconds [1].")
    bot.ask("charging the widget: how many minutes", conversation_id="c6")
    assert bot.feedback("c6", helpful=False)
    bot.ask("pairing the widget with my phone: which button", conversation_id="c6")
    bot.feedback("c6", helpful=False)
    reply = bot.ask("what does W-42 mean", conversation_id="c6")
    assert reply.mode == "handoff"
    assert Reason.REPEATED_FAILURE in reply.escalation.reasons  # type: ignore[union-attr]


def test_manual_escalation_is_idempotent(bot: SupportBot, desk: AgentDesk) -> None:
    p1 = bot.escalate("c7", "HUMAN_REQUESTED", note="pressed the talk-to-a-person button")
    p2 = bot.escalate("c7")
    assert p1.id == p2.id and len(desk.handoffs()) == 1
    assert bot.history("c7")[-1].meta["handoff"] == p1.id


def test_unknown_handoff_id_is_a_clear_error(bot: SupportBot, desk: AgentDesk) -> None:
    from supportbot.errors import SupportBotError

    with pytest.raises(SupportBotError, match="No hand-off"):
        desk.claim("nope", "maria")


def test_no_relevant_context_escalates_without_generating(kb_dir: Path, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "d",
        embedding={"backend": "hash"},
        llm={"backend": "scripted"},
        escalation={"min_relevance": 0.99},
        ingest=IN_PROCESS,
    )
    run_ingest([kb_dir], settings)
    services = build(settings)
    bot, desk = services.bot, services.desk
    reply = bot.ask("do you sell pizza")
    assert reply.mode == "handoff"
    assert Reason.NO_RELEVANT_CONTEXT in reply.escalation.reasons  # type: ignore[union-attr]
    (packet,) = desk.handoffs()
    assert packet.passages  # what the bot tried travels with the packet
