"""Answering models compared on a dev set: `supportbot eval --model A --model B ...`.

    python bench/model_compare.py                                   # default vs the 1.5B pack
    python bench/model_compare.py --models default qwen2.5-coder-0.5b qwen2.5-coder-1.5b
    python bench/model_compare.py --product zsh --every 1

Takes every ``--every``-th answerable question of the product's ``questions_noq.jsonl``
(the FAQ questions verbatim, with ``answer_text``), ingests the product's ``kb_noq`` into
a fresh data folder with the default settings, and runs ``supportbot eval`` on them once
per model (the same index; one model loaded at a time). Prints the eval table and writes
the JSON report and its plot to bench/out/model_compare-<product>.{json,png}. The packs
must be installed first (``supportbot models pull NAME``); set SUPPORTBOT_LLM__MODELS_DIR
if they live outside the new data folder.

Nothing here is tuned on the questions: the settings are the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = parser.parse_args(argv)
    if not (CACHE / args.product / "kb_noq").is_dir():
        sys.exit(f"{CACHE / args.product} is missing: run python bench/devsets.py first")
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"models-{args.product}-"))
    questions = work / "questions.jsonl"
    n = subset(args.product, args.every, questions)
    out = OUT / f"model_compare-{args.product}.json"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip() or os.environ.get("SUPPORTBOT_COMMIT", "(not a git checkout)")
    print(f"{machine()}; commit {commit}; {args.product}: {n} answerable questions (kb_noq)")
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(work / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'supportbot'; from supportbot.cli import main; main()",
        "eval",
        str(questions),
        "--kb",
        str(CACHE / args.product / "kb_noq"),
        *[a for m in args.models for a in ("--model", m)],
        "--json",
        str(out),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
