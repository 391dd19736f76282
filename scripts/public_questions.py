"""Turn a public escalation set from ../shared/eval into a kb/eval-style question file.

    python scripts/public_questions.py clinc150 --per-category 200 -o /tmp/clinc150.jsonl
    supportbot eval /tmp/clinc150.jsonl --retrieval-only

Every row becomes a question the bot should hand over: request_human -> HUMAN_REQUESTED,
complaint -> FRUSTRATION, out_of_scope and other_intent (another product's intents) ->
NO_RELEVANT_CONTEXT (our knowledge base is about Brightwave routers). contact_request rows
carry no expected decision and are left out. Only test rows are used (the second half of
a source without a test split: every other row), sampled with a fixed seed.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval"
REASON = {
    "request_human": "HUMAN_REQUESTED",
    "complaint": "FRUSTRATION",
    "out_of_scope": "NO_RELEVANT_CONTEXT",
    "other_intent": "NO_RELEVANT_CONTEXT",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", help="folder under ../shared/eval, e.g. clinc150, hint3")
    parser.add_argument("--per-category", type=int, default=200)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (SHARED / args.source / "escalation.jsonl").open()]
    test = [r for r in rows if "test" in r["split"]]
    if not test:
        test = rows[1::2]  # every other row: the even ones are left for tuning
    by_cat: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in test:
        if r["category"] in REASON:
            by_cat[str(r["category"])].append(r)
    rng = random.Random(13)
    with args.out.open("w") as fh:
        for cat, items in sorted(by_cat.items()):
            for r in rng.sample(items, min(args.per_category, len(items))):
                fh.write(
                    json.dumps(
                        {
                            "id": r["id"],
                            "question": r["text"],
                            "decision": "escalate",
                            "reasons": [REASON[cat]],
                        }
                    )
                    + "\n"
                )
    print(
        f"wrote {args.out}: "
        + ", ".join(f"{c} {min(args.per_category, len(i))}" for c, i in sorted(by_cat.items()))
    )


if __name__ == "__main__":
    main()
