"""Agent and administrator accounts: a local store, bcrypt hashes, sign-in with a lock.

The agent console and the knowledge-base page ask who is there. Offline, accounts live
in ``<data_dir>/accounts.db`` (readable by its owner only), created and changed with
``supportbot users``. Two roles: ``agent`` (the console) and ``admin`` (the console and
the knowledge-base page); customers never need an account.

Passwords are hashed with bcrypt (cost 12 by default) over their SHA-256, so long
passwords are not cut at bcrypt's 72 bytes; nothing else about a password is kept.
A sign-in answers "wrong name or password" whether or not the name exists, and spends
the same bcrypt time on an unknown name. After ``max_failures`` failures in a row for a
name (known or not), that name is locked for ``lock_seconds``: further attempts, even
with the right password, are refused until then. The counts are kept in the process
(one per server process), so a restart clears them.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import bcrypt

from supportbot.errors import AuthError, SignInRefused

if TYPE_CHECKING:
    from supportbot.audit import AuditLog

__all__ = [
    "PAGE_ROLES",
    "ROLES",
    "Account",
    "AccountStore",
    "Role",
    "cli_actor",
    "may_open",
]

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

PAGE_ROLES: dict[str, tuple[Role, ...]] = {"agent": ("agent", "admin"), "kb": ("admin",)}
"""Who may open each signed-in page of the web UI (``ui.pages`` names)."""

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_PREFIX = "bcrypt-sha256$"
_WRONG = "Wrong name or password."
_MAX_TRACKED = 10_000  # names with recent failures kept in memory (oldest dropped)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY COLLATE NOCASE, "
    "role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at TEXT NOT NULL, "
    "password_changed_at TEXT NOT NULL, last_sign_in TEXT)",
)


def may_open(role: str, page: str) -> bool:
    """Whether an account with ``role`` may open ``page`` ('agent' or 'kb')."""
    return role in PAGE_ROLES.get(page, ())


def cli_actor() -> str:
    """How the command line appears in the audit log: ``cli:<operating-system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "cli"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prehash(password: str) -> bytes:
    """SHA-256 of the password, base64: fixed 44 bytes, no NUL, for bcrypt's 72-byte input."""
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest)


def _fingerprint(stored: str) -> str:
    return hashlib.sha256(stored.encode("ascii", "replace")).hexdigest()[:32]


def hash_password(password: str, rounds: int = 12) -> str:
    """A storable hash of ``password`` (bcrypt over SHA-256, with its own salt)."""
    return _PREFIX + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash from :func:`hash_password` (constant time)."""
    if not stored.startswith(_PREFIX):
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored[len(_PREFIX) :].encode("ascii"))
    except ValueError:  # a damaged hash
        return False


@dataclass(frozen=True)
class Account:
    """An account as the UI and the CLI see it (never the password hash).

    Attributes:
        name: how the account signs in; also the agent's name customers see on replies.
        role: 'agent' or 'admin'.
        created_at: ISO 8601, UTC.
        password_changed_at: ISO 8601, UTC.
        last_sign_in: ISO 8601, UTC, or None if never.
        fingerprint: changes whenever the password does (a digest of its salted hash);
            a web session keeps it and ends when it no longer matches.
    """

    name: str
    role: Role
    created_at: str
    password_changed_at: str
    last_sign_in: str | None
    fingerprint: str = field(default="", repr=False)

    def public(self) -> dict[str, str | None]:
        """What ``supportbot users list --json`` shows."""
        return {
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "password_changed_at": self.password_changed_at,
            "last_sign_in": self.last_sign_in,
        }


class AccountStore:
    """Accounts in one SQLite file, and sign-in with a per-name lock after failures.

    Example:
        >>> accounts = AccountStore(Path(".supportbot/accounts.db"))
        >>> accounts.add("maria", "correct horse battery", "agent")
        >>> accounts.sign_in("maria", "correct horse battery").role
        'agent'
    """

    def __init__(
        self,
        path: Path | str,
        *,
        audit: AuditLog | None = None,
        max_failures: int = 5,
        lock_seconds: float = 30.0,
        rounds: int = 12,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.audit = audit
        self.max_failures = max(1, max_failures)
        self.lock_seconds = max(0.0, lock_seconds)
        self.rounds = rounds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._ready = False
        self._dummy: str | None = None

    # storage

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fresh = not self.path.exists()
                    with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
                        for statement in _SCHEMA:
                            db.execute(statement)
                    if fresh:
                        os.chmod(self.path, 0o600)
                    self._ready = True
        return sqlite3.connect(self.path, timeout=30)

    def _row(self, name: str) -> tuple[str, str, str, str, str, str | None] | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT name, role, password_hash, created_at, password_changed_at, "
                "last_sign_in FROM accounts WHERE name = ?",
                (name,),
            ).fetchone()
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _account(row: tuple[str, str, str, str, str, str | None]) -> Account:
        name, role, stored, created, changed, last = row
        role = role if role in ROLES else "agent"
        return Account(name, role, created, changed, last, _fingerprint(stored))

    def _record(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        if self.audit is not None:
            self.audit.record(actor, action, target, detail)

    # validation

    @staticmethod
    def check_name(name: object) -> str:
        """A valid account name, or :class:`AuthError` saying what is allowed."""
        if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
            raise AuthError(
                "An account name is 1 to 64 letters, digits or . _ @ + - (starting with a "
                "letter or digit), e.g. 'maria' or 'maria@example.com'."
            )
        return name.strip()

    @staticmethod
    def check_password_strength(password: object, name: str = "") -> str:
        """A password good enough to store, or :class:`AuthError` saying why not."""
        if not isinstance(password, str):
            raise AuthError("The password must be text.")
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise AuthError("The password holds characters that are not valid text.") from None
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"The password is too short: use at least {MIN_PASSWORD} characters.")
        if len(password) > MAX_PASSWORD:
            raise AuthError(f"The password is too long: use at most {MAX_PASSWORD} characters.")
        if name and password.casefold() == name.casefold():
            raise AuthError("The password must not be the account name.")
        return password

    @staticmethod
    def check_role(role: object) -> Role:
        """'agent' or 'admin', or :class:`AuthError`."""
        if role not in ROLES:
            raise AuthError(f"Unknown role {role!r}; use 'agent' or 'admin'.")
        return role

    # management (the CLI)

    def list(self) -> list[Account]:
        """Every account, by name."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT name, role, password_hash, created_at, password_changed_at, "
                "last_sign_in FROM accounts ORDER BY name COLLATE NOCASE"
            ).fetchall()
        return [self._account(r) for r in rows]

    def get(self, name: str) -> Account | None:
        """The account called ``name`` (any case), or None."""
        if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
            return None
        row = self._row(name.strip())
        return self._account(row) if row else None

    def add(self, name: str, password: str, role: Role, *, actor: str = "") -> Account:
        """Create an account.

        Raises:
            AuthError: the name is taken or invalid, the password too weak, the role unknown.
        """
        name = self.check_name(name)
        role = self.check_role(role)
        self.check_password_strength(password, name)
        digest = hash_password(password, self.rounds)
        now = _now()
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    "INSERT INTO accounts (name, role, password_hash, created_at, "
                    "password_changed_at) VALUES (?, ?, ?, ?, ?)",
                    (name, role, digest, now, now),
                )
        except sqlite3.IntegrityError:
            self.check_available(name)  # raises the "already exists" message
            raise
        self._record(actor or cli_actor(), "account_add", name, f"role {role}")
        return Account(name, role, now, now, None, _fingerprint(digest))

    def require(self, name: str) -> Account:
        """The account called ``name``, or :class:`AuthError` saying how to list them."""
        account = self.get(name)
        if account is None:
            raise AuthError(f"No account called {name!r}; list them with `supportbot users list`.")
        return account

    def check_available(self, name: str) -> str:
        """``name`` if it is valid and no account has it yet, or :class:`AuthError`."""
        name = self.check_name(name)
        if self.get(name) is not None:
            raise AuthError(
                f"An account called {name!r} already exists; change its password with "
                f"`supportbot users passwd {name}` or choose another name."
            )
        return name

    def _existing(self, name: str) -> str:
        return self.require(name).name

    def remove(self, name: str, *, actor: str = "") -> None:
        """Delete an account; its web sessions end at their next page update.

        Raises:
            AuthError: no such account.
        """
        name = self._existing(name)
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM accounts WHERE name = ?", (name,))
        self._record(actor or cli_actor(), "account_remove", name)

    def set_password(self, name: str, password: str, *, actor: str = "") -> None:
        """Change a password; web sessions signed in with the old one end.

        Raises:
            AuthError: no such account, or the password is too weak.
        """
        name = self._existing(name)
        self.check_password_strength(password, name)
        digest = hash_password(password, self.rounds)
        with closing(self._connect()) as db, db:
            db.execute(
                "UPDATE accounts SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                (digest, _now(), name),
            )
        with self._lock:
            self._failures.pop(name.casefold(), None)
        self._record(actor or cli_actor(), "account_password", name)

    def set_role(self, name: str, role: Role, *, actor: str = "") -> None:
        """Change an account's role (takes effect at the next page update).

        Raises:
            AuthError: no such account, or an unknown role.
        """
        name = self._existing(name)
        role = self.check_role(role)
        with closing(self._connect()) as db, db:
            db.execute("UPDATE accounts SET role = ? WHERE name = ?", (role, name))
        self._record(actor or cli_actor(), "account_role", name, f"role {role}")

    # sign-in (the web UI)

    def sign_in(self, name: str, password: str) -> Account:
        """The account, if ``password`` is right and the name is not locked.

        Raises:
            SignInRefused: wrong name or password (the same message either way), or the
                name is locked after too many failures (``retry_after`` seconds left).
        """
        typed = name.strip() if isinstance(name, str) else ""
        key = typed.casefold()[:128]
        dummy = self._dummy_hash()  # made before any lookup: unknown names cost the same
        now = self._clock()
        with self._lock:
            _, until = self._failures.get(key, (0, 0.0))
        if until > now:
            self._record(typed or "(empty)", "sign_in_failed", "", "locked")
            raise SignInRefused(self._locked(until - now), retry_after=until - now)
        row = self._row(typed) if _NAME.fullmatch(typed) else None
        stored = row[2] if row else dummy
        ok = check_password(password if isinstance(password, str) else "", stored)
        if row is not None and ok:
            with self._lock:
                self._failures.pop(key, None)
            when = _now()
            with closing(self._connect()) as db, db:
                db.execute("UPDATE accounts SET last_sign_in = ? WHERE name = ?", (when, row[0]))
            self._record(row[0], "sign_in", row[0])
            return self._account((*row[:5], when))
        locked_for = self._failed(key)
        self._record(typed or "(empty)", "sign_in_failed", "", "wrong name or password")
        if locked_for:
            raise SignInRefused(f"{_WRONG} {self._locked(locked_for)}", retry_after=locked_for)
        raise SignInRefused(_WRONG)

    def sign_out(self, name: str) -> None:
        """Record that ``name`` signed out (sessions themselves live in the web UI)."""
        self._record(name, "sign_out", name)

    def valid_session(self, name: str, fingerprint: str) -> Account | None:
        """The account behind a web session, or None if it was removed or its password changed.

        Args:
            name: the account the session signed in as.
            fingerprint: :attr:`Account.fingerprint` at sign-in.
        """
        account = self.get(name)
        if account is None or not hmac.compare_digest(account.fingerprint, fingerprint):
            return None
        return account

    def _failed(self, key: str) -> float:
        """Count a failure for ``key``; the lock's length when this failure starts one."""
        now = self._clock()
        with self._lock:
            count, _ = self._failures.pop(key, (0, 0.0))
            count += 1
            if count >= self.max_failures:
                self._failures[key] = (0, now + self.lock_seconds)
                locked = self.lock_seconds
            else:
                self._failures[key] = (count, 0.0)
                locked = 0.0
            while len(self._failures) > _MAX_TRACKED:
                self._failures.popitem(last=False)
        return locked

    def _locked(self, seconds: float) -> str:
        wait = max(1, round(seconds + 0.49))
        return (
            f"Too many failed sign-ins for this name: wait {wait} seconds, then try again "
            "(an administrator can reset the password with `supportbot users passwd`)."
        )

    def _dummy_hash(self) -> str:
        """A hash to check unknown names against, so they take as long as known ones."""
        if self._dummy is None:
            self._dummy = hash_password(os.urandom(16).hex(), self.rounds)
        return self._dummy
