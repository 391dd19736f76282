"""`supportbot ask` and `supportbot chat` (hash embedder, scripted model, via the environment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from supportbot import cli
from supportbot.generate import ScriptedGenerator

cli._register_plugins()
runner = CliRunner()

# Not the FAQ question word for word, so the scripted model answers (no curated FAQ reply).
WARRANTY_Q = "what is the warranty period of the widget"


@pytest.fixture(autouse=True)
def _fake_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_LLM__BACKEND", "scripted")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPPORTBOT_ESCALATION__ENABLED", "false")  # answering only
    monkeypatch.setenv("SUPPORTBOT_INGEST__FILE_TIMEOUT", "0")  # parsed in-process (conftest)


@pytest.fixture
def indexed(kb_dir: Path) -> Path:
    res = runner.invoke(cli.app, ["ingest", str(kb_dir)])
    assert res.exit_code == 0, res.output
    return kb_dir


def test_ask_streams_answer_and_lists_sources(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("The widget has a 2-year limited warranty [1].")
    res = runner.invoke(cli.app, ["ask", WARRANTY_Q])
    assert res.exit_code == 0, res.output
    assert "The widget has a 2-year limited warranty [1]." in res.stdout
    assert "Verified answer:" not in res.stdout  # the verified text is what was streamed
    assert "Sources:" in res.stdout
    assert "[1] FAQ > Warranty" in res.stdout
    assert "mode: generated" in res.stdout and "first token:" in res.stdout
    assert len(model.history) == 1 and model.history[0].question == WARRANTY_Q


def test_ask_faq_question_needs_no_model(indexed: Path, model: ScriptedGenerator) -> None:
    res = runner.invoke(cli.app, ["ask", "How long is the warranty?"])
    assert res.exit_code == 0, res.output
    assert "2-year limited warranty" in res.stdout and "mode: faq" in res.stdout
    assert model.history == []


def test_ask_json(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("The widget has a 2-year limited warranty [1].")
    res = runner.invoke(cli.app, ["ask", WARRANTY_Q, "--json", "--conversation", "c1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # nothing else on stdout: no streamed text
    assert out["mode"] == "generated" and out["verified"] is True
    assert out["answer"] == "The widget has a 2-year limited warranty [1]."
    assert out["conversation_id"] == "c1" and out["question"] == WARRANTY_Q
    assert out["citations"][0]["n"] == 1 and out["citations"][0]["source"] == "faq.yaml"
    assert set(out["citations"][0]) == {
        "n",
        "source",
        "title",
        "heading",
        "page",
        "snippet",
        "score",
    }
    assert out["removed"] == [] and out["notices"] == []
    assert set(out["timings"]) == {"retrieval", "first_token", "total"}


def test_ask_unsupported_answer_is_replaced(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("Pizza costs 5 dollars [1].")
    res = runner.invoke(cli.app, ["ask", WARRANTY_Q])
    assert res.exit_code == 0, res.output
    assert "Verified answer:" in res.stdout
    assert "mode: extract" in res.stdout
    assert "(1 unsupported sentence(s) removed)" in res.stdout
    model.enqueue("Pizza costs 5 dollars [1].")
    out = json.loads(runner.invoke(cli.app, ["ask", WARRANTY_Q, "--json"]).stdout)
    assert out["mode"] == "extract" and "Pizza" not in out["answer"]
    assert out["removed"][0]["sentence"].startswith("Pizza costs 5 dollars")


def test_ask_shows_notices(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("The widget has a 2-year limited warranty [1].")
    res = runner.invoke(cli.app, ["ask", "what is the war\u200branty period of the widget"])
    assert res.exit_code == 0, res.output
    assert "Invisible or control characters were removed" in res.stdout


@pytest.mark.parametrize("question", ["", "   ", "\u200b"])
def test_ask_empty_question_is_a_clean_error(
    indexed: Path, model: ScriptedGenerator, question: str
) -> None:
    res = runner.invoke(cli.app, ["ask", question])
    assert res.exit_code == 1
    assert "Your message is empty" in res.output
    assert "Traceback" not in res.output
    assert model.history == []


def test_ask_on_empty_index_explains_what_to_do(model: ScriptedGenerator) -> None:
    res = runner.invoke(cli.app, ["ask", "anything"])
    assert res.exit_code == 1
    assert "supportbot ingest" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli.app, ["ask", "anything", "--json"])
    assert res.exit_code == 1 and res.stdout == ""


def test_chat_two_turns_in_one_conversation(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("An opened widget can be returned within 30 days [1].")
    res = runner.invoke(
        cli.app, ["chat"], input="how long is the warranty?\nand what about returns?\nexit\n"
    )
    assert res.exit_code == 0, res.output
    assert "exit" in res.stdout and "Ctrl-D" in res.stdout  # the banner says how to quit
    assert "2-year limited warranty" in res.stdout  # the curated FAQ answer, no model call
    assert "An opened widget can be returned within 30 days [1]." in res.stdout
    assert res.stdout.count("Sources:") == 2
    # The second question went to the model with the first turn as its history.
    assert len(model.history) == 1
    last = model.history[0]
    assert last.question == "and what about returns?"
    assert [role for role, _ in last.history] == ["user", "assistant"]
    assert last.history[0][1] == "how long is the warranty?"


def test_chat_keeps_given_conversation(indexed: Path, model: ScriptedGenerator) -> None:
    res = runner.invoke(cli.app, ["chat", "--conversation", "abc123"], input="\n")
    assert res.exit_code == 0, res.output
    assert "abc123" in res.stdout


def test_chat_bad_message_does_not_end_it(indexed: Path, model: ScriptedGenerator) -> None:
    model.enqueue("The widget has a 2-year limited warranty [1].")
    res = runner.invoke(cli.app, ["chat"], input=f"\u200b\n{WARRANTY_Q}\nquit\n")
    assert res.exit_code == 0, res.output
    assert "Your message is empty" in res.stdout
    assert "2-year limited warranty" in res.stdout


def test_chat_ends_on_eof(indexed: Path, model: ScriptedGenerator) -> None:
    res = runner.invoke(cli.app, ["chat"], input="")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output


def test_chat_on_empty_index_is_a_clean_error(model: ScriptedGenerator) -> None:
    res = runner.invoke(cli.app, ["chat"], input="anything\n")
    assert res.exit_code == 1
    assert "supportbot ingest" in res.output and "Traceback" not in res.output


def test_terminal_escape_sequences_from_the_model_never_reach_the_terminal(
    indexed: Path, model: ScriptedGenerator
) -> None:
    # ESC [2J clears the screen; OSC 8 makes a hidden hyperlink: a model coaxed by a
    # poisoned document could emit either.
    model.enqueue(
        "The widget has a 2-year \x1b[2Jlimited \x1b]8;;https://evil.example\x07warranty [1]."
    )
    res = runner.invoke(cli.app, ["ask", WARRANTY_Q])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "2-year" in res.stdout
