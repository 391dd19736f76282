"""The agent console: today's activity, and the hand-off queue with everything to act on it.

Agents see each hand-off with its reason codes, summary, redacted transcript, the
passages the bot tried and its draft reply; they claim it, reply (the reply appears in
the customer's chat), resolve it, or hand the conversation back to the bot. A hand-off
they answered can become an FAQ entry the bot serves, and the Gaps tab shows what
customers ask that the documents do not answer (:mod:`webui.gaps`). The page needs an
``agent`` or ``admin`` account (:mod:`webui.auth`); the agent's name on replies and in
the audit log is the account's.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from supportbot.desk import AgentDesk
from supportbot.handoff.packet import HandoffPacket
from supportbot.safety.redact import redact
from webui.auth import Identity, require
from webui.gaps import faq_from_handoff, gaps_tab
from webui.resources import friendly_errors, get_desk, md

_PRIORITY_BADGE = {
    "urgent": ":red-badge[urgent]",
    "high": ":orange-badge[high]",
    "normal": ":blue-badge[normal]",
    "low": ":gray-badge[low]",
}
_TABS = (("Open", ("open",)), ("Claimed", ("claimed",)), ("Closed", ("resolved", "handed_back")))


def _when(iso: str) -> str:
    try:
        local = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return local.strftime("%Y-%m-%d %H:%M")


def show_activity(desk: AgentDesk) -> None:
    """Counts for today and a chart of hand-offs by reason."""
    act = desk.activity()
    cols = st.columns(4)
    cols[0].metric("Conversations today", act.conversations)
    share = f"{act.answered / act.conversations:.0%}" if act.conversations else "-"
    cols[1].metric(
        "Answered by the bot",
        act.answered,
        f"{share} of conversations",
        delta_color="off",
        delta_arrow="off",
        help="Conversations the bot answered and never handed to a person.",
    )
    cols[2].metric("Escalated", act.escalated)
    rate = act.thumbs_up_rate
    cols[3].metric(
        "Thumbs up",
        "-" if rate is None else f"{rate:.0%}",
        f"{act.thumbs_up} up / {act.thumbs_down} down",
        delta_color="off",
        delta_arrow="off",
    )
    if act.by_reason:
        st.caption("Hand-offs today by reason")
        frame = pd.DataFrame(
            {"reason": list(act.by_reason), "hand-offs": list(act.by_reason.values())}
        )
        st.bar_chart(frame, x="reason", y="hand-offs", horizontal=True, height=200)


def _transcript(packet: HandoffPacket) -> None:
    for turn in packet.transcript:
        role = "user" if turn.get("role") == "user" else "assistant"
        with st.chat_message(role):
            st.markdown(md(str(turn.get("text", ""))))


def _since_handoff(desk: AgentDesk, packet: HandoffPacket) -> None:
    """Messages exchanged after the packet was built (redacted like the packet)."""
    created = datetime.fromisoformat(packet.created_at.replace("Z", "+00:00")).timestamp()
    later = desk.conversation(packet.conversation_id, since=created)
    if not later:
        return
    st.markdown("**Since the hand-off**")
    h = desk.settings.handoff
    for turn in later:
        text = redact(turn.text, desk.settings.public_values) if h.redact_pii else turn.text
        who = turn.meta.get("agent") or ("customer" if turn.role == "user" else "assistant")
        with st.chat_message("user" if turn.role == "user" else "assistant"):
            st.caption(md(str(who)))
            st.markdown(md(text))


def _details(packet: HandoffPacket) -> None:
    st.markdown(f"**Summary:** {md(packet.summary)}")
    for ev in packet.evidence:
        st.caption(md(f"{ev.get('reason')}: {ev.get('detail')}"))
    if packet.customer_fields:
        st.markdown(
            "**Customer details:** "
            + md(", ".join(f"{k}: {v}" for k, v in packet.customer_fields.items()))
        )
    st.markdown("**Transcript**")
    _transcript(packet)
    if packet.passages:
        st.markdown("**Passages the bot tried**")
        for p in packet.passages:
            label = " > ".join(str(x) for x in (p.get("title"), p.get("heading")) if x)
            st.markdown(
                md(f"- {label} ({p.get('source')}, score {p.get('score')})")
                + "\n\n"
                + "> "
                + md(str(p.get("snippet", ""))).replace("\n", "\n> ")
            )


def _actions(desk: AgentDesk, packet: HandoffPacket, agent: str) -> None:
    pid = packet.id
    if packet.status in ("open", "claimed"):
        with st.form(f"reply-{pid}", clear_on_submit=True, border=False):
            text = st.text_area(
                "Reply to the customer",
                value=packet.suggested_reply or "",
                key=f"reply-text-{pid}",
                help="Prefilled with the bot's draft when it had one.",
            )
            if st.form_submit_button("Send reply", icon=":material/send:") and text.strip():
                with friendly_errors("sending the reply"):
                    if packet.status == "open":
                        desk.claim(pid, agent)
                    desk.reply(pid, agent, text.strip())
                    st.rerun()
    cols = st.columns(3)
    if packet.status == "open" and cols[0].button("Claim", key=f"claim-{pid}"):
        with friendly_errors("claiming"):
            desk.claim(pid, agent)
            st.rerun()
    if packet.status in ("open", "claimed"):
        if cols[1].button("Resolve", key=f"resolve-{pid}"):
            with friendly_errors("resolving"):
                desk.resolve(pid, agent)
                st.rerun()
        if cols[2].button("Hand back to the bot", key=f"back-{pid}"):
            with friendly_errors("handing back"):
                desk.hand_back(pid, agent)
                st.rerun()


def _packet(desk: AgentDesk, packet: HandoffPacket, who: Identity, expanded: bool) -> None:
    badge = _PRIORITY_BADGE.get(packet.priority, "")
    owner = f" · {packet.agent}" if packet.agent else ""
    first = packet.summary.split(" | ")[0]
    first = first if len(first) <= 70 else first[:67].rsplit(" ", 1)[0] + "..."
    reasons = ", ".join(packet.reasons)
    title = f"#{packet.id[:8]} · {reasons} · {_when(packet.created_at)}{owner} · {first}"
    with st.expander(f"{badge} {md(title)}", expanded=expanded):
        st.caption(f"Priority {packet.priority} · status {packet.status.replace('_', ' ')}")
        _details(packet)
        _since_handoff(desk, packet)
        _actions(desk, packet, who.name)
        faq_from_handoff(who, packet)


def _dead_letters(desk: AgentDesk) -> None:
    """Webhook deliveries that failed for good, with a button to retry them now."""
    failed = desk.failed_deliveries()
    if failed:
        n = len(failed)
        st.warning(f"{n} hand-off(s) could not be delivered to the helpdesk webhook.")
        if st.button("Retry webhook deliveries"):
            with friendly_errors("retrying webhook deliveries"):
                sent = desk.retry_failed()
                st.success(f"Delivered {sent} of {n}.")


def console_page() -> None:
    """The page agents keep open (signed in as an agent or admin)."""
    st.title("Agent console")
    who = require("agent")
    if who is None:
        return
    desk = get_desk()
    if desk is None:
        return
    if st.sidebar.button("Refresh", icon=":material/refresh:"):
        st.rerun()
    show_activity(desk)
    _dead_letters(desk)
    packets = desk.handoffs()
    *tabs, gaps = st.tabs(
        [f"{name} ({sum(p.status in statuses for p in packets)})" for name, statuses in _TABS]
        + ["Gaps"]
    )
    with gaps:
        gaps_tab(who)
    for tab, (_, statuses) in zip(tabs, _TABS, strict=True):
        with tab:
            shown = [p for p in packets if p.status in statuses]
            if not shown:
                st.caption("Nothing here.")
            for i, packet in enumerate(shown):
                _packet(desk, packet, who, expanded=i == 0 and "resolved" not in statuses)
