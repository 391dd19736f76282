"""The knowledge-base page: add documents (upload or a server folder), list, remove, search.

Ingestion runs the same incremental pipeline as ``supportbot ingest``, with the shared
services' embedder and store, so new documents are searchable by every session as soon as
the run ends (the keyword index refreshes itself when the store changes).

The page needs an ``admin`` account (:mod:`webui.auth`). It reads files only under its
allowed roots: the uploads folder and ``ingest.allowed_roots`` (default ``kb/`` in the
working directory). A folder is chosen from those roots and their subfolders, never typed;
it is resolved (symlinks followed) and checked again before ingesting, and a folder
holding links that lead outside the roots is refused. Ingests, removals and the audit
log itself are shown to admins; every ingest and removal is recorded there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from ingest.load import SUPPORTED_SUFFIXES
from ingest.pipeline import FileResult, IngestReport, Progress, run_ingest
from ingest.quarantine import list_quarantined, release
from ingest.remove import remove_document
from supportbot.config import Settings
from supportbot.errors import IngestError
from supportbot.factory import Services
from webui.auth import Identity, audit_log, require
from webui.resources import friendly_errors, get_services, md

MAX_DEPTH = 4
"""Subfolder levels below a root offered as ingest folders."""
MAX_FOLDERS = 300
"""Most folders offered (the first ones in name order)."""


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


def allowed_roots(settings: Settings) -> list[Path]:
    """The folders this page may read, resolved: uploads first, then ``ingest.allowed_roots``.

    Unset, ``ingest.allowed_roots`` means ``kb/`` in the working directory when it exists;
    relative roots are taken from the working directory. Roots that do not exist (other
    than the uploads folder, made on the first upload) are left out.
    """
    configured = settings.ingest.allowed_roots
    if configured is None:
        configured = [Path("kb")] if Path("kb").is_dir() else []
    roots = [(settings.data_dir / "uploads").resolve()]
    for root in configured:
        path = Path(root).expanduser().resolve()
        if path.is_dir() and path not in roots:
            roots.append(path)
    return roots


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, resolved (symlinks followed), is one of ``roots`` or below one."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return any(real == root or real.is_relative_to(root) for root in roots)


def checked_folder(path: Path | str, roots: Sequence[Path]) -> Path:
    """``path`` resolved, if it is an existing folder under ``roots`` with no way out.

    Raises:
        IngestError: ``..`` in the path, not a folder, outside the roots, or links inside
            it that lead outside them. The message names neither the path nor any file.
    """
    raw = Path(path)
    if ".." in raw.parts:
        raise IngestError("Folder paths with '..' are not accepted; choose a folder from the list.")
    if not inside(raw, roots) or not raw.resolve().is_dir():
        raise IngestError(
            "That folder is not one this page may read: choose one from the list (the uploads "
            "folder and ingest.allowed_roots, with their subfolders)."
        )
    real = raw.resolve()
    leaving = links_leaving(real, roots)
    if leaving:
        raise IngestError(
            f"This folder holds {leaving} link(s) to places outside the allowed folders, so it "
            "was not ingested. Remove the links, or ingest it with `supportbot ingest` on the "
            "server."
        )
    return real


def links_leaving(folder: Path, roots: Sequence[Path]) -> int:
    """How many entries under ``folder`` (any depth) are links resolving outside ``roots``."""
    count = 0
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            entry = Path(here) / name
            if entry.is_symlink() and not inside(entry, roots):
                count += 1
    return count


def _label(path: Path, uploads: Path) -> str:
    if path == uploads:
        return "uploads"
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return path.as_posix()


def folder_choices(roots: Sequence[Path]) -> dict[str, Path]:
    """Label -> folder: each existing root and its subfolders, for the folder list.

    Hidden folders, folders deeper than :data:`MAX_DEPTH`, and folders (or links) that
    resolve outside the roots are not offered; at most :data:`MAX_FOLDERS`.
    """
    choices: dict[str, Path] = {}
    uploads = roots[0] if roots else None
    for root in roots:
        if not root.is_dir():
            continue
        base = _label(root, uploads) if uploads else root.as_posix()
        for here, dirs, _ in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            path = Path(here)
            rel = path.relative_to(root)
            if len(rel.parts) >= MAX_DEPTH:
                dirs[:] = []
            if not inside(path, roots) or path.is_symlink():
                continue
            label = base if not rel.parts else f"{base}/{rel.as_posix()}"
            choices.setdefault(label, path)
            if len(choices) >= MAX_FOLDERS:
                return choices
    return choices


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


def _ingest(kb: Services, who: Identity, folder: Path, label: str, note: str = "") -> None:
    with friendly_errors("ingesting"):
        real = checked_folder(folder, allowed_roots(kb.settings))
        report = run_ingest(
            [real],
            kb.settings,
            embedder=kb.embedder,
            store=kb.store,
            progress=_BarProgress(),
        )
        counts = ", ".join(
            f"{report.count(s)} {s}"
            for s in ("added", "updated", "removed", "failed")
            if report.count(s)
        )
        audit_log().record(who.name, "ingest", label, "; ".join(x for x in (counts, note) if x))
        show_report(report)


def _add_documents(kb: Services, who: Identity) -> None:
    kinds = sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
    files = st.file_uploader("Upload manuals or FAQ files", type=kinds, accept_multiple_files=True)
    if st.button("Ingest uploaded files", disabled=not files, icon=":material/upload:"):
        dest = uploads_dir(kb)
        dest.mkdir(parents=True, exist_ok=True)
        names = [_safe_name(f.name) for f in files or []]
        for f, name in zip(files or [], names, strict=True):
            (dest / name).write_bytes(f.getvalue())
        _ingest(kb, who, dest, "uploads", "uploaded " + ", ".join(names))
    st.divider()
    choices = folder_choices(allowed_roots(kb.settings))
    if not choices:
        st.caption(
            "No server folders are open to this page. An administrator lists them in "
            "ingest.allowed_roots (supportbot.toml or SUPPORTBOT_INGEST__ALLOWED_ROOTS)."
        )
        return
    label = st.selectbox(
        "Or ingest a folder on the server",
        list(choices),
        index=None,
        placeholder="Choose a folder",
        help="The uploads folder and the folders in ingest.allowed_roots, with their subfolders.",
        key="ingest_folder",
    )
    if st.button("Ingest folder", disabled=label is None, icon=":material/folder_open:"):
        if label is None or label not in choices:
            st.error("Choose a folder from the list first.")
        else:
            _ingest(kb, who, choices[label], label)


def _documents(kb: Services, who: Identity) -> None:
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
    source = st.selectbox(
        "Remove a document", sorted(files), index=None, placeholder="Choose", key="remove_doc"
    )
    if st.button("Remove", disabled=source is None, icon=":material/delete:") and source:
        with friendly_errors("removing the document"):
            n = remove_document(source, kb.settings, kb.store)
            audit_log().record(who.name, "remove", source, f"{n} chunks")
            note = ""
            root = files[source].root  # the folder it was ingested from
            uploads = uploads_dir(kb).resolve()
            upload = uploads / (files[source].rel or source)  # its path in the folder
            if root and Path(root).resolve() == uploads and inside(upload, [uploads]):
                upload.unlink(missing_ok=True)
            else:
                note = " If its folder is ingested again it comes back; delete the file there too."
            st.success(md(f"Removed {source} ({n} chunks).{note}"))


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


def _quarantine(kb: Services, who: Identity) -> None:
    """Passages held back at ingest because they address the assistant; an admin may release."""
    held = list_quarantined(kb.settings, kb.store)
    if not held:
        st.caption("No passage is quarantined.")
        return
    st.caption(
        f"{len(held)} passage(s) address the assistant (a persona, a mode, rules for its "
        "answers) and are never used in answers. Release one only after reading it."
    )
    for item in held:
        with st.expander(md(f"{item.where}: {item.reason}")):
            st.markdown("> " + md(item.text[:1500]).replace("\n", "\n> "))
            if st.button("Release", key=f"release-{item.chunk_id}"):
                with friendly_errors("releasing the passage"):
                    release(kb.settings, kb.store, item.chunk_id)
                    audit_log().record(who.name, "release", item.chunk_id, item.source)
                    st.rerun()


def _audit_entries() -> None:
    """The newest audit entries (admins only: this page needs an admin)."""
    entries = audit_log().recent(200)
    if not entries:
        st.caption("Nothing recorded yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when (UTC)": e.at,
                    "who": e.actor,
                    "what": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in entries
            ]
        ),
        hide_index=True,
    )
    st.caption("The newest 200 entries; `supportbot audit -n 1000` on the server lists more.")


def knowledge_page() -> None:
    """Manage what the bot knows (signed in as an admin)."""
    st.title("Knowledge base")
    who = require("kb")
    if who is None:
        return
    kb = get_services()
    if kb is None:
        return
    add, docs, held, search, log = st.tabs(
        ["Add documents", "Documents", "Quarantined", "Search", "Audit log"]
    )
    with add:
        _add_documents(kb, who)
    with docs:
        _documents(kb, who)
    with held:
        _quarantine(kb, who)
    with search:
        _search(kb)
    with log:
        _audit_entries()
