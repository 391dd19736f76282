"""The supportbot web UI: ``streamlit run app.py`` (after ``supportbot ingest kb/docs``).

Three pages: the customer chat, the agent console and the knowledge base (``ui.pages``
chooses which this process serves, so customers can get a chat-only process). Settings
come from ``supportbot.toml`` and ``SUPPORTBOT_*`` variables, as for the CLI; Streamlit's
own settings (headless, port, localhost only, no usage statistics) are in
``.streamlit/config.toml``. The console and the knowledge-base page ask for a sign-in
(``webui/auth.py``; create accounts with ``supportbot users add``); the chat never does.
"""

from __future__ import annotations

import streamlit as st

from supportbot.errors import SupportBotError
from webui.chat import chat_page
from webui.console import console_page
from webui.knowledge import knowledge_page
from webui.resources import keep_streamlit_offline, web_settings

keep_streamlit_offline()

PAGES = {
    "chat": st.Page(chat_page, title="Chat", icon=":material/chat:", url_path="chat"),
    "agent": st.Page(
        console_page, title="Agent console", icon=":material/support_agent:", url_path="agent"
    ),
    "kb": st.Page(
        knowledge_page, title="Knowledge base", icon=":material/menu_book:", url_path="kb"
    ),
}

st.set_page_config(page_title="Support chat", page_icon=":material/support_agent:")
try:
    wanted = web_settings().ui.pages
except SupportBotError as exc:
    st.error(str(exc))
    st.stop()
page = st.navigation(
    [PAGES[name] for name in dict.fromkeys(wanted)] or [PAGES["chat"]],
    position="sidebar" if len(wanted) > 1 else "hidden",
)
page.run()
