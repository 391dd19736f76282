"""`supportbot eval` and evaluate.run (hash embedder, scripted model, tiny KB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import IN_PROCESS
from typer.testing import CliRunner

from evaluate.questions import load_questions
from evaluate.run import (
    EvalReport,
    QuestionResult,
    _summarise,
    actual_decision,
    check_thresholds,
    evaluate,
    percentile,
)
from supportbot import cli
from supportbot.config import Settings
from supportbot.generate import ScriptedGenerator

cli._register_plugins()
runner = CliRunner()

WARRANTY_Q = "what is the warranty period of the widget"
GOOD = "The widget has a 2-year limited warranty [1]."
BAD = "Pizza costs 5 dollars [1]."
FAQ_GOLD = [{"source": "faq.yaml", "question": "How long is the warranty?"}]

QUESTIONS = [
    {"id": "a1", "question": WARRANTY_Q, "gold": FAQ_GOLD, "facts": ["2-year"]},
    {
        "id": "a2",
        "question": WARRANTY_Q,
        "gold": FAQ_GOLD,
        "facts": ["lifetime"],
        "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}],
    },
    {
        "id": "e1",
        "question": "I want to talk to a human agent right now, not a bot",
        "decision": "escalate",
        "reasons": ["HUMAN_REQUESTED"],
    },
]


def write_questions(path: Path, rows: list[dict[str, object]] = QUESTIONS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CLI settings through the environment: hash embedder, scripted model, answering only."""
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_LLM__BACKEND", "scripted")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPPORTBOT_ESCALATION__ENABLED", "false")
    monkeypatch.setenv("SUPPORTBOT_INGEST__FILE_TIMEOUT", "0")  # parsed in-process (conftest)
    return write_questions(tmp_path / "questions.jsonl")


@pytest.fixture
def indexed(tmp_path: Path, kb_dir: Path) -> Settings:
    from ingest import run_ingest

    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        llm={"backend": "scripted"},
        escalation={"enabled": False},
        ingest=IN_PROCESS,
    )
    assert run_ingest([kb_dir], settings).ok
    return settings


def test_answer_metrics_on_a_controlled_case(
    indexed: Settings, model: ScriptedGenerator, tmp_path: Path
) -> None:
    questions = load_questions(write_questions(tmp_path / "q.jsonl"))
    model.enqueue(GOOD, BAD)  # e1 is answered too (escalation off): an empty reply
    seen: list[str] = []
    report = evaluate(questions, indexed, progress=lambda q: seen.append(q.id))
    assert seen == ["a1", "a2", "e1"]
    rows = {r.id: r for r in report.rows}
    assert rows["a1"].correct is True and rows["a2"].correct is False
    assert rows["e1"].correct is None  # no facts: not judged
    assert report.accuracy == 0.5 and report.accuracy_n == 2
    # a2's history went into its conversation: the model saw it.
    assert [role for role, _ in model.history[1].history] == ["user", "assistant"]
    # a1 keeps its one sentence, a2's only sentence is removed: 1 of 2 unsupported.
    assert rows["a1"].mode == "generated" and rows["a2"].mode == "extract"
    assert report.unsupported_rate == 0.5
    assert report.citation_precision == 1.0  # both cite the gold FAQ entry
    assert report.retrieval["n"] == 2 and report.retrieval["recall@10"] == 1.0
    assert report.total_p50 is not None and report.ttft_p50 is not None
    assert report.tokens_per_s is not None and report.tokens_per_s > 0
    assert report.peak_memory_mb > 0
    # escalation off: the escalate-labelled question was answered, never escalated
    assert report.confusion["escalate"] == {"answer": 1, "clarify": 0, "escalate": 0}
    assert report.escalation["recall"] == 0.0 and report.escalate_handled is not None
    json.dumps(report.to_dict())  # JSON-ready


def test_retrieval_only_generates_nothing(
    indexed: Settings, model: ScriptedGenerator, tmp_path: Path
) -> None:
    questions = load_questions(write_questions(tmp_path / "q.jsonl"))
    settings = indexed.model_copy(
        update={"escalation": indexed.escalation.model_copy(update={"enabled": True})}
    )
    report = evaluate(questions, settings, retrieval_only=True)
    assert model.history == []
    assert report.retrieval_only and report.accuracy is None and report.total_p50 is None
    assert report.retrieval["recall@10"] == 1.0
    e1 = next(r for r in report.rows if r.id == "e1")
    assert e1.actual == "escalate" and "HUMAN_REQUESTED" in e1.reasons
    assert report.per_reason["HUMAN_REQUESTED"]["recall"] == 1.0
    assert "UNSUPPORTED_ANSWER" not in report.per_reason
    assert sum(sum(v.values()) for v in report.confusion.values()) == 3


def test_confusion_and_escalation_scores() -> None:
    report = EvalReport("x", 5, False, "default", 700, True)
    rows = [
        ("answer", "handoff", ["LOW_CONFIDENCE"], []),
        ("answer", "generated", [], []),
        ("clarify", "clarify", [], []),
        ("escalate", "handoff", ["FRUSTRATION"], ["FRUSTRATION"]),
        ("escalate", "generated", [], ["HUMAN_REQUESTED"]),
    ]
    for i, (expected, mode, reasons, labelled) in enumerate(rows):
        report.rows.append(
            QuestionResult(str(i), expected, actual_decision(mode), mode, labelled, reasons)
        )
    _summarise(report, [], [])
    assert report.confusion == {
        "answer": {"answer": 1, "clarify": 0, "escalate": 1},
        "clarify": {"answer": 0, "clarify": 1, "escalate": 0},
        "escalate": {"answer": 1, "clarify": 0, "escalate": 1},
    }
    assert report.escalation["precision"] == 0.5 and report.escalation["recall"] == 0.5
    assert report.escalation["f1"] == 0.5
    assert report.escalation["false_escalation_rate"] == round(1 / 3, 4)
    assert report.per_reason["FRUSTRATION"]["f1"] == 1.0
    assert report.per_reason["HUMAN_REQUESTED"]["recall"] == 0.0
    assert report.per_reason["LOW_CONFIDENCE"]["precision"] == 0.0
    assert report.escalate_handled == 0.5
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([], 95) is None
    fails = check_thresholds(
        [report],
        {"--min-escalation-recall": 0.9, "--min-accuracy": None, "--max-false-escalation": 0.5},
    )
    assert len(fails) == 1 and "--min-escalation-recall" in fails[0]


def test_cli_thresholds_fail_with_exit_1(env: Path, kb_dir: Path, model: ScriptedGenerator) -> None:
    res = runner.invoke(
        cli.app, ["eval", str(env), "--kb", str(kb_dir), "--retrieval-only", "--min-recall5", "0.5"]
    )
    assert res.exit_code == 0, res.output
    assert "recall@5" in res.stdout and "retrieval-only" in res.stdout
    res = runner.invoke(
        cli.app,
        ["eval", str(env), "--retrieval-only", "--min-recall5", "1.01", "--min-accuracy", "0.1"],
    )
    assert res.exit_code == 1
    assert "thresholds not met" in res.output
    assert "--min-recall5 1.01" in res.output and "--min-accuracy 0.1: not measured" in res.output
    assert model.history == []


def test_cli_json_file_and_stdout(
    env: Path, kb_dir: Path, model: ScriptedGenerator, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    res = runner.invoke(
        cli.app, ["eval", str(env), "--kb", str(kb_dir), "--retrieval-only", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["configs"][0]["questions"] == 3 and len(data["configs"][0]["rows"]) == 3
    res = runner.invoke(
        cli.app, ["eval", str(env), "--retrieval-only", "--json", "-", "--limit", "2"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["configs"][0]["questions"] == 2  # stdout holds only JSON


def test_cli_malformed_questions_name_the_line(env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(QUESTIONS[0]) + "\n{not json\n")
    res = runner.invoke(cli.app, ["eval", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}:2" in res.output and "Traceback" not in res.output


def test_cli_compares_configs_side_by_side_and_plots(
    env: Path, kb_dir: Path, model: ScriptedGenerator, tmp_path: Path
) -> None:
    model.enqueue(GOOD, BAD, "", GOOD, GOOD, "")
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = runner.invoke(
        cli.app,
        [
            "eval",
            str(env),
            "--kb",
            str(kb_dir),
            "--context-tokens",
            "300",
            "--context-tokens",
            "700",
            "--json",
            str(out),
            "--plot",
            str(png),
        ],
    )
    assert res.exit_code == 0, res.output
    configs = json.loads(out.read_text())["configs"]
    assert [c["label"] for c in configs] == ["ctx=300", "ctx=700"]
    assert [c["context_tokens"] for c in configs] == [300, 700]
    assert [c["accuracy"] for c in configs] == [0.5, 0.5]  # a2 expects "lifetime"
    assert "ctx=300" in res.stdout and "ctx=700" in res.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(model.history) == 6


def test_cli_unknown_model_file_is_a_clean_error(env: Path, tmp_path: Path) -> None:
    res = runner.invoke(cli.app, ["eval", str(env), "--model", str(tmp_path / "nope.gguf")])
    assert res.exit_code == 1 and "no such GGUF" in res.output


def test_intervals_and_ranking_quality() -> None:
    from evaluate.stats import auroc, bootstrap_ci, wilson

    assert wilson(0, 55) == (0.0, 0.0653)  # "none of 55" still allows up to 6.5%
    low, high = wilson(50, 100) or (0, 0)
    assert low < 0.5 < high and round(high - low, 2) == 0.19
    assert wilson(0, 0) is None
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None
    rows = list(range(50))
    ci = bootstrap_ci(rows, lambda s: sum(s) / len(s))
    assert ci == bootstrap_ci(rows, lambda s: sum(s) / len(s))  # deterministic
    assert ci is not None and ci[0] < 24.5 < ci[1]


def test_scope_figures_separate_in_and_out_of_scope() -> None:
    from evaluate.run import QuestionResult, _scope

    inside = [
        QuestionResult(f"a{i}", "answer", "answer", "generated", [], [], relevance=0.8)
        for i in range(9)
    ] + [QuestionResult("a9", "answer", "escalate", "handoff", [], [], relevance=0.2)]
    outside = [
        QuestionResult(
            f"o{i}", "escalate", "escalate", "handoff", ["NO_RELEVANT_CONTEXT"], [], relevance=0.1
        )
        for i in range(4)
    ] + [
        QuestionResult(
            "o4", "escalate", "answer", "generated", ["NO_RELEVANT_CONTEXT"], [], relevance=0.9
        )
    ]
    scope = _scope(inside + outside)
    assert (scope["in_scope"], scope["out_of_scope"]) == (10, 5)
    assert scope["in_scope_handed_over"] == 0.1 and scope["out_of_scope_answered"] == 0.2
    assert scope["auroc"] == round((36 + 9 * 0 + 4 * 1 + 0) / 50, 4)  # pairs ranked right
    assert scope["in_scope_handed_over_ci"][0] < 0.1 < scope["in_scope_handed_over_ci"][1]
