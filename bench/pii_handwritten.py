"""Recall of PII redaction on hand-written customer messages, per type, with counts.

    python bench/pii_handwritten.py [--set tests/data/pii_handwritten.jsonl] [--json out.json]

The set (``tests/data/pii_handwritten.jsonl``) is written by hand, not generated: support
messages as customers type them, in several languages and styles (lower case, run-on,
e-mail sign-offs, "from:" headers, obfuscated e-mail addresses, irregular groupings),
with personal names of many nationalities. It shares no template or value list with
``bench/pii_recall.py`` (Faker values in support templates). One JSON object a line:

* ``text``: the message;
* ``pii``: ``[{"type", "value"}]``, each value a substring of the text. Types are the
  kinds of ``supportbot.safety.redact`` (EMAIL, PHONE, CARD, IBAN, SSN, NATIONAL_ID, IP,
  ADDRESS, NAME);
* ``keep``: substrings that must stay (error codes, versions, order and ticket numbers,
  serials, product names, words that are also first names: "Mark the satellite...");
* ``allow``: values passed as ``allow`` (an agent's name from the account);
* ``note`` (optional): why a value is labelled as it is.

``tests/data/pii_handwritten_holdout.jsonl`` (``--set``) is a second set in the same
form, written after the recognisers were settled.

Measured:

* **recall**: a value counts as caught only if every character of it is covered by a
  detection of ``find_pii`` (any kind: it is redacted either way); ``as kind`` also
  requires its own kind.
* **false positives**: detections that overlap no labelled value, by kind, and ``keep``
  strings touched by any detection.
* **knowledge base**: kb/docs sentences with any detection (``bench/pii_recall.py``'s
  measure).

Exits 1 when a claimed type (every type but NAME) is under ``--min-recall`` (0.97),
NAME is under ``--min-name-recall`` (0.90), or a ``keep`` string is touched.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SET = ROOT / "tests" / "data" / "pii_handwritten.jsonl"
HOLDOUT = ROOT / "tests" / "data" / "pii_handwritten_holdout.jsonl"
TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "ADDRESS", "NAME")


@dataclass(frozen=True)
class Message:
    """One hand-written message and what it holds."""

    id: str
    text: str
    pii: tuple[tuple[str, str, int, int], ...]
    """(type, value, start, end) per labelled value."""
    keep: tuple[tuple[str, int, int], ...]
    """(string, start, end) per occurrence of each string to keep."""
    allow: tuple[str, ...] = ()


def load(path: Path = SET) -> list[Message]:
    """The set, each labelled value located in its text (values occur once)."""
    out: list[Message] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        text = row["text"]

        def where(value: str, line_no: int = n, text: str = text) -> tuple[int, int]:
            start = text.find(value)
            if start < 0 or text.count(value) != 1:
                raise ValueError(f"{path}:{line_no}: {value!r} must occur once in the text")
            return start, start + len(value)

        pii = tuple((p["type"], p["value"], *where(p["value"])) for p in row["pii"])
        unknown = {p[0] for p in pii} - set(TYPES)
        if unknown:
            raise ValueError(f"{path}:{n}: unknown types {unknown}")
        keep = tuple(
            (k, m.start(), m.end())
            for k in row.get("keep", [])
            for m in re.finditer(re.escape(k), text)
        )
        if len({k for k, _, _ in keep}) != len(set(row.get("keep", []))):
            raise ValueError(f"{path}:{n}: a keep string is not in the text")
        out.append(Message(row["id"], text, pii, keep, tuple(row.get("allow", []))))
    return out


@dataclass
class Row:
    n: int = 0
    caught: int = 0
    as_kind: int = 0
    missed: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.n if self.n else 0.0


@dataclass
class Result:
    rows: dict[str, Row]
    false_positives: list[tuple[str, str, str]]
    """(message id, kind, detected text) for detections overlapping no labelled value."""
    keep_touched: list[tuple[str, str]]
    """(message id, keep string) for kept strings a detection overlapped."""


Detector = Callable[[str, tuple[str, ...]], list]  # type: ignore[type-arg]


def _covered(spans: list, start: int, end: int, kind: str | None = None) -> bool:  # type: ignore[type-arg]
    covered = bytearray(end - start)
    for s in spans:
        if kind is not None and s.kind != kind:
            continue
        for i in range(max(s.start, start), min(s.end, end)):
            covered[i - start] = 1
    return all(covered)


def measure(messages: list[Message], detect: Detector | None = None) -> Result:
    """Recall per type, false positives and kept strings touched."""
    if detect is None:
        from supportbot.safety.redact import find_pii

        def detect(text: str, allow: tuple[str, ...]) -> list:  # type: ignore[type-arg]
            return find_pii(text, allow)

    rows = {t: Row() for t in TYPES}
    fps: list[tuple[str, str, str]] = []
    touched: list[tuple[str, str]] = []
    for msg in messages:
        spans = detect(msg.text, msg.allow)
        for kind, value, start, end in msg.pii:
            row = rows[kind]
            row.n += 1
            if _covered(spans, start, end):
                row.caught += 1
            else:
                row.missed.append(f"{msg.id}: {value!r}")
            row.as_kind += _covered(spans, start, end, kind)
        for s in spans:
            if not any(s.start < end and start < s.end for _, _, start, end in msg.pii):
                fps.append((msg.id, s.kind, msg.text[s.start : s.end]))
        for value, start, end in msg.keep:
            if any(s.start < end and start < s.end for s in spans):
                touched.append((msg.id, value))
    return Result(rows, fps, touched)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--min-recall", type=float, default=0.97)
    ap.add_argument("--min-name-recall", type=float, default=0.90)
    ap.add_argument("--no-kb", action="store_true", help="skip the knowledge-base measure")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    from bench.pii_recall import kb_sentences, measure_false_positives

    messages = load(args.set)
    result = measure(messages)
    kb = None if args.no_kb else measure_false_positives(kb_sentences())

    print(f"{len(messages)} hand-written messages, {sum(r.n for r in result.rows.values())} values")
    print(f"{'type':<12} {'values':>6} {'caught':>7} {'recall':>7} {'as kind':>8}")
    for kind, row in result.rows.items():
        print(
            f"{kind:<12} {row.n:>6} {row.caught:>7} {row.recall:>7.3f} "
            f"{row.as_kind / max(row.n, 1):>8.3f}"
        )
    fp_kinds: dict[str, int] = {}
    for _, kind, _ in result.false_positives:
        fp_kinds[kind] = fp_kinds.get(kind, 0) + 1
    print(
        f"\ndetections outside the labelled values: {len(result.false_positives)} "
        f"{fp_kinds or ''}; kept strings touched: {len(result.keep_touched)}"
    )
    if kb is not None:
        print(
            f"knowledge-base sentences with a detection: {kb['flagged']}/{kb['sentences']} "
            f"({kb['rate']:.2%})"
        )
    for kind, row in result.rows.items():
        for miss in row.missed:
            print(f"  missed {kind}: {miss}")
    for fp in result.false_positives:
        print(f"  extra detection: {fp}")
    for kept in result.keep_touched:
        print(f"  kept string touched: {kept}")
    if kb is not None:
        for example in kb["examples"]:  # type: ignore[attr-defined]
            print(f"  kb detection: {example}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "messages": len(messages),
                    "recall": {
                        k: {
                            "n": r.n,
                            "caught": r.caught,
                            "recall": r.recall,
                            "as_kind": r.as_kind,
                            "missed": r.missed,
                        }
                        for k, r in result.rows.items()
                    },
                    "false_positives": result.false_positives,
                    "keep_touched": result.keep_touched,
                    "kb_false_positives": kb,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    low = [
        k
        for k, r in result.rows.items()
        if r.n and r.recall < (args.min_name_recall if k == "NAME" else args.min_recall)
    ]
    if low or result.keep_touched:
        touched = len(result.keep_touched)
        print(f"under target: {', '.join(low) or '-'}; kept strings touched: {touched}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
