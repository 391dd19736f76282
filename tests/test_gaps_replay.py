"""The knowledge-gap replay on the sample knowledge base, with the real embedder.

Questions kb/docs cannot answer (CLINC150 intents and questions written for this project,
tests/data/gaps_replay.json) are asked; they are handed over (or answered and rated down)
and grouped; agents' answers to the most-asked gaps are approved; paraphrases and
unrelated questions are asked again (bench/gaps.py, which prints the same figures).

The real embedder decides everything measured here: grouping, the match of a question to
an approved answer (``gaps.answer_match``) and whether a passage is relevant. The model
is the scripted one and writes nothing: a question that reaches generation is answered by
the bot's own fallback, the selected span of the best passages, so "answered from an
entry" means that span came from the entry (a real model would write from it).

The floors below sit under the figures measured (docs/measured.md#knowledge-gaps), which
fall short of the issue's targets: grouping 89% (target 90%), 79% of paraphrases answered
from their entry (target 80%), 5 of 72 unrelated questions answered from an entry in the
full bench (target 5%). This run asks every fourth of the bench's outside questions and
all 25 hard ones (other gaps' paraphrases, the draft's questions), which hold all five.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.gaps import ReplayResult, kb_settings, load_replay, replay
from supportbot.config import Settings
from supportbot.embed import SentenceTransformerEmbedder

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def result(
    kb_index: Settings,
    real_embedder: SentenceTransformerEmbedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> ReplayResult:
    """The replay on a copy of the session's kb/docs index (the copy gets the new entries)."""
    from ingest.answers import publish
    from supportbot.factory import build
    from supportbot.generate import ScriptedGenerator

    data = tmp_path_factory.mktemp("gaps") / "data"
    shutil.copytree(kb_index.data_dir, data)
    for stale in ("conversations.db", "handoffs.db", "audit.db", "agent-answers.yaml"):
        (data / stale).unlink(missing_ok=True)
    settings = kb_settings(Path(data))
    services = build(settings, embedder=real_embedder, generator=ScriptedGenerator())
    try:
        # Every fourth unrelated question, for time: bench/gaps.py asks them all.
        return replay(services, load_replay(), publish, unrelated_every=4)
    finally:
        services.close()


def test_unanswerable_questions_are_handed_over_and_grouped(result: ReplayResult) -> None:
    assert result.handed_over + result.rated_down == result.asked == 55
    assert result.handed_over >= 45
    assert result.collected == result.asked  # each one is in the gap report
    assert result.grouping >= 0.88, result.report  # measured 49/55 = 0.891
    assert result.purity >= 0.93, result.report  # measured 0.945


def test_paraphrases_of_approved_gaps_are_answered_from_their_entry(result: ReplayResult) -> None:
    assert len(result.approved) == 6
    assert result.paraphrase_rate >= 0.75, result.misses  # measured 22/28 = 0.786
    assert result.answered_as_is >= 12  # the entry itself, with no model involved
    assert result.wrong_entry == 0


def test_unrelated_questions_and_drafts_are_not_answered_from_entries(
    result: ReplayResult,
) -> None:
    assert result.unrelated >= 36
    assert result.unrelated_from_entry <= 5, result.false_answers  # the bench's five
    assert result.draft_asked > 0 and result.draft_served == 0


def test_no_personal_data_is_left_in_the_managed_faq(result: ReplayResult) -> None:
    assert result.pii_left == 0
