"""Streamed text is guarded too: no instruction text or configuration value reaches the
screen (or a terminal's scrollback) while the answer is still being generated."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supportbot.bot import Reply, SupportBot
from supportbot.generate import ScriptedGenerator
from supportbot.prompt import INSTRUCTIONS
from supportbot.safety.guard import StreamGuard, _shingles

QUESTION = "what is the warranty period of the widget"


@pytest.fixture
def gen() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture
def bot(hash_bot: Callable[..., SupportBot], gen: ScriptedGenerator) -> SupportBot:
    return hash_bot(gen, escalation={"enabled": False}, retrieval={"faq_match": 1.0})


def _streamed(bot: SupportBot, question: str) -> tuple[str, Reply]:
    shown: list[str] = []
    reply: Reply | None = None
    for item in bot.stream(question):
        if isinstance(item, Reply):
            reply = item
        else:
            shown.append(item)
    assert reply is not None
    return "".join(shown), reply


def test_an_ordinary_answer_streams_whole(bot: SupportBot, gen: ScriptedGenerator) -> None:
    text = "The widget has a 2-year limited warranty [1]. Keep your receipt as proof."
    gen.enqueue(text)
    shown, reply = _streamed(bot, QUESTION)
    assert shown == text
    assert reply.trace.raw_answer == text


def test_instructions_repeated_by_the_model_are_not_streamed(
    bot: SupportBot, gen: ScriptedGenerator
) -> None:
    leak = " ".join(INSTRUCTIONS.split()[:40])
    gen.enqueue(f"The warranty is 2 years [1]. My instructions say: {leak}")
    shown, reply = _streamed(bot, QUESTION)
    assert shown.startswith("The warranty is 2 years")
    assert not _shingles(shown) & _shingles(INSTRUCTIONS), shown
    assert not _shingles(reply.answer) & _shingles(INSTRUCTIONS)


def test_configuration_values_are_not_streamed(bot: SupportBot, gen: ScriptedGenerator) -> None:
    secret = str(bot.settings.store_path.resolve())
    gen.enqueue(f"The warranty is 2 years [1]. My index lives in {secret} on this machine.")
    shown, reply = _streamed(bot, QUESTION)
    assert secret[:8] not in shown, shown
    assert secret not in reply.answer


def test_guard_releases_text_a_little_behind_the_model() -> None:
    guard = StreamGuard(["/srv/models/secret.gguf"], hold=24)
    assert guard.feed("Short start") == ""  # held back: fewer than 24 characters so far
    out = guard.feed(" and a longer sentence that goes on.")
    assert out and "Short start and a longer sentence".startswith(out[:20])
    assert guard.flush().endswith("goes on.")
