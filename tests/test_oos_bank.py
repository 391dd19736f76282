"""The shipped out-of-scope probe bank: supportbot/data/out_of_scope.jsonl."""

from __future__ import annotations

import importlib.resources
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "supportbot" / "data" / "out_of_scope.jsonl"
HANDWRITTEN = ROOT / "scripts" / "oos_handwritten.txt"
MIN_ROWS = {"other_product": 400, "chit_chat": 80}
PUBLIC_MAX = 300


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold().rstrip(" .!?")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with BANK.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_rows_are_text_and_kind(rows: list[dict[str, str]]) -> None:
    for row in rows:
        assert set(row) == {"text", "kind"}, row
        assert isinstance(row["text"], str) and row["text"].strip(), row
        assert row["text"] == row["text"].strip(), row


def test_kinds_and_sizes(rows: list[dict[str, str]]) -> None:
    kinds = Counter(row["kind"] for row in rows)
    assert set(kinds) == {"other_product", "chit_chat", "public"}
    for kind, least in MIN_ROWS.items():
        assert kinds[kind] >= least, (kind, kinds[kind])
    assert 0 < kinds["public"] <= PUBLIC_MAX


def test_no_duplicates(rows: list[dict[str, str]]) -> None:
    keys = Counter(normalise(row["text"]) for row in rows)
    assert [k for k, n in keys.items() if n > 1] == []


def test_no_topic_dominates() -> None:
    """At least 60 hand-written topics; none holds more than 3% of the bank."""
    topics: Counter[str] = Counter()
    topic = ""
    for line in HANDWRITTEN.read_text(encoding="utf-8").splitlines():
        if line.startswith("# topic:"):
            topic = line.removeprefix("# topic:").strip()
        elif line and not line.startswith("#"):
            topics[topic] += 1
    total = sum(1 for _ in BANK.open(encoding="utf-8"))
    product_topics = [t for t in topics if not t.startswith("chat ")]
    assert len(product_topics) >= 60
    assert max(topics.values()) <= 0.03 * total, topics.most_common(3)


def test_file_is_up_to_date() -> None:
    """The shipped file is what scripts/build_oos_bank.py makes (when the sources are here)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_oos_bank
    finally:
        sys.path.pop(0)
    if not build_oos_bank.CLINC.exists():
        pytest.skip("public sources (../shared/eval) not available")
    rows, _ = build_oos_bank.build()
    assert BANK.read_text(encoding="utf-8") == build_oos_bank.render(rows)


def test_readable_as_package_resource(rows: list[dict[str, str]]) -> None:
    resource = importlib.resources.files("supportbot") / "data" / "out_of_scope.jsonl"
    text = resource.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(rows)
