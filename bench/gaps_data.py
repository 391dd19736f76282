"""Build tests/data/gaps_replay.json, the knowledge-gap replay's questions.

    python bench/gaps_data.py            # rewrite it (needs ../shared/eval)
    python bench/gaps_data.py --check    # exit 1 when the file is not what this writes

Twelve gaps (questions the sample knowledge base does not answer), each a list of
wordings of one question in replay order, plus unrelated questions:

* six gaps from CLINC150's *test* split: intents drawn with a fixed seed from its banking,
  credit-card, travel and work domains (a support desk's out-of-scope traffic); the
  examples of one intent count as wordings of one question, and the agent's answer is
  written here;
* six gaps written for this project about the sample product (tests/data/gaps_replay_own.yaml);
* unrelated questions: CLINC150 ``oos_test`` queries and BANKING77 *test* queries (fixed
  seed), kb/eval questions the documents answer, and the own file's unrelated ones.

The thresholds the replay measures (grouping distance, answer match) are fitted on other
data: BANKING77's and CLINC150's *train* splits, on intents none of these comes from
(``python bench/gaps.py --fit``). Attribution: CLINC150 (Larson et al., EMNLP 2019, CC BY
3.0) and BANKING77 (Casanueva et al., 2020, CC BY 4.0); see ../shared/eval/*/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "eval"
OWN = ROOT / "tests" / "data" / "gaps_replay_own.yaml"
OUT = ROOT / "tests" / "data" / "gaps_replay.json"
QUESTIONS = ROOT / "kb" / "eval" / "questions.jsonl"

DOMAINS = ("banking", "credit_cards", "travel", "work")
# How many customers ask each gap before any answer exists, in the order the gaps are
# interleaved (public, own, public, own, ...): the six most asked get an approved answer.
ASKED = (8, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2)
APPROVED = 6
PARAPHRASES_APPROVED = 5
PARAPHRASES_OTHER = 3
SEED = 16

# The agent's reply to each public intent that can be drawn: Brightwave holds no bank
# cards, flights or payslips, so the honest answer says where to go instead.
PUBLIC_ANSWERS = {
    "banking": (
        "Brightwave doesn't hold bank accounts or cards, so we can't see or change this. "
        "Please contact your bank through its app or the number on the back of your card."
    ),
    "credit_cards": (
        "Brightwave doesn't issue credit cards, so we can't see or change this. Please call "
        "the number on the back of your card or use your card issuer's app."
    ),
    "travel": (
        "Brightwave only supports its Nexa routers and the Brightwave Home app, so we can't "
        "help with travel. Your airline, travel agent or the destination's official site can."
    ),
    "work": (
        "Brightwave's support team can't see employers' HR or payroll systems. Please ask "
        "your HR department or check your employer's HR portal."
    ),
}


def _clinc() -> tuple[list[dict[str, object]], list[str]]:
    data = json.loads((SHARED / "clinc150" / "data_full.json").read_text())
    domains = json.loads((SHARED / "clinc150" / "domains.json").read_text())
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["test"]:
        by_intent.setdefault(intent, []).append(" ".join(text.split()))
    rng = random.Random(SEED)
    pool = sorted((d, i) for d in DOMAINS for i in domains[d])
    picked = rng.sample(pool, 6)
    gaps = [
        {
            "id": f"clinc150-{intent}",
            "from": f"CLINC150 test, intent {intent} ({domain})",
            "answer": PUBLIC_ANSWERS[domain],
            "wordings": by_intent[intent],
        }
        for domain, intent in picked
    ]
    oos = [" ".join(t.split()) for t, _ in data["oos_test"]]
    return gaps, rng.sample(oos, 15)


def _banking77(exclude: set[str]) -> list[str]:
    with (SHARED / "banking77" / "test.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["category"] not in exclude]
    rng = random.Random(SEED)
    return [" ".join(r["text"].split()) for r in rng.sample(rows, 15)]


def _in_scope() -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    answered = [r["question"] for r in rows if r.get("decision") == "answer" and not r["history"]]
    return random.Random(SEED).sample(answered, 10)


def build() -> dict[str, object]:
    """The replay's questions, deterministically."""
    own = yaml.safe_load(OWN.read_text())
    public, oos = _clinc()
    mine = [
        {"id": g["id"], "from": "written for this project", **g} for g in own["gaps"]
    ]  # fmt: skip
    order = [g for pair in zip(public, mine, strict=True) for g in pair]
    gaps = []
    for rank, (gap, asked) in enumerate(zip(order, ASKED, strict=True)):
        more = PARAPHRASES_APPROVED if rank < APPROVED else PARAPHRASES_OTHER
        wordings = list(gap["wordings"])
        if len(wordings) < asked + more:
            raise SystemExit(f"{gap['id']}: {len(wordings)} wordings, {asked + more} needed")
        gaps.append(
            {
                "id": gap["id"],
                "from": gap["from"],
                "approve": rank < APPROVED,
                "answer": " ".join(str(gap["answer"]).split()),
                "asked": wordings[:asked],
                "paraphrases": wordings[asked : asked + more],
            }
        )
    unrelated = (
        [{"text": t, "from": "CLINC150 oos_test"} for t in oos]
        + [{"text": t, "from": "BANKING77 test"} for t in _banking77(set())]
        + [{"text": t, "from": "kb/eval (answered by the documents)"} for t in _in_scope()]
        + [{"text": t, "from": "written for this project"} for t in own["unrelated"]]
    )
    return {
        "about": (
            "Knowledge-gap replay (tests/test_gaps_replay.py, bench/gaps.py), built by "
            "bench/gaps_data.py. Public rows: CLINC150 (Larson et al., EMNLP 2019, CC BY 3.0, "
            "github.com/clinc/oos-eval) and BANKING77 (Casanueva et al., 2020, CC BY 4.0, "
            "github.com/PolyAI-LDN/task-specific-datasets), unchanged but for whitespace."
        ),
        "gaps": gaps,
        "unrelated": unrelated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Compare instead of writing.")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print("up to date" if same else f"{OUT} differs from what bench/gaps_data.py writes")
        sys.exit(0 if same else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
