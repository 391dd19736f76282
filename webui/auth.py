"""Sign-in for the agent console and the knowledge-base page (customers never sign in).

``ui.auth`` chooses how: ``local`` (the default, offline) checks a name and password
against the account store in the data folder (:mod:`supportbot.accounts`, accounts made
with ``supportbot users add``); ``oidc`` uses Streamlit's own OpenID Connect sign-in
(``st.login``, the provider configured in ``.streamlit/secrets.toml``) and takes the role
from ``ui.oidc_roles``. A page calls :func:`require` first and shows nothing else unless
it returns an identity allowed there: ``agent`` opens the console, ``admin`` the console
and the knowledge-base page.

A local session is kept in Streamlit's server-side session state (never in the URL or a
cookie) and re-checked on every page update: removing the account or changing its
password ends it. Sign-ins, failed ones, and sign-outs go to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from supportbot.accounts import AccountStore, Role, may_open
from supportbot.audit import AuditLog
from supportbot.config import Settings
from supportbot.errors import SignInRefused, SupportBotError
from supportbot.factory import build_accounts, build_audit
from webui.resources import md, web_settings

__all__ = ["Identity", "audit_log", "require", "security"]

SESSION_KEY = "supportbot_user"
_OIDC_SEEN = "supportbot_oidc_signed_in"
_PAGE_NAMES = {"agent": "the agent console", "kb": "the knowledge-base page"}


@dataclass(frozen=True)
class Identity:
    """Who is signed in: the account name (the agent's name on replies) and role."""

    name: str
    role: Role
    method: str  # 'local' or 'oidc'


@st.cache_resource(show_spinner=False)
def _security(
    accounts_path: str, audit_path: str, attempts: int, lock_seconds: float
) -> tuple[AccountStore, AuditLog]:
    """One account store per data folder and process (it holds the sign-in failure counts)."""
    del accounts_path, audit_path, attempts, lock_seconds  # the cache key
    settings = web_settings()
    audit = build_audit(settings)
    return build_accounts(settings, audit), audit


def security(settings: Settings | None = None) -> tuple[AccountStore, AuditLog]:
    """The process's account store and audit log for the configured data folder."""
    s = settings or web_settings()
    return _security(
        str(s.accounts_path), str(s.audit_path), s.ui.sign_in_attempts, s.ui.sign_in_lock_seconds
    )


def audit_log() -> AuditLog:
    """The audit log the pages write to."""
    return security()[1]


def require(page: str) -> Identity | None:
    """The signed-in identity if it may open ``page`` ('agent' or 'kb'); else None.

    When it returns None the page has shown why (a sign-in form, or that the account
    may not open this page) and must show nothing else.
    """
    try:
        settings = web_settings()
    except SupportBotError as exc:
        st.error(str(exc))
        return None
    if settings.ui.auth == "oidc":
        ident = _oidc_identity(settings)
    else:
        ident = _local_identity(settings)
    if ident is None:
        return None
    _sidebar(ident, settings)
    if not may_open(ident.role, page):
        st.warning(
            md(
                f"You are signed in as {ident.name} ({ident.role}); {_PAGE_NAMES.get(page, page)}"
                " is for administrators. Ask one to change your role if you need it."
            )
        )
        return None
    return ident


# local accounts


def _local_identity(settings: Settings) -> Identity | None:
    accounts, _ = security(settings)
    session: dict[str, Any] | None = st.session_state.get(SESSION_KEY)
    if session and session.get("method") == "local":
        account = accounts.valid_session(str(session["name"]), str(session["fingerprint"]))
        if account is not None:
            return Identity(account.name, account.role, "local")
        del st.session_state[SESSION_KEY]
        st.info("Your session ended: the account was removed or its password changed.")
    _sign_in_form(accounts)
    return None


def _sign_in_form(accounts: AccountStore) -> None:
    st.subheader("Sign in")
    st.caption("This page is for support staff. Customers: please use the chat.")
    with st.form("sign-in", clear_on_submit=True):
        name = st.text_input("Name", key="signin_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="signin_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", key="signin_submit")
    if submitted:
        try:
            account = accounts.sign_in(name, password)
        except SignInRefused as exc:
            st.error(str(exc))
            return
        st.session_state[SESSION_KEY] = {
            "method": "local",
            "name": account.name,
            "fingerprint": account.fingerprint,
        }
        st.rerun()
    elif not accounts.list():
        st.info(
            "There are no accounts yet. On the server, create one with "
            "`supportbot users add NAME --role admin`."
        )


# OpenID Connect (st.login)


def _oidc_identity(settings: Settings) -> Identity | None:
    user = st.user
    if not user.get("is_logged_in"):
        st.subheader("Sign in")
        st.caption("This page is for support staff. Customers: please use the chat.")
        if st.button("Sign in with your organisation's account", key="oidc_sign_in"):
            try:
                if settings.ui.oidc_provider:
                    st.login(settings.ui.oidc_provider)
                else:
                    st.login()
            except Exception as exc:  # noqa: BLE001 - misconfiguration is shown, not raised
                st.error(
                    f"Sign-in is not set up ({type(exc).__name__}): configure [auth] in "
                    ".streamlit/secrets.toml and install Authlib (pip install "
                    "'streamlit[auth]'), or set ui.auth = 'local'."
                )
        return None
    email = str(user.get("email") or "").strip()
    roles = {k.strip().casefold(): v for k, v in settings.ui.oidc_roles.items()}
    role = roles.get(email.casefold()) if user.get("email_verified") is not False else None
    if role is None:
        st.warning(
            md(
                f"You are signed in as {email or 'an account without an e-mail address'}, which "
                "has no role here. An administrator adds it to ui.oidc_roles."
            )
        )
        if st.button("Sign out", key="sign_out"):
            st.logout()
        return None
    name = str(user.get("name") or email)
    if not st.session_state.get(_OIDC_SEEN):
        st.session_state[_OIDC_SEEN] = True
        audit_log().record(email, "sign_in", email, f"oidc, role {role}")
    return Identity(name, role, "oidc")


# both


def _sidebar(ident: Identity, settings: Settings) -> None:
    st.sidebar.caption(md(f"Signed in as **{ident.name}** ({ident.role})"))
    if st.sidebar.button("Sign out", key="sign_out", icon=":material/logout:"):
        if ident.method == "oidc":
            audit_log().record(ident.name, "sign_out", ident.name, "oidc")
            st.session_state.pop(_OIDC_SEEN, None)
            st.logout()
        else:
            security(settings)[0].sign_out(ident.name)
            st.session_state.pop(SESSION_KEY, None)
            st.rerun()
