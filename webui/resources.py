"""What every page shares: settings and one :class:`SupportBot` per server process.

The model, the embedder and the index are loaded once (``st.cache_resource``) and shared
by every browser session; the bot is safe to share (SQLite connections per thread, the
llama.cpp model behind a lock). Conversations are kept in SQLite so a browser refresh,
or a server restart, never loses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st

from supportbot.api import SupportBot
from supportbot.config import Settings, load_settings
from supportbot.errors import SupportBotError

log = logging.getLogger("supportbot.webui")

T = TypeVar("T")


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
def shared_bot() -> SupportBot:
    """The process-wide bot (built on first use, then shared by every session)."""
    return SupportBot.from_settings(web_settings())


def get_bot() -> SupportBot | None:
    """The shared bot, or None after showing the user why it could not be built."""
    try:
        return shared_bot()
    except SupportBotError as exc:
        st.error(f"The assistant could not start: {exc}")
    except Exception as exc:  # noqa: BLE001 - the page shows a message, never a trace
        log.exception("building the bot failed")
        st.error(
            f"The assistant could not start ({type(exc).__name__}: {exc}). Check the server "
            "log and the settings (supportbot.toml or SUPPORTBOT_* variables), then reload."
        )
    return None


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
        log.exception("%s failed", action)
        st.error(
            f"Sorry, {action} failed ({type(exc).__name__}). The details are in the server "
            "log; please try again."
        )


def guarded(action: str, fn: Callable[[], T]) -> T | None:
    """Run ``fn`` inside :func:`friendly_errors`; None when it failed."""
    with friendly_errors(action):
        return fn()
    return None
