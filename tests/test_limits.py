"""Every bound the product sets: what happens at the limit, and what the user is told.

One test per limit; each checks the behaviour and that the message names the limit and
says what to do (docs/security-and-privacy.md, "Limits", lists them).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import make_pdf

from ingest import run_ingest
from supportbot import RateLimited, SupportBot
from supportbot.config import Settings
from supportbot.conversation import MemoryConversationStore
from supportbot.embed import HashEmbedder
from supportbot.errors import InputError, ModelError
from supportbot.factory import build, build_store
from supportbot.generate import OpenAIGenerator, PromptParts, ScriptedGenerator
from supportbot.safety.ratelimit import RateLimiter


def _bot(
    settings: Settings, kb_dir: Path, gen: ScriptedGenerator, **conversation: object
) -> SupportBot:
    settings = settings.model_copy(
        update={
            "escalation": settings.escalation.model_copy(update={"enabled": False}),
            "conversation": settings.conversation.model_copy(update=conversation),
        }
    )
    run_ingest([kb_dir], settings)
    return build(
        settings,
        embedder=HashEmbedder(64),
        store=build_store(settings),
        generator=gen,
        conversations=MemoryConversationStore(),
    ).bot


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- conversation ------------------------------------------------------------------------


def test_question_length_is_capped_with_a_notice(settings: Settings, kb_dir: Path) -> None:
    gen = ScriptedGenerator(["A full charge takes 90 minutes [1]."])
    bot = _bot(settings, kb_dir, gen, max_question_chars=40)
    reply = bot.ask("charging minutes " + "x" * 5000)
    assert len(reply.question) == 40
    assert gen.history[0].question == reply.question  # the model never saw the rest
    (notice,) = reply.notices
    assert "only the first 40 were read" in notice and "5,017 characters" in notice
    assert "ask one short question" in notice


def test_history_turns_bounds_what_the_prompt_sees(settings: Settings, kb_dir: Path) -> None:
    gen = ScriptedGenerator()
    bot = _bot(settings, kb_dir, gen, history_turns=2)
    for n in range(3):
        gen.enqueue(f"Answer {n}: a full charge takes 90 minutes [1].")
        bot.ask(f"question {n} about charging the widget", conversation_id="c1")
    last = gen.history[-1].history
    # Only the latest exchange (2 messages) is in the prompt; the first one is not ...
    assert [role for role, _ in last] == ["user", "assistant"]
    assert last[0][1] == "question 1 about charging the widget"
    assert not any("question 0" in text for _, text in last)
    # ... while the conversation (what a human agent gets) keeps every turn.
    assert len(bot.history("c1")) == 6


def test_rate_limit_per_conversation_refuses_before_any_work(
    settings: Settings, kb_dir: Path
) -> None:
    gen = ScriptedGenerator()
    bot = _bot(settings, kb_dir, gen)  # the defaults: 10 messages per 60 seconds
    assert (bot._rate_limiter.limit, bot._rate_limiter.window) == (10, 60.0)
    clock = FakeClock()
    bot._rate_limiter = RateLimiter(3, 60.0, clock=clock)
    for n in range(3):
        gen.enqueue("A full charge takes 90 minutes [1].")
        bot.ask(f"charging the widget {n}", conversation_id="c1")
        clock.now += 10
    calls = {"retrieve": 0}
    original = bot._retriever.retrieve

    def counting(*args: object, **kwargs: object) -> object:
        calls["retrieve"] += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    bot._retriever.retrieve = counting  # type: ignore[method-assign]
    with pytest.raises(RateLimited) as err:
        bot.ask("and again?", conversation_id="c1")
    assert isinstance(err.value, InputError)  # the chat CLI and the UI show it and go on
    assert "3 messages per 60 seconds" in str(err.value)
    assert "Please wait 30 seconds" in str(err.value)  # the first message leaves at t+60
    assert err.value.retry_after == pytest.approx(30.0)
    assert calls["retrieve"] == 0 and len(gen.history) == 3
    assert len(bot.history("c1")) == 6  # the refused message is not recorded
    gen.enqueue("A full charge takes 90 minutes [1].")
    bot.ask("charging the widget", conversation_id="c2")  # another customer is unaffected
    clock.now += 30
    gen.enqueue("A full charge takes 90 minutes [1].")
    assert bot.ask("charging the widget again", conversation_id="c1").mode == "generated"


def test_rate_limit_defaults_apply_through_the_settings(settings: Settings, kb_dir: Path) -> None:
    bot = _bot(settings, kb_dir, ScriptedGenerator(["Charge it [1]."] * 20))
    for n in range(10):  # a fast human: ten messages within seconds
        bot.ask(f"charging {n}", conversation_id="c1")
    with pytest.raises(
        RateLimited, match=r"10 messages per 60 seconds\). Please wait \d+ s"
    ) as err:
        bot.ask("charging 10", conversation_id="c1")
    assert 30 < err.value.retry_after <= 60  # the first of the ten leaves the window then


def test_rate_limiter_is_thread_safe_and_forgets_idle_conversations() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 60.0, clock=clock)
    accepted: list[int] = []

    def send() -> None:
        accepted.append(sum(1 for _ in range(50) if limiter.acquire("c1") == 0.0))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(accepted) == 100
    for n in range(500):
        limiter.acquire(f"conv-{n}")
    clock.now += 61
    assert limiter.acquire("c1") == 0.0
    assert list(limiter._events) == ["c1"]  # the idle ones were dropped
    assert RateLimiter(0, 60.0).acquire("c1") == 0.0  # 0 turns the limit off


# -- ingestion ---------------------------------------------------------------------------


def test_max_file_mb_refuses_a_large_file_and_ingests_the_rest(
    settings: Settings, kb_dir: Path
) -> None:
    (kb_dir / "huge.md").write_text("# Huge\n\n" + "words and more words " * 2000)
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"max_file_mb": 0.02})}
    )
    report = run_ingest([kb_dir], settings)
    (failed,) = report.failed
    assert failed.source == "huge.md"
    assert "too large (0.0 MB, limit 0.02 MB)" in failed.reason
    assert "Split it, or raise SUPPORTBOT_INGEST__MAX_FILE_MB" in failed.reason
    assert report.count("added") == 3


def test_max_pdf_pages_refuses_a_long_pdf(settings: Settings, kb_dir: Path) -> None:
    make_pdf(kb_dir / "long.pdf", {f"Chapter {n}": f"Text of chapter {n}." for n in range(3)})
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"max_pdf_pages": 2})}
    )
    report = run_ingest([kb_dir], settings)
    (failed,) = report.failed
    assert failed.source == "long.pdf"
    assert "has 3 pages (limit 2)" in failed.reason
    assert "Split it, or raise SUPPORTBOT_INGEST__MAX_PDF_PAGES" in failed.reason


# -- generation --------------------------------------------------------------------------


@pytest.mark.model
def test_max_tokens_stops_the_real_model_with_a_notice(kb_index: Settings) -> None:
    settings = kb_index.model_copy(
        update={
            "llm": kb_index.llm.model_copy(update={"max_tokens": 8}),
            "escalation": kb_index.escalation.model_copy(update={"enabled": False}),
        }
    )
    bot = SupportBot.from_settings(settings)
    reply = bot.ask("how do I set up ethernet backhaul between my router and satellite?")
    assert 0 < bot._generator.count_tokens(reply.trace.raw_answer) <= 8
    assert reply.verified
    (notice,) = reply.notices
    assert "length limit for one answer (8 tokens)" in notice
    assert "Ask about one thing at a time" in notice


@pytest.mark.model
def test_generation_timeout_stops_the_real_model_and_keeps_the_text(kb_index: Settings) -> None:
    question = "how do I set up ethernet backhaul between my router and satellite?"
    quiet = kb_index.escalation.model_copy(update={"enabled": False})
    full_bot = SupportBot.from_settings(kb_index.model_copy(update={"escalation": quiet}))
    full = full_bot.ask(question)
    llama = full_bot._generator.llama  # type: ignore[attr-defined]
    evaluated_full = llama.n_tokens  # prompt + every generated token
    assert full.notices == [] and full_bot._generator.count_tokens(full.trace.raw_answer) >= 10

    settings = kb_index.model_copy(
        update={
            "escalation": quiet,
            "llm": kb_index.llm.model_copy(update={"generation_timeout": 0.001}),
        }
    )
    bot = SupportBot.from_settings(settings)
    assert bot._generator.llama is llama  # one model per process
    cut = bot.ask(question)
    assert llama.n_tokens <= evaluated_full - 8  # llama.cpp stopped, it did not run on
    # Cut after its first token (which may be a space): what it wrote is kept, no more.
    assert cut.trace.tokens >= 1 and full.trace.raw_answer.startswith(cut.trace.raw_answer)
    assert cut.mode in ("generated", "extract") and cut.verified
    (notice,) = cut.notices
    assert "cut off" in notice and "0.001-second limit" in notice
    assert "Ask a shorter, more specific question" in notice
    assert not bot._generator._lock.locked()  # type: ignore[attr-defined]
    again = full_bot.ask(question).trace.raw_answer
    assert again == full.trace.raw_answer  # the model is fine after


def test_remote_server_timeout_names_the_setting() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    started = time.perf_counter()
    try:
        with pytest.raises(ModelError) as err:
            list(
                OpenAIGenerator(url, timeout=0.5).stream(
                    PromptParts("Answer.", "[1] x", "?"), 8, []
                )
            )
    finally:
        listener.close()
    assert time.perf_counter() - started < 5
    assert "did not answer within 0.5 seconds (SUPPORTBOT_LLM__TIMEOUT)" in str(err.value)
    assert "raise the timeout" in str(err.value)
