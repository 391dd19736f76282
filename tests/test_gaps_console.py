"""The agent console's Gaps tab and the "turn a reply into an FAQ entry" flow (AppTest).

The pages run on the hash embedder and the scripted model (``SUPPORTBOT_*`` variables), as
in tests/test_auth.py, so this file takes seconds; the replay with the real embedder is
tests/test_gaps_replay.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from supportbot.accounts import AccountStore
from supportbot.audit import AuditLog
from supportbot.factory import Services
from tests.test_auth import PASSWORD, page, shown, sign_in

QUESTION = "Does the widget work with a Starlink dish?"
REPLY = "Hi Jane, yes: put the Starlink router in bypass mode. Questions? jane.doe@gmail.com"


@pytest.fixture
def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path
) -> Iterator[tuple[Services, Path]]:
    """kb_dir indexed; one question handed over and answered by an agent; two accounts."""
    from ingest import run_ingest
    from webui.auth import _security
    from webui.resources import shared_services, web_settings

    data = tmp_path / "web-data"
    for key, value in {
        "DATA_DIR": str(data),
        "EMBEDDING__BACKEND": "hash",
        "LLM__BACKEND": "scripted",
        "INGEST__FILE_TIMEOUT": "0",  # parse in this process: no worker to start per run
    }.items():
        monkeypatch.setenv(f"SUPPORTBOT_{key}", value)
    shared_services.clear()
    _security.clear()
    assert run_ingest([kb_dir], web_settings()).ok
    store = AccountStore(data / "accounts.db", rounds=4)
    store.add("maria", PASSWORD, "admin")
    store.add("sam", PASSWORD, "agent")
    services = shared_services()
    reply = services.bot.ask(QUESTION, "cust-1")
    assert reply.mode == "handoff" and reply.handoff_id
    services.desk.claim(reply.handoff_id, "sam")
    services.desk.reply(reply.handoff_id, "sam", REPLY)
    services.desk.resolve(reply.handoff_id, "sam")
    yield services, data
    shared_services.clear()
    _security.clear()


def _toggle(at: AppTest, label: str) -> AppTest:
    next(t for t in at.toggle if t.label == label).set_value(True).run()
    assert not at.exception, at.exception
    return at


def test_gaps_tab_lists_the_gap_and_approves_an_entry_the_bot_then_serves(
    console: tuple[Services, Path],
) -> None:
    services, data = console
    at = sign_in(page("console").run(), "sam")
    assert [t.label for t in at.tabs][-1] == "Gaps"
    table = next(d.value for d in at.dataframe if "gap" in d.value.columns)
    assert list(table["gap"]) == [QUESTION] and list(table["agent answered"]) == [True]
    at = _toggle(at, "Answer it: make an FAQ entry")
    question = next(w for w in at.text_input if w.label == "Question")
    answer = next(w for w in at.text_area if w.label == "Answer customers will get")
    assert question.value == QUESTION and "[EMAIL]" in answer.value  # the reply, redacted
    answer.set_value(REPLY.replace("Hi Jane, yes", "Yes") + " Call me on +1 415 555 0199.").run()
    text = shown(at)
    assert "removed: EMAIL, PHONE" in text and "415 555 0199" not in text
    next(b for b in at.button if b.label == "Approve and publish").click().run()
    assert not at.exception, at.exception
    assert any("Approved" in s.value and "served" in s.value for s in at.success)
    assert services.answers is not None
    (entry,) = services.answers.entries()
    assert entry.approved and entry.approved_by == "sam" and "[PHONE]" in entry.answer
    assert ("sam", "faq_approve") in [
        (e.actor, e.action) for e in AuditLog(data / "audit.db").recent()
    ]
    reply = services.bot.ask(QUESTION, "cust-2")
    assert reply.mode == "faq" and "bypass mode" in reply.answer
    assert "Written by a support agent" in reply.citations[0].label


def test_a_handoff_reply_becomes_a_draft_when_only_admins_approve(
    console: tuple[Services, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from webui.resources import shared_services

    monkeypatch.setenv("SUPPORTBOT_GAPS__APPROVE_ROLE", "admin")
    shared_services.clear()
    at = sign_in(page("console").run(), "sam")
    at = _toggle(at, "Turn this question and the reply into an FAQ entry")
    assert not any(b.label == "Approve and publish" for b in at.button)
    assert "Only administrators approve answers here" in shown(at)
    next(b for b in at.button if b.label == "Save as draft").click().run()
    assert not at.exception, at.exception
    services = shared_services()
    assert services.answers is not None
    (entry,) = services.answers.entries()
    assert entry.status == "draft" and entry.handoff
    assert services.bot.ask(QUESTION, "cust-3").mode != "faq"  # a draft is never served
    admin = sign_in(page("console").run(), "maria")
    next(b for b in admin.button if b.label == "Approve").click().run()
    assert not admin.exception, admin.exception
    assert services.answers.get(entry.id).approved_by == "maria"
    assert services.bot.ask(QUESTION, "cust-4").mode == "faq"
