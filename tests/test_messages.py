"""The bot's fixed messages come from settings, so a company words them for its product."""

from __future__ import annotations

from collections.abc import Callable

from supportbot.bot import SupportBot
from supportbot.factory import Services


def test_hand_over_with_agent_and_hand_back_use_the_configured_words(
    hash_services: Callable[..., Services],
) -> None:
    services = hash_services(
        messages={
            "handed_over": "Acme support has it, ref {ref}.",
            "with_agent": "Still with Acme support (ref {ref}).",
            "handed_back": "Back with AcmeBot.",
        }
    )
    bot, desk = services.bot, services.desk
    first = bot.ask("I want to talk to a real person please", conversation_id="c1")
    assert first.mode == "handoff" and first.handoff_id
    ref = first.handoff_id[:8]
    assert first.answer == f"Acme support has it, ref {ref}."
    assert bot.ask("hello?", conversation_id="c1").answer == f"Still with Acme support (ref {ref})."
    desk.hand_back(first.handoff_id, "sam")
    assert bot.history("c1")[-1].text == "Back with AcmeBot."


def test_nothing_found_uses_the_configured_words(hash_bot: Callable[..., SupportBot]) -> None:
    bot = hash_bot(
        escalation={"enabled": False},
        retrieval={"faq_match": 1.0},
        messages={"no_answer": "AcmeBot has nothing on that."},
    )
    for source in bot._retriever.store.sources():  # an index with its model stamp but no passages
        bot._retriever.store.delete_source(source)
    assert bot.ask("What colour is the sky on Mars?").answer == "AcmeBot has nothing on that."
