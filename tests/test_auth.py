"""Sign-in, roles, the audit log and the knowledge-base page's allowed roots.

No real model: the account store and the audit log are plain SQLite, and the pages run
with the hash embedder and the scripted model (``SUPPORTBOT_*`` variables), so the whole
file takes seconds. The same checks on the real models and in a real browser are in
tests/test_app.py and tests/test_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from supportbot.accounts import AccountStore, check_password, hash_password
from supportbot.audit import AuditLog
from supportbot.config import Settings
from supportbot.errors import AuthError, IngestError, SignInRefused
from supportbot.factory import Services

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(tmp_path: Path, clock: Clock) -> AccountStore:
    return AccountStore(
        tmp_path / "accounts.db", audit=AuditLog(tmp_path / "audit.db"), rounds=4, clock=clock
    )


# -- the account store ----------------------------------------------------------------


def test_password_is_stored_hashed_and_checked(accounts: AccountStore) -> None:
    accounts.add("maria", PASSWORD, "agent")
    assert accounts.sign_in("maria", PASSWORD).role == "agent"
    assert accounts.sign_in("MARIA", PASSWORD).name == "maria"  # names ignore case
    raw = accounts.path.read_bytes()
    assert PASSWORD.encode() not in raw
    with sqlite3.connect(accounts.path) as db:
        (stored,) = db.execute("SELECT password_hash FROM accounts").fetchone()
    assert stored.startswith("bcrypt-sha256$$2b$04$")
    assert oct(accounts.path.stat().st_mode & 0o777) == "0o600"
    assert accounts.get("maria") is not None and accounts.get("maria").last_sign_in  # type: ignore[union-attr]


def test_long_passwords_are_not_cut_at_72_bytes() -> None:
    a, b = "x" * 80 + "a", "x" * 80 + "b"
    assert check_password(a, hash_password(a, 4))
    assert not check_password(b, hash_password(a, 4))
    assert not check_password(a, "plain-text")


def test_wrong_password_and_unknown_name_get_the_same_answer(accounts: AccountStore) -> None:
    accounts.add("maria", PASSWORD, "agent")
    answers = []
    for name, password in (("maria", "wrong password!"), ("nobody", PASSWORD), ("", "")):
        with pytest.raises(SignInRefused) as exc:
            accounts.sign_in(name, password)
        answers.append(str(exc.value))
    assert answers == ["Wrong name or password."] * 3
    assert "maria" not in answers[0] and "exist" not in answers[0]


def test_five_failures_lock_the_name_for_30_seconds(accounts: AccountStore, clock: Clock) -> None:
    accounts.add("maria", PASSWORD, "agent")
    for _ in range(4):
        with pytest.raises(SignInRefused) as exc:
            accounts.sign_in("maria", "wrong password!")
        assert exc.value.retry_after == 0
    with pytest.raises(SignInRefused) as exc:
        accounts.sign_in("maria", "wrong password!")
    assert exc.value.retry_after == 30 and "wait 30 seconds" in str(exc.value)
    # Locked: even the right password is refused, without checking it.
    clock.now += 29
    with pytest.raises(SignInRefused, match="wait 1 seconds") as exc:
        accounts.sign_in("maria", PASSWORD)
    assert exc.value.retry_after == pytest.approx(1)
    clock.now += 1.5
    assert accounts.sign_in("maria", PASSWORD).name == "maria"
    # Unknown names lock the same way (the lock says nothing about existence).
    for _ in range(5):
        with pytest.raises(SignInRefused):
            accounts.sign_in("ghost", "whatever-password")
    with pytest.raises(SignInRefused, match="Too many failed sign-ins"):
        accounts.sign_in("ghost", "whatever-password")


def test_account_changes_and_sessions(accounts: AccountStore) -> None:
    account = accounts.add("sam", PASSWORD, "admin")
    assert accounts.valid_session("sam", account.fingerprint) is not None
    assert accounts.sign_in("sam", PASSWORD).fingerprint == account.fingerprint
    with pytest.raises(AuthError, match="already exists"):
        accounts.add("SAM", PASSWORD, "agent")
    with pytest.raises(AuthError, match="too short"):
        accounts.add("lee", "short", "agent")
    with pytest.raises(AuthError, match="account name"):
        accounts.add("../evil", PASSWORD, "agent")
    with pytest.raises(AuthError, match="Unknown role"):
        accounts.add("lee", PASSWORD, "root")  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="not valid text"):
        accounts.add("lee", "\ud800" * 12, "agent")
    accounts.set_role("sam", "agent")
    assert accounts.get("sam").role == "agent"  # type: ignore[union-attr]
    accounts.set_password("sam", "another long password")  # at once: no clock involved
    assert accounts.valid_session("sam", account.fingerprint) is None
    with pytest.raises(SignInRefused):
        accounts.sign_in("sam", PASSWORD)
    accounts.remove("sam")
    assert accounts.list() == []
    with pytest.raises(AuthError, match="No account"):
        accounts.remove("sam")
    actions = [e.action for e in accounts.audit.recent()]  # type: ignore[union-attr]
    assert actions[::-1] == [
        "account_add",
        "sign_in",
        "account_role",
        "account_password",
        "sign_in_failed",
        "account_remove",
    ]


# -- the audit log --------------------------------------------------------------------


def test_audit_entries_are_plain_and_bounded(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "audit.db")
    assert log.recent() == [] and not log.path.exists()  # nothing written, no file
    log.record("eve\x1b[2J\nfake line", "sign_in_failed", "x" * 1000, "\ud800")
    log.record("maria", "claim", "abc")
    newest, first = log.recent()
    assert (newest.actor, newest.action, newest.target) == ("maria", "claim", "abc")
    assert "\x1b" not in first.actor and "\n" not in first.actor
    assert len(first.target) == 256 and first.detail == "?"
    assert [e.action for e in log.recent(actor="maria")] == ["claim"]


def test_desk_actions_are_audited(hash_services: Callable[..., Services]) -> None:
    services = hash_services(handoff={"redact_pii": False})
    desk, bot = services.desk, services.bot
    assert services.audit is not None
    packet = bot.escalate("conv-1")
    desk.claim(packet.id, "maria")
    desk.reply(packet.id, "maria", "Hi, Maria here.")
    desk.hand_back(packet.id, "maria")
    other = bot.escalate("conv-2")
    desk.resolve(other.id, "sam")
    entries = services.audit.recent()[::-1]
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("maria", "claim", packet.id),
        ("maria", "reply", packet.id),
        ("maria", "hand_back", packet.id),
        ("sam", "resolve", other.id),
    ]
    assert entries[1].detail == "conversation conv-1, 15 characters"
    assert "Maria here" not in str(entries)  # the reply text stays in the conversation
    assert services.audit.path == services.settings.data_dir / "audit.db"


# -- the CLI --------------------------------------------------------------------------


def test_users_and_audit_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supportbot.cli import app

    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    run = CliRunner().invoke
    ok = run(app, ["users", "add", "maria", "--role", "admin", "--password-stdin"], PASSWORD)
    assert ok.exit_code == 0, ok.output
    prompted = run(app, ["users", "add", "sam"], f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0 and "Added agent sam" in prompted.output
    assert PASSWORD not in prompted.output
    mismatch = run(app, ["users", "add", "lee"], f"{PASSWORD}\nother one here\n")
    assert mismatch.exit_code != 0
    dup = run(app, ["users", "add", "maria", "--password-stdin"], PASSWORD)
    assert dup.exit_code == 1 and "already exists" in dup.output
    listed = json.loads(run(app, ["users", "list", "--json"]).output)
    assert [(a["name"], a["role"]) for a in listed] == [("maria", "admin"), ("sam", "agent")]
    assert "hash" not in json.dumps(listed) and "$2b$" not in json.dumps(listed)
    changed = run(app, ["users", "passwd", "sam", "--password-stdin"], "a new long password")
    assert changed.exit_code == 0, changed.output
    assert run(app, ["users", "role", "sam", "admin"]).exit_code == 0
    assert run(app, ["users", "role", "sam", "root"]).exit_code == 1
    assert run(app, ["users", "remove", "sam", "--yes"]).exit_code == 0
    assert run(app, ["users", "remove", "sam", "--yes"]).exit_code == 1
    entries = json.loads(run(app, ["audit", "--json"]).output)
    assert [e["action"] for e in entries][::-1] == [
        "account_add",
        "account_add",
        "account_password",
        "account_role",
        "account_remove",
    ]
    assert all(e["actor"].startswith("cli") for e in entries)
    store = AccountStore(tmp_path / "data" / "accounts.db")
    assert store.sign_in("maria", PASSWORD).role == "admin"


# -- the pages ------------------------------------------------------------------------


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path) -> Iterator[AccountStore]:
    """The web UI on the hash embedder and scripted model; yields its account store."""
    from webui.auth import _security
    from webui.resources import shared_services

    data = tmp_path / "web-data"
    for key, value in {
        "DATA_DIR": str(data),
        "EMBEDDING__BACKEND": "hash",
        "LLM__BACKEND": "scripted",
        "HANDOFF__REDACT_PII": "false",
    }.items():
        monkeypatch.setenv(f"SUPPORTBOT_{key}", value)
    shared_services.clear()
    _security.clear()
    store = AccountStore(data / "accounts.db", rounds=4)
    store.add("maria", PASSWORD, "admin")
    store.add("sam", PASSWORD, "agent")
    yield store
    shared_services.clear()
    _security.clear()


def page(name: str) -> AppTest:
    return AppTest.from_string(
        f"from webui.{name} import {name}_page\n{name}_page()\n", default_timeout=60
    )


def sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    at.button(key="signin_submit").click().run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    parts = [m.value for m in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info)]
    text = "\n".join(str(p) for p in parts + [e.label for e in at.expander])
    return re.sub(r"\\(.)", r"\1", text)  # markdown-escaped: "\\(agent\\)"


def test_anonymous_visitors_get_a_sign_in_form_and_nothing_else(
    web: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webui.console
    import webui.knowledge

    def never() -> None:
        raise AssertionError("services were used before anyone signed in")

    # Nothing behind the pages (desk, index, models) is even reached.
    monkeypatch.setattr(webui.console, "get_desk", never)
    monkeypatch.setattr(webui.knowledge, "get_services", never)
    for name in ("console", "knowledge"):
        at = page(name).run()
        assert not at.exception, at.exception
        assert at.text_input(key="signin_password").proto.type == 1  # PASSWORD
        assert not at.tabs and not at.metric and not at.dataframe and not at.expander
        assert not at.file_uploader and not at.selectbox
        assert [h.value for h in at.subheader] == ["Sign in"]


def test_wrong_password_is_refused_without_saying_which(web: AccountStore) -> None:
    at = sign_in(page("console").run(), "sam", "not the password")
    assert [e.value for e in at.error] == ["Wrong name or password."]
    assert not at.tabs and not at.metric
    at = sign_in(at, "nobody-here", PASSWORD)
    assert [e.value for e in at.error] == ["Wrong name or password."]
    assert not at.tabs


def test_agent_gets_the_console_but_not_the_knowledge_base(web: AccountStore) -> None:
    at = sign_in(page("console").run(), "sam")
    assert [t.label for t in at.tabs] == ["Open (0)", "Claimed (0)", "Closed (0)", "Gaps"]
    assert "Signed in as **sam** (agent)" in shown(at)
    assert not any(w.label == "Your name" for w in at.text_input)

    kb = sign_in(page("knowledge").run(), "sam")
    assert not kb.tabs and not kb.dataframe and not kb.file_uploader
    assert "is for administrators" in shown(kb)


def test_admin_gets_the_knowledge_base_and_the_audit_log(web: AccountStore) -> None:
    at = sign_in(page("knowledge").run(), "maria")
    assert [t.label for t in at.tabs] == [
        "Add documents",
        "Documents",
        "Quarantined",
        "Search",
        "Audit log",
    ]
    log = next(d.value for d in at.dataframe if "what" in d.value.columns)
    assert list(log["what"])[:1] == ["sign_in"] and list(log["who"])[:1] == ["maria"]


def test_sign_out_ends_the_session(web: AccountStore) -> None:
    at = sign_in(page("console").run(), "sam")
    at.sidebar.button(key="sign_out").click().run()
    assert not at.tabs and at.text_input(key="signin_password")
    actions = [e.action for e in AuditLog(web.path.parent / "audit.db").recent()]
    assert actions[:2] == ["sign_out", "sign_in"]


def test_removing_an_account_ends_its_session(web: AccountStore) -> None:
    at = sign_in(page("console").run(), "sam")
    assert at.tabs
    web.remove("sam")
    at.run()
    assert not at.tabs and "session ended" in shown(at)


def test_sign_in_is_locked_after_five_failures(web: AccountStore) -> None:
    at = page("console").run()
    for _ in range(5):
        at = sign_in(at, "sam", "wrong password!")
    assert "Too many failed sign-ins" in at.error[0].value
    at = sign_in(at, "sam")  # the right password, still locked
    assert not at.tabs and "Too many failed sign-ins" in at.error[0].value


def test_oidc_roles_come_from_the_mapping(
    web: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTBOT_UI__AUTH", "oidc")
    monkeypatch.setenv("SUPPORTBOT_UI__OIDC_ROLES", '{"Ann@Example.com": "admin"}')
    at = page("console")
    at.run()
    assert not at.tabs and at.button(key="oidc_sign_in")
    at = page("knowledge")
    at.user = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann"}
    at.run()
    assert not at.exception, at.exception
    assert at.tabs[0].label == "Add documents"
    stranger = page("console")
    stranger.user = {"is_logged_in": True, "email": "eve@example.com"}
    stranger.run()
    assert not stranger.tabs and "has no role here" in shown(stranger)
    assert AuditLog(web.path.parent / "audit.db").recent()[0].actor == "ann@example.com"


# -- the knowledge-base page's roots ---------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    """An allowed root with a subfolder, a hidden folder and links leading out."""
    root = tmp_path / "allowed"
    (root / "manuals" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "manuals" / "a.md").write_text("# A\n\ntext\n")
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "ops-notes.txt").write_text("router password: hunter2")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    return [(tmp_path / "uploads").resolve(), root.resolve()]


def test_folders_outside_the_roots_are_refused(roots: list[Path], tmp_path: Path) -> None:
    from webui.knowledge import checked_folder, folder_choices

    root = roots[1]
    assert checked_folder(root / "manuals", roots) == root / "manuals"
    for bad in (
        tmp_path / "secret",
        "/etc",
        root / ".." / "secret",
        root / "escape",  # a link inside the root to a folder outside
        root / "manuals" / "a.md",  # not a folder
    ):
        with pytest.raises(IngestError) as exc:
            checked_folder(bad, roots)
        assert "hunter2" not in str(exc.value) and "secret" not in str(exc.value)
    # The root itself holds a link that leads out: refused as a whole.
    with pytest.raises(IngestError, match="1 link"):
        checked_folder(root, roots)
    choices = folder_choices(roots)
    assert sorted(p.relative_to(root).as_posix() for p in choices.values()) == [
        ".",
        "manuals",
        "manuals/deep",
    ]
    assert all(".git" not in label and "escape" not in label for label in choices)


def test_default_roots_are_uploads_and_kb(tmp_path: Path) -> None:
    from webui.knowledge import allowed_roots

    settings = Settings(data_dir=tmp_path / "d")
    assert allowed_roots(settings) == [(tmp_path / "d" / "uploads").resolve()]  # no ./kb
    (tmp_path / "kb").mkdir()  # the tests run in tmp_path
    assert allowed_roots(settings)[1] == (tmp_path / "kb").resolve()
    only = Settings(data_dir=tmp_path / "d", ingest={"allowed_roots": []})
    assert allowed_roots(only) == [(tmp_path / "d" / "uploads").resolve()]


def test_admin_ingests_from_a_listed_folder_and_it_is_audited(
    web: AccountStore, kb_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    at = sign_in(page("knowledge").run(), "maria")
    options = at.selectbox(key="ingest_folder").options
    assert options == ["kb"]  # ./kb (the tests' working directory); uploads not made yet
    at.selectbox(key="ingest_folder").set_value("kb").run()
    next(b for b in at.button if b.label == "Ingest folder").click().run()
    assert not at.exception, at.exception
    assert any("Ingest finished" in s.value for s in at.success), shown(at)
    at.selectbox(key="remove_doc").set_value("manual.md").run()
    next(b for b in at.button if b.label == "Remove").click().run()
    entries = AuditLog(web.path.parent / "audit.db").recent()
    assert [(e.actor, e.action, e.target) for e in entries[:2]] == [
        ("maria", "remove", "manual.md"),
        ("maria", "ingest", "kb"),
    ]
    assert "3 added" in entries[1].detail
    assert os.path.exists(kb_dir / "manual.md")  # removal never deletes outside uploads
