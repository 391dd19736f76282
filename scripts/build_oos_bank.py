"""Build supportbot/data/out_of_scope.jsonl, the bank of out-of-scope probe questions.

    python scripts/build_oos_bank.py            # writes supportbot/data/out_of_scope.jsonl
    python scripts/build_oos_bank.py --check    # exit 1 if the shipped file is out of date

The bank is used to calibrate, for each company's knowledge base, how relevant a retrieved
passage must be before the bot answers: for any one company almost every question in it must
be unanswerable, so it is deliberately spread over many products, services and topics.

Rows (one JSON object a line, ``{"text": ..., "kind": ...}``), in this order:

- ``other_product`` and ``chit_chat``: hand-written for this project, in
  ``scripts/oos_handwritten.txt`` (``kind<TAB>text`` lines, ``# topic: NAME`` sections).
  No topic may hold more than ``MAX_TOPIC_SHARE`` of the bank (checked here).
- ``public``: out-of-scope queries of public data sets in ``../shared/eval``, sampled with a
  fixed seed (at most ``PUBLIC_MAX`` rows):

  * CLINC150 (Larson et al., "An Evaluation Dataset for Intent Classification and
    Out-of-Scope Prediction", EMNLP-IJCNLP 2019; github.com/clinc/oos-eval, commit
    828f8093932c8fe6ca7936c3d2e52903b1c523de), licensed under the Creative Commons
    Attribution 3.0 Unported licence (CC BY 3.0): the ``oos`` rows of the ``oos_train`` and
    ``oos_val`` splits only (``oos_test`` is left for evaluation).
  * HINT3 v2 (Arora et al., "HINT3: Raising the bar for Intent Detection in the Wild", EMNLP
    2020 Insights workshop; github.com/hellohaptik/HINT3, commit
    99965c892ea9a6801a87083d3861b0b04c91a4e7), Open Database License 1.0 (ODbL) with
    contents under the Database Contents License 1.0 (DbCL): the ``NO_NODES_DETECTED``
    rows of its *train* split only. The v2 train split holds none (the authors kept
    out-of-scope messages in the test split only), so HINT3 currently adds no rows; should
    a future release add some, the shipped file becomes a derived database under ODbL
    share-alike (see supportbot/data/README.md).

Duplicates (case, spacing and trailing punctuation ignored) are dropped, the first kept.
The output is byte-for-byte deterministic: same inputs, same file.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDWRITTEN = ROOT / "scripts" / "oos_handwritten.txt"
OUT = ROOT / "supportbot" / "data" / "out_of_scope.jsonl"
SHARED = ROOT.parent / "shared" / "eval"
CLINC = SHARED / "clinc150" / "data_full.json"
HINT3_TRAIN = SHARED / "hint3" / "v2" / "train"

KINDS = ("other_product", "chit_chat", "public")
SEED = 20240611
PUBLIC_MAX = 300
MAX_TOPIC_SHARE = 0.03


def normalise(text: str) -> str:
    """Key for duplicate detection: case, spacing and trailing punctuation ignored."""
    return re.sub(r"\s+", " ", text).strip().casefold().rstrip(" .!?")


def read_handwritten(path: Path = HANDWRITTEN) -> list[tuple[str, str, str]]:
    """Return ``(kind, text, topic)`` for every row of the hand-written file."""
    rows: list[tuple[str, str, str]] = []
    topic = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("# topic:"):
                topic = line.removeprefix("# topic:").strip()
            continue
        kind, sep, text = line.partition("\t")
        if not sep or kind not in KINDS[:2] or not text.strip() or "\t" in text:
            raise SystemExit(f"{path.name}:{number}: expected 'kind<TAB>text', got {line!r}")
        if not topic:
            raise SystemExit(f"{path.name}:{number}: row before any '# topic:' line")
        rows.append((kind, text.strip(), topic))
    return rows


def clinc_oos() -> list[str]:
    """CLINC150 out-of-scope queries of the train and validation splits, in file order."""
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    return [
        text
        for split in ("oos_train", "oos_val")
        for text, intent in data[split]
        if intent == "oos"
    ]


def hint3_oos() -> list[str]:
    """HINT3 v2 out-of-scope (``NO_NODES_DETECTED``) messages of the train split."""
    texts: list[str] = []
    for path in sorted(HINT3_TRAIN.glob("*_train.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            texts += [r["sentence"] for r in csv.DictReader(f) if r["label"] == "NO_NODES_DETECTED"]
    return texts


def sample_public() -> list[str]:
    """Up to ``PUBLIC_MAX`` public out-of-scope queries, a fixed-seed sample in a stable order."""
    pool: list[str] = []
    seen: set[str] = set()
    for text in clinc_oos() + hint3_oos():
        text = re.sub(r"\s+", " ", text).strip()
        if text and normalise(text) not in seen:
            seen.add(normalise(text))
            pool.append(text)
    if len(pool) <= PUBLIC_MAX:
        return pool
    picked = sorted(random.Random(SEED).sample(range(len(pool)), PUBLIC_MAX))
    return [pool[i] for i in picked]


def build() -> tuple[list[dict[str, str]], Counter[str]]:
    """Return the bank's rows and the number of rows per hand-written topic."""
    handwritten = read_handwritten()
    candidates = [(kind, text, topic) for kind, text, topic in handwritten]
    candidates += [("public", text, "public") for text in sample_public()]
    rows: list[dict[str, str]] = []
    topics: Counter[str] = Counter()
    seen: set[str] = set()
    for kind, text, topic in candidates:
        key = normalise(text)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"text": text, "kind": kind})
        if kind != "public":
            topics[topic] += 1
    return rows, topics


def render(rows: list[dict[str, str]]) -> str:
    """The file's text: one compact JSON object a line, keys in a fixed order."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the shipped file")
    args = parser.parse_args()
    rows, topics = build()
    limit = MAX_TOPIC_SHARE * len(rows)
    crowded = {t: n for t, n in topics.items() if n > limit}
    if crowded:
        raise SystemExit(f"topics over {MAX_TOPIC_SHARE:.0%} of {len(rows)} rows: {crowded}")
    text = render(rows)
    kinds = Counter(r["kind"] for r in rows)
    summary = ", ".join(f"{k} {kinds[k]}" for k in KINDS)
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            sys.exit(f"{OUT.relative_to(ROOT)} is out of date: run scripts/build_oos_bank.py")
        print(f"{OUT.relative_to(ROOT)} up to date ({summary})")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(rows)} rows ({summary}), {len(topics)} topics")


if __name__ == "__main__":
    main()
