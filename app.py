"""The supportbot web UI: ``streamlit run app.py`` (after ``supportbot ingest kb/docs``).

Three pages: the customer chat, the agent console and the knowledge base. Settings come
from ``supportbot.toml`` and ``SUPPORTBOT_*`` variables, as for the CLI; Streamlit's own
settings (headless, port, no usage statistics) are in ``.streamlit/config.toml``.
"""

from __future__ import annotations

import streamlit as st

from webui.chat import chat_page
from webui.console import console_page
from webui.knowledge import knowledge_page

st.set_page_config(page_title="Support chat", page_icon=":material/support_agent:")
page = st.navigation(
    [
        st.Page(chat_page, title="Chat", icon=":material/chat:", url_path="chat", default=True),
        st.Page(
            console_page, title="Agent console", icon=":material/support_agent:", url_path="agent"
        ),
        st.Page(knowledge_page, title="Knowledge base", icon=":material/menu_book:", url_path="kb"),
    ]
)
page.run()
