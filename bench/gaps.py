"""Knowledge gaps, measured: grouping, answering from approved agent answers, PII.

    python bench/gaps.py --fit     # fit gaps.group_distance and gaps.answer_match (public data)
    python bench/gaps.py           # the replay on the sample knowledge base (kb/docs)
    python bench/gaps.py --review  # the same; the approving agent unticks other questions' wordings

**Fitting** (``--fit``) uses data the replay never sees: the *train* splits of BANKING77
(one bank's customer questions, 77 fine-grained intents: the hard case, where unrelated
questions are close) and CLINC150 (150 intents over ten domains), on the half of each
set's intents whose name hashes even (``sha256(name)`` mod 2), minus any CLINC150 intent the
replay draws from. The examples of one intent stand for wordings of one question.

* ``group_distance``: batches of 10 intents x 6 questions are grouped at each distance;
  the distance with the best adjusted Rand index, averaged over both sets, is chosen.
* ``answer_match``: batches where 10 intents get an "entry" (the centre of 5 wordings, and
  again of 9: the agent's question and ``gaps.also_asked`` customers' wordings) and 10
  others do not; the lowest cosine at which at most 2% of the other intents' questions
  would reach an entry, on *each* set and entry size (so the hardest case decides).

**The replay** (tests/data/gaps_replay.json, built by bench/gaps_data.py): kb/docs is
ingested with the real embedder and the sample's profile; 55 questions of 12 gaps are
asked (each in a new conversation); an answered one gets a thumbs-down, and an agent
replies to the first hand-off of each gap. The gap report groups them; the six most asked
gaps get an approved agent answer (its question is the gap's label, the customers'
wordings go with it, the answer is the agent's reply, redacted), and one more gets a draft
that is never approved. Then the paraphrases of the approved gaps, the paraphrases of the
others and unrelated questions are asked. Reported: grouping (share of a question's
wordings in its main gap, and gap purity), paraphrases answered from their gap's entry,
unrelated questions answered from any new entry, the draft served (must be 0) and PII
left in the managed FAQ file (must be 0). The decision to answer from an entry does not
depend on the model (a cosine match); a scripted generator writes nothing, so a question
that reaches generation is answered by the bot's own fallback, the selected span of the
best passages (a real model would write from that span).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "eval"
REPLAY = ROOT / "tests" / "data" / "gaps_replay.json"
KB_DOCS = ROOT / "kb" / "docs"
KB_PROFILE = ROOT / "kb" / "supportbot.toml"
AGENT = "maria"
APPROVE_TOP = 6
ENTRY_WORDINGS = (5, 9)
"""Entries are fitted with 5 wordings and with 9 (the agent's question and
``gaps.also_asked`` customers' wordings): the threshold must hold for both."""


# -- the replay ---------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """Every figure of one replay (see the module docstring)."""

    asked: int = 0
    handed_over: int = 0
    rated_down: int = 0
    collected: int = 0
    gaps: int = 0
    grouping: float = 0.0
    purity: float = 0.0
    approved: list[str] = field(default_factory=list)
    paraphrases: int = 0
    answered_from_entry: int = 0
    answered_as_is: int = 0
    wrong_entry: int = 0
    unrelated: int = 0
    unrelated_from_entry: int = 0
    draft_asked: int = 0
    draft_served: int = 0
    pii_left: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    not_handed: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    false_answers: list[str] = field(default_factory=list)

    @property
    def paraphrase_rate(self) -> float:
        """Paraphrases of approved gaps answered from their gap's entry."""
        return self.answered_from_entry / self.paraphrases if self.paraphrases else 0.0

    @property
    def unrelated_rate(self) -> float:
        """Unrelated questions answered from a new entry."""
        return self.unrelated_from_entry / self.unrelated if self.unrelated else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data, rates included."""
        data = dict(self.__dict__)
        data.update(paraphrase_rate=self.paraphrase_rate, unrelated_rate=self.unrelated_rate)
        return data


def load_replay(path: Path = REPLAY) -> dict[str, Any]:
    """The replay's questions (tests/data/gaps_replay.json)."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def kb_settings(data_dir: Path, **overrides: Any) -> Any:
    """The sample's settings (kb/supportbot.toml) writing to ``data_dir``."""
    from supportbot.config import load_settings

    # Files are parsed in this process: a parse worker started per publish costs seconds.
    return load_settings(
        KB_PROFILE,
        data_dir=data_dir,
        conversation={"backend": "sqlite"},
        ingest={"file_timeout": 0},
        **overrides,
    )


def _entry_sources(services: Any) -> dict[str, str]:
    """chunk id -> question of every passage of the managed FAQ in the index."""
    path = services.settings.agent_answers_path.resolve()
    sources = [
        s for s, r in services.store.files().items() if r.path and Path(r.path).resolve() == path
    ]
    out: dict[str, str] = {}
    for source in sources:
        got = services.store.chunks.get(
            where={"$and": [{"source": source}, {"record": "passage"}]}, include=["metadatas"]
        )
        for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            out[cid] = str((meta or {}).get("question", ""))
    return out


def _from_entries(reply: Any, entries: dict[str, str]) -> list[str]:
    """Questions of the new entries a reply answered from (empty when it handed over)."""
    from supportbot.types import BOT_ANSWER_MODES

    if reply.mode not in BOT_ANSWER_MODES:
        return []
    return [entries[c.chunk_id] for c in reply.citations if c.chunk_id in entries]


def replay(
    services: Any,
    data: dict[str, Any],
    publish: Any,
    review: bool = False,
    unrelated_every: int = 1,
) -> ReplayResult:
    """Run the replay on ``services`` (a kb/docs index); ``publish`` is ingest.answers.publish.

    ``review``: the approving agent unticks the wordings the report put in a gap that ask
    something else (the console's list of wordings); by default all are kept.
    ``unrelated_every``: ask every n-th unrelated question only (the test's shorter run).
    """
    from supportbot.safety.redact import find_pii

    started = time.perf_counter()
    bot, desk, answers, finder = services.bot, services.desk, services.answers, services.gaps
    result = ReplayResult()
    truth: dict[str, str] = {}  # question text -> gap id
    n = 0

    def ask(text: str) -> Any:
        nonlocal n
        n += 1
        return bot.ask(text, f"replay-{n}")

    # 1. Customers ask; the bot hands over or answers (and is rated down).
    for gap in data["gaps"]:
        replied = False
        for text in gap["asked"]:
            truth[text] = gap["id"]
            reply = ask(text)
            result.asked += 1
            if reply.mode == "handoff":
                result.handed_over += 1
                if not replied:  # an agent answers the first hand-off of each gap
                    desk.claim(reply.handoff_id, AGENT)
                    desk.reply(reply.handoff_id, AGENT, gap["answer"])
                    desk.resolve(reply.handoff_id, AGENT)
                    replied = True
            else:
                bot.feedback(reply.conversation_id, helpful=False)
                result.rated_down += 1
                result.not_handed.append(f"{gap['id']}: {text} -> {reply.mode}")

    # 2. The gap report: grouping against the truth.
    result.phases["asked"] = round(time.perf_counter() - started, 1)
    report = finder.report()
    result.phases["report"] = round(time.perf_counter() - started, 1)
    result.collected, result.gaps = report.questions, len(report.gaps)
    in_gap: dict[str, Counter[str]] = {}
    for g in report.gaps:
        for q in g.questions:
            in_gap.setdefault(truth.get(q.text, "?"), Counter())[g.id] += 1
    wordings = sum(sum(c.values()) for c in in_gap.values())
    result.grouping = sum(max(c.values()) for c in in_gap.values()) / max(1, wordings)
    majority = [Counter(truth.get(q.text, "?") for q in g.questions) for g in report.gaps]
    result.purity = sum(max(m.values()) for m in majority) / max(1, report.questions)
    for g, m in zip(report.gaps, majority, strict=True):
        parts = ", ".join(f"{k} {v}" for k, v in m.most_common())
        result.report.append(f"{g.customers} customers: {g.label} [{parts}]")

    # 3. Approve answers for the most-asked gaps; one more gets a draft, never approved.
    by_id = {g["id"]: g for g in data["gaps"]}
    approved_truth: dict[str, str] = {}  # entry question -> gap id
    draft_gap = None
    for rank, g in enumerate(report.gaps):
        main = Counter(truth.get(q.text, "?") for q in g.questions).most_common(1)[0][0]
        if main not in by_id:
            continue
        replies = g.agent_replies()
        wordings = list(g.wordings[: services.settings.gaps.also_asked + 1])
        if review:
            wordings = [w for w in wordings if truth.get(w, main) == main]
        reply_text = replies[0].agent_reply if replies else by_id[main]["answer"]
        handoff = replies[0].handoff_id if replies else ""
        if rank < APPROVE_TOP:
            entry = answers.save(
                g.label,
                reply_text,
                actor=AGENT,
                also_asked=wordings,
                written_by=replies[0].agent if replies else AGENT,
                handoff=handoff or "",
                gap=g.label,
            )
            approved_truth[entry.question] = main
            result.approved.append(main)
        elif draft_gap is None and main not in result.approved:
            answers.save(g.label, reply_text, actor=AGENT, approve=False, also_asked=wordings)
            draft_gap = main
    publish(services.settings, embedder=services.embedder, store=services.store)
    entries = _entry_sources(services)
    result.phases["published"] = round(time.perf_counter() - started, 1)

    # 4. Paraphrases of approved gaps are answered from their entry...
    approved = set(approved_truth.values())
    for gap in data["gaps"]:
        if gap["id"] not in approved:
            continue
        for text in gap["paraphrases"]:
            reply = ask(text)
            result.paraphrases += 1
            got = [approved_truth.get(q) for q in _from_entries(reply, entries)]
            if gap["id"] in got:
                result.answered_from_entry += 1
                result.answered_as_is += reply.mode == "faq"
            else:
                ranks = [h.rank for h in reply.trace.hits if h.chunk.id in entries]
                where = f", an entry ranked {ranks[0]}" if ranks else ""
                result.misses.append(f"{gap['id']}: {text} -> {reply.mode}{where}")
                result.wrong_entry += bool(got)

    # 5. ... and nothing else is: unrelated questions, other gaps, the draft's own question.
    others = [
        (t, gap["id"])
        for gap in data["gaps"]
        if gap["id"] not in approved
        for t in gap["paraphrases"]
    ]
    if draft_gap is not None:
        others += [(t, draft_gap) for t in by_id[draft_gap]["asked"]]
    others += [(u["text"], "unrelated") for u in data["unrelated"][::unrelated_every]]
    for text, source in others:
        reply = ask(text)
        result.unrelated += 1
        if source == draft_gap:
            result.draft_asked += 1
        got = _from_entries(reply, entries)
        if got:
            result.unrelated_from_entry += 1
            result.draft_served += source == draft_gap and any(
                approved_truth.get(q) is None for q in got
            )
            result.false_answers.append(f"{source}: {text} -> {got[0]}")

    result.phases["replayed"] = round(time.perf_counter() - started, 1)
    # 6. No personal data left in the managed FAQ file.
    text = services.settings.agent_answers_path.read_text()
    result.pii_left = len(find_pii(text, services.settings.public_values))
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def build_index(data_dir: Path, embedder: Any) -> Any:
    """kb/docs ingested into ``data_dir`` with the sample's profile; returns the settings."""
    from ingest import run_ingest

    settings = kb_settings(data_dir)
    report = run_ingest([KB_DOCS], settings, embedder=embedder)
    if not report.ok:
        raise SystemExit(f"ingesting kb/docs failed: {[f.reason for f in report.failed]}")
    return settings


def run_replay(review: bool = False) -> ReplayResult:
    """The replay in a temporary data folder, with the real embedder."""
    from ingest.answers import publish
    from supportbot.embed import SentenceTransformerEmbedder
    from supportbot.factory import build
    from supportbot.generate import ScriptedGenerator

    embedder = SentenceTransformerEmbedder()
    tmp = Path(tempfile.mkdtemp(prefix="gaps-replay-"))
    try:
        settings = build_index(tmp / "data", embedder)
        services = build(settings, embedder=embedder, generator=ScriptedGenerator())
        try:
            return replay(services, load_replay(), publish, review)
        finally:
            services.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- fitting ------------------------------------------------------------------------------


def _half(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2


def fit_sets() -> dict[str, dict[str, list[str]]]:
    """Intent -> questions of the fitting half of BANKING77 and CLINC150 (train splits)."""
    ids = [g["id"] for g in load_replay()["gaps"]]
    replay_intents = {i.removeprefix("clinc150-") for i in ids if i.startswith("clinc150-")}
    banking: dict[str, list[str]] = {}
    with (SHARED / "banking77" / "train.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            banking.setdefault(row["category"], []).append(" ".join(row["text"].split()))
    clinc: dict[str, list[str]] = {}
    for text, intent in json.loads((SHARED / "clinc150" / "data_full.json").read_text())["train"]:
        clinc.setdefault(intent, []).append(" ".join(text.split()))
    return {
        "banking77": {i: q for i, q in banking.items() if _half(i) == 0},
        "clinc150": {i: q for i, q in clinc.items() if _half(i) == 0 and i not in replay_intents},
    }


def _best(entries: dict[str, list[float]], vector: list[float]) -> tuple[str, float]:
    """The entry closest to ``vector``, and its cosine."""
    sims = {i: sum(a * b for a, b in zip(c, vector, strict=True)) for i, c in entries.items()}
    top = max(sims, key=lambda k: sims[k])
    return top, sims[top]


def fit(batches: int = 20, seed: int = 7) -> dict[str, Any]:
    """Both thresholds, fitted as the module docstring says; prints the tables."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from supportbot.embed import SentenceTransformerEmbedder
    from supportbot.gaps.cluster import centre, group

    embedder = SentenceTransformerEmbedder()
    distances = [round(0.30 + 0.05 * i, 2) for i in range(11)]
    matches = [round(0.50 + 0.025 * i, 3) for i in range(15)]
    ari: dict[float, list[float]] = {d: [] for d in distances}
    keep: dict[float, list[float]] = {d: [] for d in distances}
    false_rate: dict[str, dict[float, float]] = {}
    recall: dict[str, dict[float, float]] = {}
    for name, intents in fit_sets().items():
        rng = random.Random(seed)
        sample = {i: rng.sample(q, min(20, len(q))) for i, q in intents.items() if len(q) >= 20}
        texts = [t for qs in sample.values() for t in qs]
        vec = dict(zip(texts, embedder.embed(texts), strict=True))
        names = sorted(sample)
        for _ in range(batches):
            picked = rng.sample(names, 10)
            rows = [(i, t) for i in picked for t in rng.sample(sample[i], 6)]
            truth = [i for i, _ in rows]
            for d in distances:
                labels = group([vec[t] for _, t in rows], d)
                ari[d].append(adjusted_rand_score(truth, labels))
                shares = [
                    Counter(lab for lab, i in zip(labels, truth, strict=True) if i == x)
                    for x in picked
                ]
                keep[d].append(float(np.mean([max(s.values()) / 6 for s in shares])))
        for k in ENTRY_WORDINGS:
            hits: dict[float, list[tuple[bool, bool]]] = {m: [] for m in matches}
            for _ in range(batches):
                picked = rng.sample(names, 20)
                entries = {i: centre([vec[t] for t in sample[i][:k]]) for i in picked[:10]}
                para = [(i, t) for i in picked[:10] for t in sample[i][k : k + 10]]
                other = [t for i in picked[10:] for t in sample[i][:10]]
                scored = [(i, _best(entries, vec[t])) for i, t in para]
                strangers = [_best(entries, vec[t])[1] for t in other]
                for m in matches:
                    hits[m] += [(b[0] == i and b[1] >= m, False) for i, b in scored]
                    hits[m] += [(False, s >= m) for s in strangers]
            key = f"{name} k={k}"
            recall[key] = {m: sum(h[0] for h in hits[m]) / (100 * batches) for m in matches}
            false_rate[key] = {m: sum(h[1] for h in hits[m]) / (100 * batches) for m in matches}
    print("group_distance: adjusted Rand index and share of wordings in their main gap")
    print("distance | ARI | wordings in main gap")
    for d in distances:
        print(f"{d:.2f} | {np.mean(ari[d]):.3f} | {np.mean(keep[d]):.3f}")
    distance = max(distances, key=lambda d: float(np.mean(ari[d])))
    print("answer_match: paraphrases answered from their entry / other questions answered")
    print("match | " + " | ".join(f"{n} recall | {n} false" for n in recall))
    for m in matches:
        print(
            f"{m:.3f} | "
            + " | ".join(f"{recall[n][m]:.3f} | {false_rate[n][m]:.3f}" for n in recall)
        )
    match = max(min(m for m in matches if false_rate[n][m] <= 0.02) for n in false_rate)
    print(f"chosen: group_distance {distance:.2f}, answer_match {match:.3f}")
    return {
        "group_distance": distance,
        "answer_match": match,
        "recall": {n: r[match] for n, r in recall.items()},
        "false": {n: f[match] for n, f in false_rate.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="Fit the two thresholds.")
    parser.add_argument(
        "--review", action="store_true", help="The agent unticks wordings of other questions."
    )
    args = parser.parse_args()
    from bench._common import machine, save

    print(machine())
    if args.fit:
        save("gaps_fit", fit())
        return
    r = run_replay(args.review)
    save("gaps_replay" + ("_review" if args.review else ""), r.to_dict())
    print(f"asked {r.asked}: handed over {r.handed_over}, answered and rated down {r.rated_down}")
    for line in r.not_handed:
        print("  answered, rated down:", line)
    print(f"collected {r.collected} questions into {r.gaps} gaps")
    for line in r.report:
        print("  ", line)
    print(
        f"grouping: wordings of one question in its main gap {r.grouping:.1%}, "
        f"purity {r.purity:.1%}"
    )
    print(
        f"paraphrases of approved gaps answered from their entry: {r.answered_from_entry}/"
        f"{r.paraphrases} = {r.paraphrase_rate:.1%} ({r.answered_as_is} as is, "
        f"{r.answered_from_entry - r.answered_as_is} written from it); wrong entry {r.wrong_entry}"
    )
    print(
        f"unrelated questions answered from a new entry: {r.unrelated_from_entry}/{r.unrelated} = "
        f"{r.unrelated_rate:.1%}; draft served {r.draft_served}/{r.draft_asked}; "
        f"PII left in the FAQ file {r.pii_left}"
    )
    for line in r.misses:
        print("  missed   ", line)
    for line in r.false_answers:
        print("  answered ", line)
    print(f"{r.seconds} s ({', '.join(f'{k} at {v} s' for k, v in r.phases.items())})")


if __name__ == "__main__":
    main()
