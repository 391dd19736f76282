"""The agent console's Gaps tab, and turning an agent's reply into the bot's answer.

The tab shows what customers ask that the documents do not answer (questions handed over
for want of an answer, answers rated down, questions agents answered), grouped by meaning,
most asked first, with a chart of gaps over time. Under each gap, and under every
hand-off an agent replied to, an agent turns the question and the reply into an FAQ
entry: both fields are editable, the PII-redacted text customers will see is shown with
what redaction removed, and saving approves it (``gaps.approve_role``: agents, or admins
only) or keeps a draft, which is never served. Approved entries are indexed at once
(``ingest/answers.py``); who approved what, and when, is in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import streamlit as st

from ingest.answers import publish
from supportbot.factory import Services
from supportbot.gaps import AgentAnswer, GapReport, redact_shown
from supportbot.handoff.packet import HandoffPacket
from webui.auth import Identity
from webui.resources import friendly_errors, get_services, md

SHOWN_GAPS = 25
"""Gaps listed with their examples (the table lists them all)."""


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d")


def may_approve(services: Services, who: Identity) -> bool:
    """Whether ``who`` may approve an agent answer (``gaps.approve_role``)."""
    return services.settings.gaps.approve_role == "agent" or who.role == "admin"


def entry_form(
    services: Services,
    who: Identity,
    key: str,
    question: str,
    answer: str,
    also_asked: Sequence[str] = (),
    handoff: str = "",
    gap: str = "",
) -> None:
    """Question and answer, editable; the redacted text shown; approve or save a draft."""
    answers = services.answers
    assert answers is not None
    q = st.text_input("Question", value=question, key=f"faq-q-{key}")
    a = st.text_area("Answer customers will get", value=answer, key=f"faq-a-{key}", height=150)
    shown_q, shown_a = redact_shown(q, answers.allow), redact_shown(a, answers.allow)
    removed = sorted(set(shown_q.removed + shown_a.removed))
    st.caption(
        "What is saved, personal data redacted"
        + (f" (removed: {', '.join(removed)})" if removed else " (nothing to remove)")
        + ":"
    )
    st.markdown(f"**{md(shown_q.text)}**\n\n" + md(shown_a.text))
    wordings = list(also_asked)
    if wordings:
        wordings = st.multiselect(
            "Customers' wordings it answers (untick any that ask something else)",
            options=wordings,
            default=wordings,
            key=f"faq-w-{key}",
        )
    approver = may_approve(services, who)
    cols = st.columns(2)
    approve = approver and cols[0].button(
        "Approve and publish", key=f"faq-approve-{key}", icon=":material/verified:"
    )
    draft = cols[1].button("Save as draft", key=f"faq-draft-{key}")
    if not approver:
        st.caption("Only administrators approve answers here; a draft waits for one.")
    if approve or draft:
        with friendly_errors("saving the answer"):
            entry = answers.save(
                q,
                a,
                actor=who.name,
                approve=bool(approve),
                also_asked=wordings,
                written_by=who.name,
                handoff=handoff,
                gap=gap,
            )
            _published(services, entry)


def _published(services: Services, entry: AgentAnswer) -> None:
    """Index the managed FAQ now and say what happened."""
    done = publish(services.settings, embedder=services.embedder, store=services.store)
    verb = "Approved" if entry.approved else "Saved as a draft (not served)"
    st.success(md(f"{verb}: {entry.question}. {done.describe()}"))


def faq_from_handoff(desk_agent: Identity, packet: HandoffPacket) -> None:
    """Under a hand-off an agent replied to: make the question and reply an FAQ entry."""
    services = get_services()
    if services is None or services.gaps is None:
        return
    asked = services.gaps.from_handoff(packet)
    if asked is None or not asked.agent_reply:
        return
    if st.toggle("Turn this question and the reply into an FAQ entry", key=f"faq-{packet.id}"):
        entry_form(
            services, desk_agent, f"h-{packet.id}", asked.text, asked.agent_reply, handoff=packet.id
        )


def _chart(report: GapReport) -> None:
    rows = report.timeline(top=5)
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["day", "gap", "questions"])
    st.caption("Unanswered questions per day (UTC), the five most asked gaps")
    st.bar_chart(frame, x="day", y="questions", color="gap", stack=True, height=240)


def _answers(services: Services, who: Identity) -> None:
    """The managed FAQ: approve drafts, edit or remove entries."""
    answers = services.answers
    assert answers is not None
    entries = answers.entries()
    st.markdown(f"**Agent answers** ({len(entries)})")
    if not entries:
        st.caption("None yet: make one from a gap above, or from a hand-off you answered.")
        return
    approver = may_approve(services, who)
    for e in entries:
        state = f"approved by {e.approved_by} {e.approved_at}" if e.approved else "draft"
        with st.expander(md(f"{e.question} · {state}")):
            q = st.text_input("Question", value=e.question, key=f"ans-q-{e.id}")
            a = st.text_area("Answer", value=e.answer, key=f"ans-a-{e.id}")
            cols = st.columns(3)
            save = approver and cols[0].button("Save and approve", key=f"ans-save-{e.id}")
            if not e.approved and approver and cols[1].button("Approve", key=f"ans-ok-{e.id}"):
                with friendly_errors("approving the answer"):
                    _published(services, answers.approve(e.id, who.name))
            if approver and cols[2].button("Remove", key=f"ans-rm-{e.id}"):
                with friendly_errors("removing the answer"):
                    answers.remove(e.id, who.name)
                    done = publish(
                        services.settings, embedder=services.embedder, store=services.store
                    )
                    st.success(md(f"Removed: {e.question}. {done.describe()}"))
            if save:
                with friendly_errors("saving the answer"):
                    _published(services, answers.edit(e.id, who.name, question=q, answer=a))


def gaps_tab(who: Identity) -> None:
    """The Gaps tab: the report, most asked first; FAQ entries from gaps; agent answers."""
    services = get_services()
    if services is None or services.gaps is None:
        return
    with friendly_errors("building the gap report"):
        report = services.gaps.report()
        days = services.settings.gaps.since_days
        st.caption(
            f"{report.questions} unanswered question(s) in {len(report.gaps)} gap(s)"
            + (f" over the last {days} days" if days else "")
            + ": handed over for want of an answer, rated down, or answered by an agent."
        )
        if report.gaps:
            _chart(report)
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "gap": g.label,
                            "customers": g.customers,
                            "asked": g.asked,
                            "first seen": _day(g.first_seen),
                            "last seen": _day(g.last_seen),
                            "agent answered": g.answered_by_agent,
                            "in the FAQ": bool(g.entry),
                        }
                        for g in report.gaps
                    ]
                ),
                hide_index=True,
            )
        for gap in report.gaps[:SHOWN_GAPS]:
            marks = " · answered by an agent" if gap.answered_by_agent else ""
            marks += " · in the FAQ" if gap.entry else ""
            with st.expander(md(f"{gap.customers} customer(s) · {gap.label}{marks}")):
                st.markdown("\n".join(f"- {md(x)}" for x in gap.examples))
                st.caption(f"First asked {_day(gap.first_seen)}, last {_day(gap.last_seen)}.")
                replies = gap.agent_replies()
                if gap.entry:
                    st.caption(f"Answered by the bot from agent answer {gap.entry}.")
                elif st.toggle("Answer it: make an FAQ entry", key=f"gap-{gap.id}"):
                    entry_form(
                        services,
                        who,
                        f"g-{gap.id}",
                        gap.label,
                        replies[0].agent_reply if replies else "",
                        also_asked=gap.wordings[: services.settings.gaps.also_asked + 1],
                        handoff=(replies[0].handoff_id or "") if replies else "",
                        gap=gap.label,
                    )
    st.divider()
    with friendly_errors("listing agent answers"):
        _answers(services, who)
