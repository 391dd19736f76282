"""Answering models compared on a dev set: `supportbot eval --model A --model B ...`.

    python bench/model_compare.py                                   # default vs the 1.5B pack
    python bench/model_compare.py --models default qwen2.5-coder-0.5b qwen2.5-coder-1.5b
    python bench/model_compare.py --product zsh --every 1
    python bench/model_compare.py --data FOLDER                     # a copy of a built index

Takes every ``--every``-th answerable question of the product's ``questions_noq.jsonl``
(the FAQ questions verbatim, with ``answer_text``), ingests the product's ``kb_noq`` into
a fresh data folder with the default settings, and runs ``supportbot eval`` on them once
per model (the same index; one process per model, each model's report kept as soon as it
finishes). Prints the figures side by side and writes them with their plot to
bench/out/model_compare-<product>.{json,png}. The packs must be installed first
(``supportbot models pull NAME``); set SUPPORTBOT_LLM__MODELS_DIR if they live outside
the new data folder.

Nothing here is tuned on the questions: the settings are the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, ROOT, machine  # noqa: E402

CACHE = Path.home() / ".cache" / "supportbot-devset"


def subset(product: str, every: int, dest: Path) -> int:
    """Every ``every``-th answerable question of ``product`` into ``dest``; returns how many."""
    rows = [
        json.loads(line)
        for line in (CACHE / product / "questions_noq.jsonl").read_text().splitlines()
        if line.strip()
    ]
    answerable = [r for r in rows if r.get("decision") == "answer" and r.get("answer_text")]
    chosen = answerable[::every]
    dest.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--product", default="fetchmail", choices=("fetchmail", "zsh"))
    parser.add_argument("--every", type=int, default=3, help="Every N-th answerable question.")
    parser.add_argument("--models", nargs="+", default=["default", "qwen2.5-coder-1.5b"])
    parser.add_argument(
        "--data", type=Path, help="start from a copy of this index of the product's kb_noq"
    )
    args = parser.parse_args(argv)
    if not (CACHE / args.product / "kb_noq").is_dir():
        sys.exit(f"{CACHE / args.product} is missing: run python bench/devsets.py first")
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"models-{args.product}-"))
    questions = work / "questions.jsonl"
    if args.data is not None:
        # Built earlier from the same documents with the default settings: `eval --kb`
        # finds every file unchanged instead of embedding the manual again.
        shutil.copytree(args.data, work / "data")
    n = subset(args.product, args.every, questions)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip() or os.environ.get("SUPPORTBOT_COMMIT", "(not a git checkout)")
    print(f"{machine()}; commit {commit}; {args.product}: {n} answerable questions (kb_noq)")
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(work / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # One `supportbot eval` process per model on the same index (the first ingests it, the
    # others find it up to date): each model's figures are saved as soon as it finishes,
    # and each process's memory is its own. `eval --model A --model B` gives the same
    # comparison in one process.
    reports: list[dict[str, object]] = []
    for model in args.models:
        part = work / f"{model}.json"
        cmd = [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'supportbot'; from supportbot.cli import main; main()",
            "eval",
            str(questions),
            "--kb",
            str(CACHE / args.product / "kb_noq"),
            "--model",
            model,
            "--json",
            str(part),
        ]
        done = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        if done.returncode != 0 or not part.is_file():
            print(f"{model}: supportbot eval failed (exit {done.returncode})")
            continue
        reports += json.loads(part.read_text())["configs"]
        print(f"{model}: done", flush=True)
    if not reports:
        return 1
    out = OUT / f"model_compare-{args.product}.json"
    out.write_text(json.dumps({"commit": commit, "questions": n, "configs": reports}, indent=2))
    summarise(reports, out.with_suffix(".png"))
    print(f"written: {out} and {out.with_suffix('.png')}")
    return 0


def summarise(configs: list[dict[str, object]], png: Path) -> None:
    """Print the comparison side by side and draw the plot."""
    from evaluate.run import EvalReport, plot_reports

    rows = {
        "token F1 (answered) [95% CI]": lambda c: f"{c['answer_f1']} {c['answer_f1_ci']}",
        "token recall (answered)": lambda c: c["answer_recall"],
        "token F1 (all, no answer = 0)": lambda c: c["answer_f1_all"],
        "answered / with answer_text": lambda c: (
            f"{c['answer_scored_answered']} / {c['answer_scored']}"
        ),
        "unsupported sentences (removed)": lambda c: c["unsupported_sentences"],
        "unsupported-sentence rate": lambda c: c["unsupported_rate"],
        "no answer / handed over": lambda c: f"{c['refusals']} / {c['handoffs']}",
        "modes": lambda c: c["modes"],
        "first token p50 / p95 (s)": lambda c: f"{c['ttft_p50']} / {c['ttft_p95']}",
        "total p50 / p95 (s)": lambda c: f"{c['total_p50']} / {c['total_p95']}",
        "tokens/s": lambda c: c["tokens_per_s"],
        "peak resident memory (MB)": lambda c: c["peak_memory_mb"],
        "wall time (s)": lambda c: c["wall_seconds"],
    }
    print(" | ".join(["figure", *(str(c["label"]) for c in configs)]))
    for name, get in rows.items():
        print(" | ".join([name, *(str(get(c)) for c in configs)]))
    fields = set(EvalReport.__dataclass_fields__)
    plot_reports(
        [
            EvalReport(**{k: v for k, v in c.items() if k in fields and k != "rows"})
            for c in configs
        ],
        str(png),
    )


if __name__ == "__main__":
    raise SystemExit(main())
