"""What every page shares: settings and one set of services per server process.

The model, the embedder and the index are loaded once (``st.cache_resource``) and shared
by every browser session through :func:`supportbot.build`: the customer chat uses its
:class:`~supportbot.SupportBot`, the console its :class:`~supportbot.AgentDesk`, both over
one hand-off queue. They are safe to share (SQLite connections per thread, the
llama.cpp model behind a lock). Conversations are kept in SQLite so a browser refresh,
or a server restart, never loses them.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st

from supportbot.bot import SupportBot
from supportbot.config import Settings, load_settings
from supportbot.desk import AgentDesk
from supportbot.errors import SupportBotError
from supportbot.factory import Services, build
from supportbot.safety.render import safe_markdown

log = logging.getLogger("supportbot.webui")

T = TypeVar("T")


def _log_failure(action: str, exc: BaseException) -> None:
    """Log an unexpected error for the operator: where it happened, with PII redacted.

    An exception's message can quote the customer's text, so the message goes through
    :func:`supportbot.safety.redact.redact`; the stack frames (code locations) are logged as is.
    """
    from supportbot.safety.redact import redact

    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s failed: %s: %s\n%s", action, type(exc).__name__, redact(str(exc)), frames)


def keep_streamlit_offline() -> None:
    """Stop Streamlit's own look-ups of the machine's addresses.

    Streamlit asks checkip.amazonaws.com for the external IP address (for its banner and
    as a fallback when checking a browser's origin) and "connects" a UDP socket to
    8.8.8.8 to learn the internal one. Neither is needed: the banner is off because
    ``browser.serverAddress`` is set in ``.streamlit/config.toml``, and pre-filling both
    caches here means the origin check never makes those calls either.
    """
    from streamlit import net_util

    net_util._external_ip = ""  # noqa: SLF001
    if net_util._internal_ip is None:  # noqa: SLF001
        net_util._internal_ip = "127.0.0.1"  # noqa: SLF001


def web_settings() -> Settings:
    """Settings from ``supportbot.toml`` / ``SUPPORTBOT_*``, with SQLite conversations.

    The web UI always keeps conversations in SQLite: the conversation id in the URL is
    only useful if its history is still there after a reload.
    """
    settings = load_settings()
    if settings.conversation.backend != "sqlite":
        conv = settings.conversation.model_copy(update={"backend": "sqlite"})
        settings = settings.model_copy(update={"conversation": conv})
    return settings


@st.cache_resource(show_spinner="Loading the knowledge base and the model...")
def shared_services() -> Services:
    """The process-wide services (built on first use, then shared by every session).

    The bot's models, keyword index and PII detector are loaded in the background
    (:meth:`SupportBot.warm_up`), so the first customer does not wait for them.
    """
    services = build(web_settings())
    threading.Thread(
        target=_warm, args=(services.bot,), name="supportbot-warm-up", daemon=True
    ).start()
    return services


def md(text: str) -> str:
    """:func:`~supportbot.safety.render.safe_markdown` with the configured link allowlist."""
    return safe_markdown(text, _link_hosts())


@st.cache_data(ttl=60, show_spinner=False)
def _link_hosts() -> tuple[str, ...]:
    try:
        return tuple(web_settings().render.allowed_link_hosts)
    except SupportBotError:  # a broken config must not stop display; no links is safe
        return ()


def _warm(bot: SupportBot) -> None:
    try:
        bot.warm_up()
    except Exception as exc:  # noqa: BLE001 - the first real question will report it
        log.warning("warming up failed (%s); the first question will retry", type(exc).__name__)


def get_services() -> Services | None:
    """The shared services, or None after showing the user why they could not be built."""
    try:
        return shared_services()
    except SupportBotError as exc:
        st.error(f"The assistant could not start: {exc}")
    except Exception as exc:  # noqa: BLE001 - the page shows a message, never a trace
        _log_failure("building the bot", exc)
        st.error(
            f"The assistant could not start ({type(exc).__name__}: {exc}). Check the server "
            "log and the settings (supportbot.toml or SUPPORTBOT_* variables), then reload."
        )
    return None


def get_bot() -> SupportBot | None:
    """The shared customer-side bot, or None (the reason already shown)."""
    services = get_services()
    return services.bot if services else None


def get_desk() -> AgentDesk | None:
    """The shared agent desk, or None (the reason already shown)."""
    services = get_services()
    return services.desk if services else None


@contextmanager
def friendly_errors(action: str) -> Iterator[None]:
    """Show any error from ``action`` as a message in the page instead of a stack trace.

    Errors supportbot raises on purpose already say what to do; anything else is logged
    with its trace on the server and summarised for the user.
    """
    try:
        yield
    except SupportBotError as exc:
        st.warning(str(exc))
    except Exception as exc:  # noqa: BLE001 - the page shows a message, never a trace
        _log_failure(action, exc)
        st.error(
            f"Sorry, {action} failed ({type(exc).__name__}). The details are in the server "
            "log; please try again."
        )
