"""The customer chat page: streamed answers with their sources, thumbs, and a way to a human.

The conversation id lives in the URL (``?c=...``) and its turns in the SQLite
conversation store, so a reload shows the same conversation, and each browser session
has its own. Every text shown (the customer's, the bot's, an agent's, a source snippet)
goes through :func:`supportbot.safety.render.safe_markdown`: no HTML, script or remote image
from a model or a document ever renders.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import streamlit as st

from supportbot.bot import SupportBot
from supportbot.conversation import Turn
from supportbot.types import BOT_ANSWER_MODES, Reply
from webui.resources import friendly_errors, get_bot, md

_ID = re.compile(r"^[0-9a-f]{32}$")
BOT_AVATAR = ":material/smart_toy:"
AGENT_AVATAR = ":material/support_agent:"
USER_AVATAR = ":material/person:"

_MODE_NOTES = {
    "extract": "I wasn't confident enough to write my own answer, so this quotes the "
    "documentation directly.",
    "none": "I found nothing on this in the documentation.",
}


def conversation_id() -> str:
    """This browser session's conversation id, from the URL or a new one put there."""
    current = st.query_params.get("c", "")
    if isinstance(current, str) and _ID.fullmatch(current):
        return current
    new = uuid.uuid4().hex
    st.query_params["c"] = new
    return new


def _sources(sources: list[dict[str, Any]], key: str) -> None:
    """Each cited section once ("[1, 2] Guide > Section"), its snippets in an expander.

    Two passages of the same section are often both cited; listing the section twice
    would look like two sources.
    """
    sections: dict[str, list[dict[str, Any]]] = {}
    for src in sources:
        label = str(src.get("label") or src.get("source", ""))
        sections.setdefault(label, []).append(src)
    for label, group in sections.items():
        numbers = ", ".join(str(s.get("n", "?")) for s in group)
        with st.expander(f"[{numbers}] {md(label)}", icon=":material/description:"):
            first = group[0]
            where = str(first.get("source", ""))
            if first.get("page"):
                where += f", page {first['page']}"
            st.caption(md(where))
            for src in group:
                st.markdown(md(str(src.get("snippet", ""))))
            section = next((str(s["section"]) for s in group if s.get("section")), "")
            if section and st.toggle("Show the whole section", key=f"section-{key}-{label}"):
                st.markdown(md(section))


def _on_feedback(bot: SupportBot, conv_id: str, index: int, key: str) -> None:
    value = st.session_state.get(key)
    if value is not None:
        bot.feedback(conv_id, helpful=value == 1, turn=index)


def _assistant_turn(bot: SupportBot, conv_id: str, index: int, turn: Turn) -> None:
    agent = turn.meta.get("agent")
    with st.chat_message("assistant", avatar=AGENT_AVATAR if agent else BOT_AVATAR):
        if agent:
            st.caption(md(f"{agent} (support agent)"))
        mode = turn.meta.get("mode")
        if mode == "handoff":
            st.info(md(turn.text), icon=":material/support_agent:")
            return
        st.markdown(md(turn.text))
        if mode in _MODE_NOTES:
            st.caption(_MODE_NOTES[mode])
        _sources(turn.meta.get("sources") or [], f"{conv_id}-{index}")
        if mode in BOT_ANSWER_MODES:
            key = f"fb-{conv_id}-{index}"
            stored = turn.meta.get("feedback")
            if key not in st.session_state and stored in ("up", "down"):
                st.session_state[key] = 1 if stored == "up" else 0
            st.feedback("thumbs", key=key, on_change=_on_feedback, args=(bot, conv_id, index, key))


def show_history(bot: SupportBot, conv_id: str) -> None:
    """Every turn of the conversation, oldest first (agent replies included)."""
    for index, turn in enumerate(bot.history(conv_id)):
        if turn.role == "user":
            with st.chat_message("user", avatar=USER_AVATAR):
                st.markdown(md(turn.text))
        else:
            _assistant_turn(bot, conv_id, index, turn)
    handoff = bot.open_handoff(conv_id)
    if handoff is not None:
        who = f"{handoff.agent} has joined and" if handoff.agent else "A support agent"
        st.info(
            f"{who} will take it from here; your reference is #{handoff.id[:8]}. "
            "Replies appear here as they are sent.",
            icon=":material/support_agent:",
        )


def _answer(bot: SupportBot, conv_id: str, question: str) -> Reply | None:
    """Stream the answer into the page; the final, verified text replaces the draft."""
    with st.chat_message("user", avatar=USER_AVATAR):
        st.markdown(md(question))
    with st.chat_message("assistant", avatar=BOT_AVATAR):
        box = st.empty()
        box.markdown("_Looking in the documentation..._")
        reply: Reply | None = None
        stopped = True
        try:
            with friendly_errors("answering"):
                text = ""
                for item in bot.stream(question, conv_id):
                    if isinstance(item, Reply):
                        reply = item
                    else:
                        text += item
                        box.markdown(md(text) + " ▌")
            stopped = False
        finally:
            if stopped and reply is None:
                # The customer sent another message (or left) while this one was being
                # answered, and Streamlit stopped this run: keep the question, so the
                # conversation still reads right after the next answer.
                limit = bot.settings.conversation.max_question_chars
                bot.restore(conv_id, [Turn("user", question[:limit], meta={"interrupted": True})])
        if reply is None:
            box.empty()
            return None
        box.markdown(md(reply.answer))
    return reply


def chat_page() -> None:
    """The customer's conversation with the bot (and, after a hand-off, with an agent)."""
    bot = get_bot()
    if bot is None:
        return
    ui = bot.settings.ui
    st.title(ui.title)
    conv_id = conversation_id()
    if bot.indexed_chunks() == 0:
        st.warning(
            "The knowledge base is empty, so the assistant cannot answer yet. Add documents "
            "on the Knowledge base page, or run `supportbot ingest kb/docs`."
        )
    left, right = st.columns([1, 1])
    if left.button("Talk to a person", icon=":material/support_agent:"):
        with friendly_errors("handing over"):
            bot.escalate(conv_id, "HUMAN_REQUESTED", note="pressed 'Talk to a person'")
    if right.button("New conversation", icon=":material/add_comment:"):
        st.query_params["c"] = uuid.uuid4().hex
        st.rerun()

    open_handoff = bot.open_handoff(conv_id)
    if open_handoff is not None:
        # While an agent owns the conversation, poll for their replies.
        st.fragment(run_every=ui.poll_seconds)(show_history)(bot, conv_id)
    else:
        show_history(bot, conv_id)
    for notice in st.session_state.pop("notices", []):
        st.caption(notice)

    question = st.chat_input(ui.placeholder)
    if question:
        reply = _answer(bot, conv_id, question)
        if reply is not None:
            st.session_state["notices"] = list(reply.notices)
            st.rerun()
