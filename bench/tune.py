"""Retrieval before and after `supportbot tune`, on both dev sets' kb_noq and kb/eval.

    python bench/tune.py                          # fetchmail, zsh and kb/eval
    python bench/tune.py --products fetchmail     # one
    python bench/tune.py --pseudo                 # also train on the local model's questions
    python bench/tune.py --data zsh=FOLDER        # start from a copy of a built index

For each knowledge base: ingest it with the default settings into a fresh data folder
(``kb_noq``: the FAQ question headings are cut to their numbers, so no evaluation
question is in the documents), run ``supportbot eval --retrieval-only`` on its question
file, run ``supportbot tune`` as its own process (its wall time and peak memory are what
the table reports), and evaluate again. Nothing is fitted on the questions: training
pairs come from the documents alone, and the bench checks that no training anchor is an
evaluation question (or nearly: 80% of its words). The tuning defaults were chosen on
fetchmail; zsh is held out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import KB_DOCS, QUESTIONS, ROOT, machine, save  # noqa: E402
from devsets import PRODUCTS, build_devsets  # noqa: E402

KEYS = ("recall@1", "recall@5", "recall@10", "mrr")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def leaked(anchors: list[str], questions: list[str]) -> int:
    """Evaluation questions that are (nearly) a training anchor: 80% of words shared."""
    sets = [_words(a) for a in anchors]
    count = 0
    for q in questions:
        qw = _words(q)
        if qw and any(len(qw & a) / len(qw | a) >= 0.8 for a in sets if a):
            count += 1
    return count


def retrieval(settings: object, questions: Path, label: str) -> dict[str, object]:
    from evaluate.questions import load_questions
    from evaluate.run import evaluate

    result = evaluate(load_questions(questions), settings, retrieval_only=True, label=label)  # type: ignore[arg-type]
    return {
        "retrieval": result.retrieval,
        "ci": result.retrieval_ci,
        "scope": {k: result.scope.get(k) for k in ("auroc", "out_of_scope_answered")},
    }


def run(
    name: str,
    docs: Path,
    questions: Path,
    config: Path | None,
    extra: list[str],
    prebuilt: Path | None = None,
) -> dict[str, object]:
    from evaluate.questions import load_questions
    from ingest import run_ingest
    from ingest.pairs import stored_passages
    from ingest.tune import TuneOptions, build_pairs
    from supportbot.config import load_settings
    from supportbot.factory import build_store

    data = Path(tempfile.mkdtemp(prefix=f"tune-{name.replace('/', '-')}-"))
    if prebuilt is not None:
        # A copy of an index built earlier from the same documents with the default
        # settings: the ingest below finds every file unchanged (zsh takes minutes).
        shutil.copytree(prebuilt, data, dirs_exist_ok=True)
    settings = load_settings(config, data_dir=data)
    report = run_ingest([docs], settings)
    before = retrieval(settings, questions, f"{name} base")
    # The anchors a run trains on from the documents (the command's seed and sampling).
    # Pseudo-questions are not generated here a second time: the model writes them from
    # sampled passages alone and never sees the evaluation questions.
    anchors = [
        p.anchor
        for p in build_pairs(settings, stored_passages(build_store(settings)), TuneOptions())
    ]
    env = dict(os.environ, SUPPORTBOT_DATA_DIR=str(data))
    if config is not None:
        env["SUPPORTBOT_CONFIG"] = str(config)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "from supportbot.cli import main; main()", "tune", "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"supportbot tune failed on {name}:\n{out.stderr}")
    tuned = json.loads(out.stdout)
    after = retrieval(settings, questions, f"{name} tuned")
    asked = [q.question for q in load_questions(questions) if q.answerable]
    return {
        "product": name,
        "passages": report.chunks_total,
        "before": before,
        "after": after,
        "tune": tuned,
        "tune_wall_seconds": round(wall, 1),
        "leaked_questions": leaked(anchors, asked),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", nargs="+", default=[*PRODUCTS, "kb/eval"])
    parser.add_argument("--pseudo", action="store_true", help="pass --pseudo to tune")
    parser.add_argument(
        "--data", action="append", default=[], help="PRODUCT=DATA_FOLDER: start from a copy"
    )
    parser.add_argument("tune_args", nargs="*", help="more `supportbot tune` options")
    args = parser.parse_args(argv)
    prebuilt = {k: Path(v) for k, v in (item.split("=", 1) for item in args.data)}
    extra = (["--pseudo"] if args.pseudo else []) + args.tune_args
    root = build_devsets()
    rows = []
    for product in args.products:
        if product == "kb/eval":
            rows.append(run(product, KB_DOCS, QUESTIONS, ROOT / "kb" / "supportbot.toml", extra))
        else:
            rows.append(
                run(
                    product,
                    root / product / "kb_noq",
                    root / product / "questions_noq.jsonl",
                    None,
                    extra,
                    prebuilt.get(product),
                )
            )
        save("tune", rows)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end")
    for row in rows:
        t = row["tune"]
        b, a = row["before"], row["after"]  # type: ignore[index]
        print(f"\n{row['product']} ({row['passages']} passages)")
        for key in KEYS:
            print(
                f"  {key:10s} {b['retrieval'][key]:.3f} -> {a['retrieval'][key]:.3f}"  # type: ignore[index]
                f"   {b['ci'][key]} -> {a['ci'][key]}"  # type: ignore[index]
            )
        for key in ("auroc", "out_of_scope_answered"):
            print(f"  {key:10s} {b['scope'][key]} -> {a['scope'][key]}")  # type: ignore[index]
        print(
            f"  tuning: {row['tune_wall_seconds']} s wall, peak {t['peak_memory_mb']} MB, "  # type: ignore[index]
            f"pairs {t['pairs']}, training {t['training']}, phases {t['seconds']}"  # type: ignore[index]
        )
        print(f"  evaluation questions among training anchors: {row['leaked_questions']}")
    print(f"\nsaved {save('tune', rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
