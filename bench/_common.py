"""Helpers shared by the bench scripts (not part of the product)."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KB_DOCS = ROOT / "kb" / "docs"
QUESTIONS = ROOT / "kb" / "eval" / "questions.jsonl"
OUT = ROOT / "bench" / "out"


def machine() -> str:
    """One line naming the machine, printed with every figure."""
    import os

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def scaled_corpus(factor: int) -> Path:
    """kb/docs copied ``factor`` times into a temp folder (distinct file names)."""
    dest = Path(tempfile.mkdtemp(prefix=f"kb{factor}x-"))
    for i in range(factor):
        copy = dest / f"copy{i:02d}"
        shutil.copytree(KB_DOCS, copy)
    return dest


def save(name: str, data: object) -> Path:
    """Write a JSON result under bench/out/."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def print_rows(header: str, rows: list[dict[str, object]]) -> None:
    """Print a header line and the rows as a pipe-separated table."""
    print(header)
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
