"""Comparing models with `supportbot eval --model A --model B`: answer overlap, refusals,
hand-offs, per-configuration memory, one model in memory at a time, the plot.

The comparison logic runs on the scripted model and the hash embedder; one test runs the
real default model and embedder on a tiny knowledge base.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evaluate.questions import load_questions
from evaluate.run import (
    EvalReport,
    QuestionResult,
    _summarise,
    evaluate,
)
from evaluate.stats import answer_tokens, token_scores
from supportbot import cli, generate
from supportbot.config import Settings
from supportbot.generate import ScriptedGenerator
from supportbot.models import install
from supportbot.models.packs import PACKS, Distribution, ModelPack

cli._register_plugins()
runner = CliRunner()

WARRANTY = "The widget has a 2-year limited warranty."
QUESTIONS = [
    {
        "id": "w",
        "question": "what is the warranty period of the widget",
        "gold": [{"source": "faq.yaml", "question": "How long is the warranty?"}],
        "facts": ["2-year"],
        "answer_text": WARRANTY,
    },
    {
        "id": "c",
        "question": "how long does a full charge of the widget take",
        "gold": [{"source": "manual.md", "section": "Charging the widget"}],
        "answer_text": "Plug the widget into the USB-C port. A full charge takes 90 minutes.",
    },
    {"id": "h", "question": "I want to talk to a human agent now", "decision": "escalate"},
]


def _questions(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


# --- token overlap ----------------------------------------------------------------------


def test_answer_tokens_lowercase_words_without_citations() -> None:
    assert answer_tokens("Error E-104 means DNS [1]. See [2, 3].") == [
        "error",
        "e",
        "104",
        "means",
        "dns",
        "see",
    ]
    assert answer_tokens("[1]") == [] and answer_tokens("") == []


def test_token_scores_by_hand() -> None:
    exact = token_scores("The widget has a 2-year limited warranty [1].", WARRANTY)
    assert (exact.precision, exact.recall, exact.f1) == (1.0, 1.0, 1.0)
    # answer: the light blinks blue (4); reference: 9 tokens with "the" twice.
    part = token_scores(
        "The light blinks blue [1].", "Hold the pair button until the light blinks blue."
    )
    assert part.precision == 1.0 and part.recall == pytest.approx(4 / 9)
    assert part.f1 == pytest.approx(8 / 13)
    # Counted as multisets: "blue blue blue" matches one "blue" only.
    assert token_scores("blue blue blue", "blue sky").precision == pytest.approx(1 / 3)
    assert token_scores("", WARRANTY).f1 == 0.0 and token_scores("no overlap", "").f1 == 0.0


def test_summary_separates_answered_from_all_and_counts_failures() -> None:
    report = EvalReport("x", 5, False, "default", 700, True)
    rows = [
        QuestionResult("1", "answer", "answer", "generated", [], [], removed=1),
        QuestionResult("2", "answer", "answer", "extract", [], [], removed=2),
        QuestionResult("3", "answer", "answer", "none", [], []),
        QuestionResult("4", "answer", "escalate", "handoff", [], []),
        QuestionResult("5", "escalate", "escalate", "handoff", [], []),
    ]
    for row, f1 in zip(rows[:4], (0.6, 0.2, None, None), strict=True):
        row.has_reference = True
        row.answer_f1, row.answer_recall = f1, (None if f1 is None else f1 / 2)
    report.rows.extend(rows)
    _summarise(report, [], [])
    assert report.answer_f1 == 0.4 and report.answer_recall == 0.2
    assert report.answer_f1_all == 0.2  # (0.6 + 0.2 + 0 + 0) / 4
    assert (report.answer_scored, report.answer_scored_answered) == (4, 2)
    assert report.answer_f1_ci is not None
    assert report.answer_f1_ci[0] <= 0.4 <= report.answer_f1_ci[1]
    assert (report.unsupported_sentences, report.refusals, report.handoffs) == (3, 1, 2)


# --- memory -------------------------------------------------------------------------------


def test_peak_memory_is_measured_per_block() -> None:
    # In a fresh interpreter: in the suite's own process, threads other tests left
    # running (model warm-ups) allocate while the block runs and blur the figures.
    script = """
import time
from evaluate.run import PeakMemory, resident_memory_mb
before = resident_memory_mb()
assert before is not None and before > 0
with PeakMemory(interval=0.01) as peak:
    block = b"x" * (120 << 20)  # written, so resident
    time.sleep(0.2)
    del block
assert peak.mb >= before + 100, (before, peak.mb)
with PeakMemory(interval=0.01) as later:
    time.sleep(0.05)
assert later.mb < peak.mb - 60, (peak.mb, later.mb)  # the earlier peak does not carry over
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_unload_models_closes_and_forgets_cached_models(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []

    class FakeLlama:
        def close(self) -> None:
            closed.append("x")

    monkeypatch.setattr(generate, "_MODELS", {("a.gguf", 2048, 0): FakeLlama()})
    generate.unload_models()
    assert closed == ["x"] and generate._MODELS == {}


# --- evaluate() and the CLI on the scripted model ------------------------------------------


def test_rows_carry_the_answer_and_its_overlap(
    tmp_path: Path, kb_dir: Path, model: ScriptedGenerator
) -> None:
    from ingest import run_ingest

    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        escalation={"enabled": False},
    )
    assert run_ingest([kb_dir], settings).ok
    model.enqueue("The widget has a 2-year limited warranty [1].", "Pizza is 5 dollars [1].", "")
    report = evaluate(load_questions(_questions(tmp_path / "q.jsonl")), settings)
    rows = {r.id: r for r in report.rows}
    assert rows["h"].has_reference is False  # no answer_text: not scored
    scored = [r for r in report.rows if r.has_reference]
    assert len(scored) == report.answer_scored == 2
    for row in scored:
        assert row.answer  # what the customer saw is kept with the row
        if row.answer_f1 is not None:
            ref = next(q["answer_text"] for q in QUESTIONS if q["id"] == row.id)
            assert row.answer_f1 == token_scores(row.answer, str(ref)).f1
    assert report.answer_f1 is not None and report.answer_f1_all is not None
    assert report.answer_f1_all <= report.answer_f1


@pytest.fixture
def tiny_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelPack:
    """A registered pack installed (and verified) in the models folder of the settings."""
    data = b"GGUF tiny"
    pack = ModelPack(
        name="tiny-test",
        title="Tiny",
        file_name="tiny.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        parts=(Distribution("tiny", "1.0", "tiny/tiny.gguf"),),
        chat=True,
        n_ctx=512,
        licence="test",
        upstream="none",
        use_when="tests",
    )
    monkeypatch.setitem(PACKS, pack.name, pack)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / pack.file_name).write_bytes(data)
    assert install.verify_pack(pack, folder).verified
    monkeypatch.setenv("SUPPORTBOT_LLM__MODELS_DIR", str(folder))
    return pack


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPPORTBOT_ESCALATION__ENABLED", "false")
    return _questions(tmp_path / "q.jsonl")


def test_cli_compares_models_one_at_a_time_with_a_plot(
    env: Path,
    kb_dir: Path,
    tiny_pack: ModelPack,
    model: ScriptedGenerator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple[str, str]] = []
    unloads: list[int] = []

    def build_generator(settings: Settings) -> ScriptedGenerator:
        built.append((settings.llm.model, str(settings.llm.model_path)))
        return model

    from supportbot import factory

    monkeypatch.setattr(factory, "build_generator", build_generator)
    monkeypatch.setattr(generate, "unload_models", lambda: unloads.append(len(built)))
    model.enqueue(*(["The widget has a 2-year limited warranty [1]."] * 6))
    out = tmp_path / "cmp.json"
    args = ["eval", str(env), "--kb", str(kb_dir), "--model", "default", "--model", "tiny-test"]
    res = runner.invoke(cli.app, [*args, "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert built == [("default", "None"), ("tiny-test", "None")]
    assert unloads == [1, 2]  # each model freed before the next loads
    configs = json.loads(out.read_text())["configs"]
    assert [c["label"] for c in configs] == ["default", "tiny-test"]
    assert [c["model"] for c in configs] == ["default", "tiny-test"]
    for c in configs:
        assert c["answer_scored"] == 2 and c["answer_f1"] is not None
        assert c["peak_memory_mb"] > 0 and c["ttft_p50"] is not None
        assert {"refusals", "handoffs", "unsupported_sentences"} <= set(c)
    for text in ("token F1 vs answer_text", "handed over", "no answer", "tiny-test"):
        assert text in res.stdout
    png = out.with_suffix(".png")  # the plot lands next to the report
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_missing_pack_stops_before_any_question(
    env: Path, model: ScriptedGenerator, tmp_path: Path
) -> None:
    res = runner.invoke(
        cli.app, ["eval", str(env), "--model", "default", "--model", "qwen2.5-coder-1.5b"]
    )
    assert res.exit_code == 1
    assert "supportbot models pull qwen2.5-coder-1.5b" in res.output
    assert model.history == []
    res = runner.invoke(cli.app, ["eval", str(env), "--model", "gpt-5"])
    assert res.exit_code == 1 and "Unknown model pack 'gpt-5'" in res.output


# --- the real default model -----------------------------------------------------------------


@pytest.mark.model
def test_real_default_model_scored_against_reference_answers(
    tmp_path: Path, kb_dir: Path, real_embedder: Any
) -> None:
    from ingest import run_ingest

    settings = Settings(data_dir=tmp_path / "data", escalation={"enabled": False})
    assert run_ingest([kb_dir], settings, embedder=real_embedder).ok
    questions = load_questions(_questions(tmp_path / "q.jsonl"))[:2]
    report = evaluate(questions, settings, label="default")
    assert report.answer_scored == 2
    answered = [r for r in report.rows if r.answer_f1 is not None]
    assert answered, [r.answer for r in report.rows]
    for row in answered:
        assert 0.0 <= row.answer_f1 <= 1.0 and row.answer  # type: ignore[operator]
    assert report.ttft_p50 is not None and report.total_p95 is not None
    assert report.peak_memory_mb > 200  # the embedder and the GGUF are resident
    generate.unload_models()
