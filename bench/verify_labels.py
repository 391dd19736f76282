"""The answer check against hand labels: precision and recall of `AnswerVerifier`.

    python bench/verify_labels.py

bench/labels/model-sentences-{fetchmail,zsh}.jsonl hold every sentence the default model
wrote for the first 55 answerable FAQ questions of each dev set (bench/answer_devsets.py
at commit 64e7b78), each with the span the model was given, the question, and a label
read by hand: *supported* when one sentence of the span, or two adjacent ones, says the
same with the same polarity. This re-runs today's check (the real MiniLM embedder, the
default thresholds) on each sentence against its span and prints, per product, how many
the check removes, and its precision (removed that were unsupported) and recall
(unsupported that were removed). The labels were written once; the check can change
without relabelling, which is what this bench is for. Sentences whose span was not
recorded (the model's text already held it) are skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supportbot.config import Settings  # noqa: E402
from supportbot.factory import build_embedder  # noqa: E402
from supportbot.types import Chunk, Hit  # noqa: E402
from supportbot.verify import AnswerVerifier  # noqa: E402

LABELS = Path(__file__).resolve().parent / "labels"


def score(rows: list[dict[str, str]], verifier: AnswerVerifier) -> dict[str, object]:
    """Check every labelled sentence against its span; precision and recall of removal."""
    tp = fp = fn = tn = 0
    wrong: list[str] = []
    for r in rows:
        hit = Hit(Chunk(id="span", text=r["span"], source="faq", title="FAQ"), 1.0, 1)
        removed = verifier.verify(r["sentence"], [hit], question=r["question"]).kept == 0
        bad = r["label"] == "unsupported"
        tp += removed and bad
        fp += removed and not bad
        fn += bad and not removed
        tn += not bad and not removed
        if removed != bad:
            wrong.append(f"{'removed' if removed else 'kept'} ({r['label']}): {r['sentence']}")
    return {
        "sentences": len(rows),
        "unsupported": tp + fn,
        "removed": tp + fp,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "shipped_unsupported": f"{fn} of {fn + tn}",
        "wrong": wrong,
    }


def main() -> int:
    settings = Settings()
    embedder = build_embedder(settings)
    verifier = AnswerVerifier(embedder, settings.verify.min_overlap, settings.verify.min_similarity)
    for path in sorted(LABELS.glob("model-sentences-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        result = score([r for r in rows if r.get("span")], verifier)
        print(path.stem.removeprefix("model-sentences-"), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
