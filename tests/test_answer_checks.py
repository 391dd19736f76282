"""Echoes, fragments, contradictions and steps, through the real default models.

MiniLM and Gemma 3 270M answer from a small manual written to provoke each failure the
dev sets showed: a question whose words the model can echo back ("You can use X with
Exchange") where the manual says it is unusable; a yes/no question whose answer is no;
an answer in a sentence the chunker cuts in two; and a list of steps. Whatever the model
writes, every sentence shipped must be whole, say more than the question, agree in
polarity with its source and come from one source sentence; steps come as a list.
"""

from __future__ import annotations

import re

import pytest

from ingest import run_ingest
from supportbot.bot import Reply, SupportBot
from supportbot.config import Settings
from supportbot.conversation import MemoryConversationStore
from supportbot.embed import SentenceTransformerEmbedder
from supportbot.factory import build, build_generator, build_store
from supportbot.verify import fragment, negated, restates, split_sentences

pytestmark = pytest.mark.model

MANUAL = """# Mailpull manual

## Servers

Mailpull works with most IMAP servers. Microsoft Exchange's POP3 support is so broken
that it is unusable with Mailpull; use Exchange's IMAP service instead, which works.

## Power

The Mailpull appliance cannot be used outdoors. It must be kept dry and below 35 degrees.

## Polling

Mailpull checks every mailbox on the poll list in turn, and the interval between two
checks of one mailbox is set with the interval keyword, counted in poll cycles, so that
interval 6 with a poll every 5 minutes checks that mailbox every 30 minutes, while the
other mailboxes keep the normal schedule.

## Resetting

To reset Mailpull to its factory settings:

- Stop the mailpull service.
- Delete the file .mailpullrc in your home folder.
- Start the service again and run mailpull --setup.
"""


@pytest.fixture(scope="module")
def bot(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> SupportBot:
    root = tmp_path_factory.mktemp("checks")
    docs = root / "docs"
    docs.mkdir()
    (docs / "manual.md").write_text(MANUAL)
    settings = Settings(data_dir=root / "data")
    # Small chunks, so the polling answer is cut across passages; escalation off, so
    # every question is answered (the policy has its own tests).
    settings = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(update={"chunk_size": 160, "chunk_overlap": 40}),
            "escalation": settings.escalation.model_copy(update={"enabled": False}),
            "calibration": settings.calibration.model_copy(update={"enabled": False}),
        }
    )
    run_ingest([docs], settings, embedder=real_embedder)
    return build(
        settings,
        embedder=real_embedder,
        store=build_store(settings),
        generator=build_generator(settings),
        conversations=MemoryConversationStore(),
    ).bot


def _shipped(reply: Reply) -> list[str]:
    """The answer's sentences, citations and the quote's label taken off."""
    text = re.sub(r'From "[^"]*"(?: \[\d+\])?:', "", reply.answer)
    text = re.sub(r"\s*\[\d+\]", "", text)
    return [s for line in text.splitlines() for s in split_sentences(line)]


def _whole_and_informative(reply: Reply, question: str) -> None:
    assert reply.mode in ("generated", "extract"), reply.answer
    shipped = _shipped(reply)
    for i, sentence in enumerate(shipped):
        if i + 1 < len(shipped) and shipped[i + 1].startswith("- "):
            continue  # "To reset it:" introduces the steps that follow
        assert not fragment(sentence), sentence
        assert not restates(sentence, question), sentence
        assert " ".join(sentence.split()) in " ".join(MANUAL.split()) or reply.mode == "generated"


def test_an_echo_of_the_question_is_not_an_answer(bot: SupportBot) -> None:
    question = "How can I use Mailpull with Microsoft Exchange?"
    reply = bot.ask(question)
    _whole_and_informative(reply, question)
    assert "unusable" in reply.answer  # what the manual says, however the model put it


def test_a_no_is_not_turned_into_a_yes(bot: SupportBot) -> None:
    question = "Can I use the Mailpull appliance outdoors?"
    reply = bot.ask(question)
    _whole_and_informative(reply, question)
    assert "cannot be used outdoors" in reply.answer
    for sentence in _shipped(reply):
        if "outdoors" in sentence:
            assert negated(sentence), sentence
    assert not re.search(r"(?i)\byes\b", reply.answer)


def test_a_sentence_cut_by_the_chunker_is_shipped_whole(bot: SupportBot) -> None:
    question = "How do I check one mailbox less often than the others?"
    reply = bot.ask(question)
    _whole_and_informative(reply, question)
    assert "interval keyword" in reply.answer
    assert "other mailboxes keep the normal schedule" in reply.answer  # the sentence's end


def test_steps_come_as_a_whole_list(bot: SupportBot) -> None:
    question = "How do I reset Mailpull to factory settings?"
    reply = bot.ask(question)
    _whole_and_informative(reply, question)
    lines = [line.strip() for line in reply.answer.splitlines()]
    assert "- Stop the mailpull service." in lines
    assert "- Delete the file .mailpullrc in your home folder." in lines
    assert "- Start the service again and run mailpull --setup." in lines
