"""The knowledge-base page: add documents (upload or a server folder), list, remove, search.

Ingestion runs the same incremental pipeline as ``supportbot ingest``, with the shared
services' embedder and store, so new documents are searchable by every session as soon as
the run ends (the keyword index refreshes itself when the store changes).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import streamlit as st

from ingest.load import SUPPORTED_SUFFIXES
from ingest.pipeline import FileResult, IngestReport, Progress, run_ingest
from ingest.remove import remove_document
from supportbot.factory import Services
from webui.resources import friendly_errors, get_services, md


class _BarProgress(Progress):
    """Feeds ingest progress into a Streamlit progress bar."""

    def __init__(self) -> None:
        self.bar = st.progress(0.0, text="Looking for files...")
        self.total = 0
        self.done = 0

    def start(self, total_files: int) -> None:
        self.total = total_files

    def file_done(self, result: FileResult) -> None:
        self.done += 1
        share = self.done / self.total if self.total else 1.0
        self.bar.progress(min(share, 1.0), text=f"{self.done}/{self.total}: {result.source}")


def uploads_dir(kb: Services) -> Path:
    """Where uploaded files are kept (they are ingested from there, like any folder)."""
    return kb.settings.data_dir / "uploads"


def _safe_name(name: str) -> str:
    """A plain file name: no folders, no leading dots, nothing the shell would trip on."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]+", "_", base).lstrip(". ")
    return base[:120] or "upload"


def show_report(report: IngestReport) -> None:
    """The outcome of a run: counts, each failed file with what to do, the file table."""
    counts = ", ".join(
        f"{report.count(s)} {s}"
        for s in ("added", "updated", "unchanged", "removed", "failed", "skipped")
        if report.count(s)
    )
    msg = f"Ingest finished in {report.seconds:.1f} s: {counts or 'nothing to do'}."
    (st.success if report.ok else st.warning)(msg)
    for f in report.failed:
        st.error(md(f"{f.source}: {f.reason}"))
    for w in report.warnings:
        st.caption(md(w))
    if report.files:
        st.dataframe(
            pd.DataFrame(
                [
                    {"file": f.source, "status": f.status, "chunks": f.chunks, "note": f.reason}
                    for f in report.files
                ]
            ),
            hide_index=True,
        )


def _ingest(kb: Services, folder: Path) -> None:
    with friendly_errors("ingesting"):
        report = run_ingest(
            [folder],
            kb.settings,
            embedder=kb.embedder,
            store=kb.store,
            progress=_BarProgress(),
        )
        show_report(report)


def _add_documents(kb: Services) -> None:
    kinds = sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
    files = st.file_uploader("Upload manuals or FAQ files", type=kinds, accept_multiple_files=True)
    if st.button("Ingest uploaded files", disabled=not files, icon=":material/upload:"):
        dest = uploads_dir(kb)
        dest.mkdir(parents=True, exist_ok=True)
        for f in files or []:
            (dest / _safe_name(f.name)).write_bytes(f.getvalue())
        _ingest(kb, dest)
    st.divider()
    folder = st.text_input(
        "Or ingest a folder on the server", placeholder="/srv/manuals or kb/docs"
    ).strip()
    if st.button("Ingest folder", icon=":material/folder_open:"):
        path = Path(folder).expanduser()
        if not folder:
            st.error("Type the path of a folder on the server first, e.g. kb/docs.")
        elif not path.exists():
            st.error(f"{path} does not exist on the server. Check the path and try again.")
        else:
            _ingest(kb, path)


def _documents(kb: Services) -> None:
    files = kb.store.files()
    if not files:
        st.info("No documents yet. Add some on the first tab, or run `supportbot ingest kb/docs`.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "document": r.source,
                    "chunks": r.chunk_count,
                    "last ingested": r.ingested_at,
                    "size (kB)": round(r.size / 1024, 1),
                }
                for r in sorted(files.values(), key=lambda r: r.source)
            ]
        ),
        hide_index=True,
    )
    st.caption(f"{len(files)} documents, {kb.store.count()} chunks in all.")
    source = st.selectbox("Remove a document", sorted(files), index=None, placeholder="Choose")
    if st.button("Remove", disabled=source is None, icon=":material/delete:") and source:
        with friendly_errors("removing the document"):
            n = remove_document(source, kb.settings, kb.store)
            note = ""
            root = files[source].root  # the folder it was ingested from
            if root and Path(root).resolve() == uploads_dir(kb).resolve():
                (uploads_dir(kb) / source).unlink(missing_ok=True)
            else:
                note = " If its folder is ingested again it comes back; delete the file there too."
            st.success(f"Removed {source} ({n} chunks).{note}")


def _search(kb: Services) -> None:
    query = st.text_input("See what the bot would retrieve for a question").strip()
    if not query:
        return
    with friendly_errors("searching"):
        plan = kb.bot.plan(query)
        found = plan.retrieval
        if plan.decision.escalate:
            reasons = ", ".join(r.value for r in plan.decision.reasons)
            st.warning(
                f"The bot would hand this question to a person ({reasons}); best passage "
                f"score {found.top_score:.2f}."
            )
        if found.faq_hit is not None:
            q = found.faq_hit.extra.get("faq_question_cosine", 0.0)
            st.caption(f"Closest FAQ entry: {found.faq_hit.chunk.heading} (similarity {q:.2f})")
        for hit in found.hits:
            c = hit.chunk
            label = " > ".join(p for p in (c.title, c.heading) if p)
            page = f", page {c.page}" if c.page else ""
            st.markdown(md(f"**{hit.score:.2f}** · {label} ({c.source}{page})"))
            st.markdown("> " + md(c.text[:600]).replace("\n", "\n> "))


def knowledge_page() -> None:
    """Manage what the bot knows."""
    st.title("Knowledge base")
    kb = get_services()
    if kb is None:
        return
    add, docs, search = st.tabs(["Add documents", "Documents", "Search"])
    with add:
        _add_documents(kb)
    with docs:
        _documents(kb)
    with search:
        _search(kb)
