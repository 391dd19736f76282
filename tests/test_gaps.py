"""Knowledge gaps and agents' answers: collecting, grouping, the managed FAQ, serving it.

No real model here: a topic embedder (one axis per topic word) makes grouping exact, and
the index runs on the hash embedder. The replay on the sample knowledge base with the real
embedder is tests/test_gaps_replay.py; the console tab is tested in tests/test_gaps_console.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from supportbot import cli
from supportbot.audit import AuditLog
from supportbot.config import IngestSettings, Settings
from supportbot.conversation import SqliteConversationStore, Turn
from supportbot.embed import HashEmbedder
from supportbot.errors import FaqEntryNotFound, FaqError, InputError, SupportBotError
from supportbot.factory import Services, build, build_answers
from supportbot.gaps import AgentAnswers, GapFinder, collect_questions
from supportbot.gaps.cluster import centre, group
from supportbot.generate import ScriptedGenerator
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.safety.redact import find_pii

TOPICS = ("student", "starlink", "alexa", "hiring", "weather")


class TopicEmbedder:
    """One axis per topic word (plus a small shared one): grouping is known in advance."""

    name = "topic-test"
    dimension = len(TOPICS) + 1

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        low = text.lower()
        vec = [1.0 if word in low else 0.0 for word in TOPICS] + [0.2]
        norm = math.sqrt(sum(x * x for x in vec))
        return [x / norm for x in vec]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stores(data: Path) -> tuple[SqliteConversationStore, SqliteHandoffQueue]:
    return SqliteConversationStore(data / "conversations.db"), SqliteHandoffQueue(
        data / "handoffs.db"
    )


def _services(data: Path, kb_dir: Path | None = None, **overrides: object) -> Services:
    from ingest import run_ingest

    settings = Settings(
        data_dir=data,
        embedding={"backend": "hash"},
        conversation={"backend": "sqlite"},
        ingest={"file_timeout": 0},  # parse in this process: no worker to start per run
        **overrides,  # type: ignore[arg-type]
    )
    if kb_dir is not None:
        assert run_ingest([kb_dir], settings).ok
    return build(settings, embedder=HashEmbedder(64), generator=ScriptedGenerator())


# -- the managed FAQ file ------------------------------------------------------------------


def test_saved_answers_are_redacted_audited_and_only_approved_ones_exported(data: Path) -> None:
    audit = AuditLog(data / "audit.db")
    answers = AgentAnswers(data / "agent-answers.yaml", audit=audit, allow=["1-800-555-0142"])
    entry = answers.save(
        "Jane Smith asks: student discount? jane.smith@gmail.com",
        "Hi Jane! No student discount. Call 1-800-555-0142 or me on +1 415 555 0199, "
        "card 4111 1111 1111 1111.",
        actor="maria",
        also_asked=["is there a student discount", "student discount, mail bob@example.org"],
        handoff="abc123",
    )
    answers.save("Do you sell gift cards?", "Not yet.", actor="sam", approve=False)
    text = (data / "agent-answers.yaml").read_text()
    assert find_pii(text, ["1-800-555-0142"]) == []  # nothing personal is kept
    assert "[EMAIL]" in text and "[PHONE]" in text and "[CARD]" in text
    assert "1-800-555-0142" in text  # the company's public number stays
    assert entry.approved and entry.approved_by == "maria" and entry.approved_at
    assert entry.also_asked[0] == "is there a student discount"
    # Both saved within one clock tick: which comes first is not defined.
    assert sorted(e.status for e in answers.entries()) == ["approved", "draft"]
    logged = [(e.actor, e.action) for e in audit.recent()]
    assert logged == [("sam", "faq_draft"), ("maria", "faq_approve")]
    exported = yaml.safe_load(answers.export())
    assert [e["question"] for e in exported["entries"]] == [entry.question]
    assert exported["entries"][0]["approved_by"] == "maria"


def test_approve_edit_remove_and_unknown_ids(data: Path) -> None:
    answers = AgentAnswers(data / "agent-answers.yaml")
    draft = answers.save("Do you sell gift cards?", "Not yet.", actor="sam", approve=False)
    assert not draft.approved and not draft.approved_by
    done = answers.approve(draft.id, "maria")
    assert done.approved and done.approved_by == "maria"
    edited = answers.edit(draft.id, "lee", answer="Yes, from May.", approve=False)
    assert edited.status == "draft" and edited.answer == "Yes, from May." and not edited.approved_by
    assert answers.edit(draft.id, "lee").approved_by == "lee"
    answers.remove(draft.id, "maria")
    assert answers.entries() == []
    for call in (answers.approve, answers.remove):
        with pytest.raises(FaqEntryNotFound, match="supportbot gaps answers"):
            call("nope", "maria")


def test_bad_input_and_a_broken_file_change_nothing(data: Path) -> None:
    path = data / "agent-answers.yaml"
    answers = AgentAnswers(path)
    kept = answers.save("Do you sell gift cards?", "Not yet.", actor="sam")
    before = path.read_text()
    for question, answer, actor in (
        ("  ", "An answer", "sam"),
        ("A question?", "jane@example.com", "sam"),  # nothing left after redaction
        ("A question?", "x" * 5000, "sam"),
        ("A question?", "An answer", " "),
    ):
        with pytest.raises(InputError):
            answers.save(question, answer, actor=actor)
    assert path.read_text() == before
    path.write_text("entries: [unclosed\n")
    with pytest.raises(FaqError, match="not valid YAML.*nothing was changed"):
        answers.save("Another?", "Yes.", actor="sam")
    assert path.read_text() == "entries: [unclosed\n"
    assert isinstance(FaqError("x"), SupportBotError)
    path.write_text(before)
    assert answers.get(kept.id).question == kept.question


# -- loading it like any FAQ ---------------------------------------------------------------


def test_only_approved_entries_are_loaded_with_their_wordings_and_title(data: Path) -> None:
    from ingest.chunk import chunk_document
    from ingest.load import load_document

    answers = AgentAnswers(data / "agent-answers.yaml", title="Answers from our team")
    ok = answers.save("Do you have a student discount?", "No.", actor="m", also_asked=["uni deal?"])
    answers.save("Do you sell gift cards?", "Not yet.", actor="m", approve=False)
    doc = load_document(answers.path, IngestSettings())
    assert doc.title == "Answers from our team"
    assert [(e.question, e.also_asked, e.author) for e in doc.faq] == [
        (ok.question, ("uni deal?",), "agent")
    ]
    assert any("not approved" in w for w in doc.warnings)
    (chunk,) = chunk_document(doc, "agent-answers.yaml")
    assert chunk.heading == f"Written by a support agent, {ok.approved_at[:10]}"
    assert chunk.author == "agent" and chunk.also_asked == ("uni deal?",)


def test_drafts_are_never_loaded_from_any_faq_file(tmp_path: Path) -> None:
    from ingest.chunk import chunk_id
    from ingest.load import load_document
    from supportbot.errors import FileRejected

    path = tmp_path / "faq.yaml"
    path.write_text(
        '- {question: "Shipped?", answer: "Yes.", status: draft}\n'
        '- {question: "Agent draft?", answer: "Maybe.", author: agent, status: later}\n'
        '- {question: "Live?", answer: "Yes.", status: live}\n'
        '- {question: "Plain?", answer: "Yes."}\n'
    )
    doc = load_document(path, IngestSettings())
    assert [e.question for e in doc.faq] == ["Live?", "Plain?"]
    path.write_text('- {question: "Shipped?", answer: "Yes.", status: draft}\n')
    with pytest.raises(FileRejected, match="no approved entries"):
        load_document(path, IngestSettings())
    # An entry without other wordings keeps the id it had before they existed.
    from ingest.chunk import chunk_document

    path.write_text('- {question: "Plain?", answer: "Yes."}\n')
    (chunk,) = chunk_document(load_document(path, IngestSettings()), "faq.yaml")
    assert chunk.id == chunk_id("faq.yaml", "", "Plain?\x00Yes.")


def test_the_question_vector_is_the_centre_of_all_wordings(data: Path, kb_dir: Path) -> None:
    from ingest.answers import publish

    services = _services(data, kb_dir)
    assert services.answers is not None
    wordings = ["Do you have a student discount?", "student deal", "uni discount please"]
    services.answers.save(wordings[0], "No.", actor="m", also_asked=wordings[1:])
    assert publish(services.settings, embedder=services.embedder, store=services.store).approved
    got = services.store.chunks.get(where={"record": "faq_question"}, include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"], strict=True))  # type: ignore[arg-type]
    mine = [v for cid, v in vectors.items() if cid.endswith(":q") and len(vectors) > 2]
    want = centre(HashEmbedder(64).embed(wordings))
    assert any(max(abs(a - b) for a, b in zip(v, want, strict=True)) < 1e-5 for v in mine)


# -- serving it ----------------------------------------------------------------------------


def test_an_approved_answer_is_served_named_as_an_agents_and_a_draft_never(
    data: Path, kb_dir: Path
) -> None:
    from ingest.answers import publish

    services = _services(data, kb_dir)
    bot, answers = services.bot, services.answers
    assert answers is not None
    question = "Does the widget work with a Starlink dish?"
    assert bot.ask(question, "c1").mode == "handoff"  # nothing in kb_dir about it
    entry = answers.save(question, "Yes, in bypass mode.", actor="maria")
    draft = answers.save(
        "Do you sell gift cards?", "Gift cards in May.", actor="sam", approve=False
    )
    publish(services.settings, embedder=services.embedder, store=services.store)
    reply = bot.ask(question, "c2")
    assert reply.mode == "faq" and reply.answer == "Yes, in bypass mode [1]."
    (citation,) = reply.citations
    assert citation.label == (
        f"Answers from our support team > Written by a support agent, {entry.approved_at[:10]}"
    )
    # The draft's own question, word for word: not answered from it.
    other = bot.ask(draft.question, "c3")
    assert "Gift cards in May" not in other.answer
    assert all("support agent" not in c.label for c in other.citations)
    # Agent answers can be switched off by their own threshold.
    off = _services(data, None, gaps={"answer_match": 1.01})
    assert off.bot.ask(question, "c4").mode != "faq"


def test_removing_the_last_answer_takes_it_out_of_the_index(data: Path, kb_dir: Path) -> None:
    from ingest.answers import publish

    services = _services(data, kb_dir)
    answers = services.answers
    assert answers is not None
    entry = answers.save("Does the widget work with a Starlink dish?", "Yes.", actor="m")
    publish(services.settings, embedder=services.embedder, store=services.store)
    assert "agent-answers.yaml" in services.store.files()
    answers.remove(entry.id, "m")
    done = publish(services.settings, embedder=services.embedder, store=services.store)
    assert done.report is None and done.removed == 1
    assert "agent-answers.yaml" not in services.store.files()
    assert services.bot.ask(entry.question, "c5").mode != "faq"


# -- collecting and grouping ------------------------------------------------------------


def _handoff(
    stores: tuple[SqliteConversationStore, SqliteHandoffQueue],
    conv: str,
    texts: list[str],
    reasons: list[str],
    reply: str = "",
) -> str:
    from supportbot.handoff.packet import build_packet

    conversations, queue = stores
    for t in texts:
        conversations.append(conv, Turn("user", t))
    packet = build_packet(conv, conversations.history(conv), reasons)
    queue.deliver(packet)
    if reply:
        conversations.append(conv, Turn("assistant", reply, meta={"agent": "maria"}))
    queue.update_status(packet.id, "resolved")  # one open hand-off per conversation
    return packet.id


def test_questions_come_from_knowledge_handoffs_agent_replies_and_thumbs_down(
    stores: tuple[SqliteConversationStore, SqliteHandoffQueue],
) -> None:
    conversations, queue = stores
    _handoff(
        stores,
        "a",
        ["hi", "Do you have a student discount? I'm jane@example.com"],
        ["NO_RELEVANT_CONTEXT"],
    )
    _handoff(
        stores,
        "b",
        ["Does it work with Starlink?", "talk to a human"],
        ["HUMAN_REQUESTED"],
        "Yes, in bypass mode.",
    )
    _handoff(stores, "c", ["I want a refund now"], ["SENSITIVE_TOPIC", "NO_RELEVANT_CONTEXT"], "ok")
    _handoff(stores, "d", ["agent please"], ["HUMAN_REQUESTED"])
    conversations.append("e", Turn("user", "Is there an Alexa skill for the router?"))
    conversations.append("e", Turn("assistant", "Yes [1].", meta={"mode": "generated"}))
    conversations.append("e", Turn("assistant", "Thanks!", meta={"mode": "clarify"}))
    conversations.annotate_at("e", 1, feedback="down")
    found = collect_questions(conversations, queue)
    by_conv = {q.conversation_id: q for q in found}
    assert sorted(by_conv) == ["a", "b", "e"]  # c needs a person anyway; d asked nothing
    assert by_conv["a"].text == "Do you have a student discount? I'm [EMAIL]"
    assert by_conv["a"].origin == "handed_over" and not by_conv["a"].answered_by_agent
    assert by_conv["b"].text == "Does it work with Starlink?"  # the question, not "a human"
    assert by_conv["b"].agent_reply == "Yes, in bypass mode." and by_conv["b"].agent == "maria"
    assert by_conv["e"].origin == "thumbs_down"
    assert by_conv["e"].text == "Is there an Alexa skill for the router?"


def test_gaps_group_by_meaning_most_customers_first(
    data: Path, stores: tuple[SqliteConversationStore, SqliteHandoffQueue]
) -> None:
    conversations, queue = stores
    asks = {
        "s1": "Do you have a student discount?",
        "s2": "student pricing for the R1?",
        "s3": "any student deal",
        "k1": "Does the Nexa work with Starlink?",
        "k2": "starlink compatible?",
        "w1": "what's the weather tomorrow",
    }
    for conv, text in asks.items():
        _handoff(
            stores, conv, [text], ["NO_RELEVANT_CONTEXT"], "Yes, bypass." if conv == "k1" else ""
        )
    _handoff(stores, "s1", ["Do you have a student discount?"], ["NO_RELEVANT_CONTEXT"])
    answers = AgentAnswers(data / "agent-answers.yaml")
    entry = answers.save("Starlink?", "Yes, bypass.", actor="m", also_asked=["starlink ok?"])
    finder = GapFinder(
        Settings().gaps,
        embedder=TopicEmbedder(),
        conversations=conversations,
        queue=queue,
        answers=answers,
    )
    report = finder.report()
    assert [(g.customers, g.asked) for g in report.gaps] == [(3, 4), (2, 2), (1, 1)]
    student, starlink, weather = report.gaps
    assert student.label.lower().count("student") == 1 and len(student.examples) == 3
    assert starlink.answered_by_agent and not student.answered_by_agent
    assert starlink.entry == entry.id and not student.entry
    assert student.first_seen <= student.last_seen
    days = report.timeline(top=2)
    assert {name for _, name, _ in days} == {student.label, starlink.label, "other"}
    data_json = report.to_dict()
    assert json.dumps(data_json) and data_json["gaps"][0]["customers"] == 3
    assert group([], 0.5) == [] and group([[1.0, 0.0]], 0.5) == [0]


# -- the command line -------------------------------------------------------------------


def test_cli_lists_gaps_adds_exports_and_removes_answers(
    data: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(data))
    monkeypatch.setenv("SUPPORTBOT_INGEST__FILE_TIMEOUT", "0")
    cli._register_plugins()
    runner = CliRunner()
    assert runner.invoke(cli.app, ["ingest", str(kb_dir)]).exit_code == 0
    services = _services(data)
    services.bot.ask("Does the widget work with a Starlink dish?", "c1")
    res = runner.invoke(cli.app, ["gaps", "--json"])
    assert res.exit_code == 0, res.output
    assert (
        json.loads(res.stdout)["gaps"][0]["label"] == "Does the widget work with a Starlink dish?"
    )
    assert "Starlink" in runner.invoke(cli.app, ["gaps", "--examples"]).stdout
    res = runner.invoke(
        cli.app,
        [
            "gaps",
            "add",
            "-q",
            "Starlink?",
            "-a",
            "Yes, bypass. Mail jo@example.com",
            "--by",
            "maria",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1 approved agent answer(s) served" in res.stdout
    listed = json.loads(runner.invoke(cli.app, ["gaps", "answers", "--json"]).stdout)
    assert (
        listed[0]["answer"] == "Yes, bypass. Mail [EMAIL]" and listed[0]["approved_by"] == "maria"
    )
    out = tmp_path / "review.yaml"
    assert runner.invoke(cli.app, ["gaps", "export", str(out)]).exit_code == 0
    assert yaml.safe_load(out.read_text())["entries"][0]["question"] == "Starlink?"
    res = runner.invoke(cli.app, ["gaps", "remove", "nope"])
    assert res.exit_code == 1 and "No agent answer with id 'nope'" in res.output
    res = runner.invoke(cli.app, ["gaps", "remove", listed[0]["id"]])
    assert res.exit_code == 0 and "No approved agent answer is served" in res.stdout
    assert [e.action for e in AuditLog(data / "audit.db").recent()][:2] == [
        "faq_remove",
        "faq_approve",
    ]
    assert build_answers(Settings(data_dir=data)).entries() == []
