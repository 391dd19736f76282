"""kb/eval as a regression gate: `supportbot eval` with the real models, as a user runs it.

This is the suite's one pass over kb/eval with the real SLM (72 questions, 47 of them
answerable): the command's own gates check retrieval, answer accuracy and escalation, and
every answer the customer is shown is checked for grounding on the way. The command runs
in-process, on a copy of the session's kb/docs index, so its ``--kb`` re-ingest finds
every file unchanged and the models already loaded by the session are reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from test_real_answer import _grounded
from typer.testing import CliRunner

from supportbot import cli
from supportbot.bot import SupportBot
from supportbot.config import Settings, load_settings
from supportbot.factory import build_generator
from supportbot.generate import LlamaCppGenerator
from supportbot.types import Reply

pytestmark = pytest.mark.model
cli._register_plugins()

# Measured on the full kb/eval set with the defaults and the sample's profile (the command
# below, commit after 3b1c825): recall@5 0.936, accuracy 0.638, escalation recall 0.80 at
# 12.8% false escalations (6 of 47, all NO_RELEVANT_CONTEXT on follow-ups and chatty
# wording: the sample keeps the generic relevance floor, see kb/supportbot.toml). Gates sit
# a few points under those figures.
GATES = [
    "--min-recall5",
    "0.93",
    "--min-accuracy",
    "0.55",
    "--min-escalation-recall",
    "0.78",
    "--max-false-escalation",
    "0.15",
]
# The bot's own (hybrid) passages: 0.98 measured (docs/measured.md, bench/answer.py).
BOT_RECALL5_FLOOR = 0.93


def test_kb_eval_meets_its_gates(
    kb_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(kb_index.data_dir, data)
    # The sample's product profile (its vague words, serial format, wording), as the README
    # runs it.
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(data))
    monkeypatch.setenv("SUPPORTBOT_CONFIG", str(ROOT / "kb" / "supportbot.toml"))
    shown: list[Reply] = []
    ask = SupportBot.ask

    def ask_and_keep(self: SupportBot, *args: object, **kwargs: object) -> Reply:
        reply = ask(self, *args, **kwargs)  # type: ignore[arg-type]
        shown.append(reply)
        return reply

    monkeypatch.setattr(SupportBot, "ask", ask_and_keep)
    # As in the fresh process a user runs it in: the session's model holds earlier tests'
    # prompts in its cache, and a prompt continued from a cached prefix can round a near-tie
    # differently (see tests/test_remote_generator.py), which moves a figure near its gate.
    generator = build_generator(load_settings(ROOT / "kb" / "supportbot.toml"))
    assert isinstance(generator, LlamaCppGenerator)
    generator.llama.reset()
    out = tmp_path / "report.json"
    res = CliRunner().invoke(
        cli.app,
        [
            "eval",
            str(ROOT / "kb" / "eval" / "questions.jsonl"),
            "--kb",
            str(ROOT / "kb" / "docs"),
            "--json",
            str(out),
            *GATES,
        ],
    )
    assert res.exit_code == 0, res.output[-3000:]
    report = json.loads(out.read_text())["configs"][0]
    print(
        "kb/eval:",
        {k: report[k] for k in ("accuracy", "accuracy_n", "modes", "wall_seconds")},
        report["retrieval"],
        report["retrieval_bot_hits"],
        report["escalation"],
    )
    assert report["retrieval"]["n"] == 47 and len(report["rows"]) == 72
    assert report["escalation_enabled"] is True and report["retrieval_only"] is False
    assert report["retrieval_bot_hits"]["recall@5"] >= BOT_RECALL5_FLOOR

    assert len(shown) == 72
    answered = [r for r in shown if r.mode in ("faq", "generated", "extract")]
    assert len(answered) >= 40  # most of the 47 answerable ones, not handed over
    for reply in answered:
        _grounded(reply)
