"""One boundary for untrusted text, and every step of a turn bounded whatever the history.

Hostile inputs from the security review (issue 12): non-strings, lone surrogates, odd
ids, invalid UTF-8 on the command line and stdin, and a history built to make the
repeated-question check quadratic. Each must end in an answer or an InputError that
says what to do: never a traceback, never a slow turn.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supportbot import InputError, SupportBotError
from supportbot.config import EscalationSettings
from supportbot.conversation import Turn
from supportbot.escalation import EscalationPolicy
from supportbot.factory import Services
from supportbot.safety.hygiene import check_id, check_text

HOSTILE_QUESTIONS: list[Any] = [
    "\ud800",
    "what does E-104 mean \udcff?",
    b"what does E-104 mean?",
    42,
    None,
    ["what", "is", "this"],
    {"q": 1},
]
HOSTILE_IDS: list[Any] = [
    42,
    "\ud800",
    "conv\udcff",
    "",
    "x" * 129,
    "../../etc/passwd",
    "a b",
    "<script>",
    "c1\n",
    b"c1",
]


def test_text_gate_accepts_text_and_names_the_problem() -> None:
    assert check_text("héllo ✓ 日本", "The question") == "héllo ✓ 日本"
    with pytest.raises(InputError, match="The question must be text .*not int"):
        check_text(5, "The question")
    with pytest.raises(InputError, match="not valid Unicode .*position 3"):
        check_text("abc\ud800", "The question")
    assert check_id("eval-1a2b-q001") == "eval-1a2b-q001"
    assert check_id("c" * 128) == "c" * 128
    for bad in HOSTILE_IDS:
        with pytest.raises(InputError, match="conversation id"):
            check_id(bad)


@pytest.mark.parametrize("question", HOSTILE_QUESTIONS, ids=repr)
def test_hostile_questions_get_an_input_error(
    hash_services: Callable[..., Services], question: Any
) -> None:
    bot = hash_services().bot
    with pytest.raises(InputError) as err:
        bot.ask(question, conversation_id="c1")
    assert "question" in str(err.value).lower()
    assert bot.history("c1") == []  # nothing half-recorded


@pytest.mark.parametrize("conversation_id", HOSTILE_IDS, ids=repr)
def test_hostile_ids_get_an_input_error_everywhere(
    hash_services: Callable[..., Services], conversation_id: Any
) -> None:
    services = hash_services()
    bot, desk = services.bot, services.desk
    calls: list[Callable[[], object]] = [
        lambda: bot.ask("How long is the warranty?", conversation_id=conversation_id),
        lambda: bot.history(conversation_id),
        lambda: bot.escalate(conversation_id),
        lambda: bot.feedback(conversation_id, helpful=True),
        lambda: bot.open_handoff(conversation_id),
        lambda: desk.conversation(conversation_id),
        lambda: desk.claim(conversation_id, "sam"),
    ]
    for call in calls:
        with pytest.raises(InputError):
            call()


def test_desk_refuses_empty_or_broken_agent_input(hash_services: Callable[..., Services]) -> None:
    services = hash_services()
    packet = services.bot.escalate("c1")
    with pytest.raises(InputError, match="agent's reply"):
        services.desk.reply(packet.id, "sam", "\ud800")
    with pytest.raises(InputError, match="empty"):
        services.desk.reply(packet.id, "sam", "   ")
    with pytest.raises(InputError, match="agent's name"):
        services.desk.claim(packet.id, 7)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="reason"):
        services.bot.escalate("c2", reason="NOT_A_REASON")


def test_every_hostile_input_is_a_supportbot_error(hash_services: Callable[..., Services]) -> None:
    """A helpdesk integrator needs one ``except SupportBotError`` around the API."""
    bot = hash_services().bot
    for q in HOSTILE_QUESTIONS:
        for conv in [*HOSTILE_IDS, "ok-id"]:
            try:
                bot.ask(q, conversation_id=conv)
            except SupportBotError:
                pass


def _long_history(n: int, chars: int) -> list[Turn]:
    words = "router reset light amber blue password network cable modem firmware".split()
    turns: list[Turn] = []
    for i in range(n):
        text = " ".join(f"{words[(i * 7 + j) % len(words)]}{(i + j) % 97}" for j in range(400))
        turns += [Turn("user", text[:chars]), Turn("assistant", "Here is what the manual says.")]
    return turns


def test_policy_stays_fast_whatever_the_history() -> None:
    """1,000 earlier 2,000-character messages: the whole policy under 50 ms per turn.

    Measured as CPU time of the median of five turns (other processes on a busy CI
    machine do not count), after one warm-up turn that loads the sentiment lexicon.
    """
    policy = EscalationPolicy(EscalationSettings())
    history = _long_history(1000, 2000)
    policy.decide("warm up", [], top_score=0.9)
    times = []
    for question in [history[-2].text, history[0].text, "how do I reset the router", "E-104"]:
        started = time.process_time()
        decision = policy.decide(question, history, top_score=0.9)
        times.append(time.process_time() - started)
        assert decision.action in ("answer", "escalate", "clarify")
    assert statistics.median(times) < 0.05, times
    # and the repeat is still caught: the latest question asked again
    again = policy.decide(history[-2].text, history, top_score=0.9)
    assert [r.value for r in again.reasons] == ["REPEATED_FAILURE"]


def _cli(
    args: list[bytes], tmp_path: Path, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "SUPPORTBOT_EMBEDDING__BACKEND": "hash",
        "SUPPORTBOT_LLM__BACKEND": "scripted",
        "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONIOENCODING": "utf-8",
    }
    return subprocess.run(
        [sys.executable.encode(), b"-c", b"from supportbot.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_cli_reads_invalid_utf8_with_replacement(kb_dir: Path, tmp_path: Path) -> None:
    assert _cli([b"ingest", str(kb_dir).encode()], tmp_path).returncode == 0
    asked = _cli([b"ask", b"how long is the warranty \xff\xfe?"], tmp_path)
    assert asked.returncode == 0, asked.stderr.decode(errors="replace")
    assert b"Traceback" not in asked.stderr
    assert "\ufffd".encode() in asked.stdout or b"warranty" in asked.stdout
    bad_id = _cli([b"ask", b"warranty?", b"--conversation", b"c\xff1"], tmp_path)
    assert bad_id.returncode == 1 and b"Traceback" not in bad_id.stderr
    assert b"conversation id" in bad_id.stderr
    chat = _cli([b"chat"], tmp_path, stdin=b"how long is the warranty \xc3\x28?\nexit\n")
    assert chat.returncode == 0, chat.stderr.decode(errors="replace")
    assert b"Traceback" not in chat.stderr
