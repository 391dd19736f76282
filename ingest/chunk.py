"""Chunking: headed sections in, citable chunks out.

Sections are never merged across headings, so every chunk belongs to exactly one
section and a citation can name it. Long sections are cut by langchain's recursive
splitter (paragraphs, then sentences, then words). Each FAQ entry is one chunk.
"""

from __future__ import annotations

import hashlib

from ingest.load import Document, FaqEntry
from supportbot.gaps.answers import AGENT_AUTHOR, agent_heading
from supportbot.safety.hygiene import strip_invisible
from supportbot.types import Chunk


def chunk_id(source: str, heading: str, text: str) -> str:
    """Content hash: the same text under the same heading keeps the same id across runs."""
    digest = hashlib.sha256(f"{source}\x00{heading}\x00{text}".encode()).hexdigest()
    return digest[:16]


def chunk_document(
    document: Document, source: str, chunk_size: int = 1000, chunk_overlap: int = 100
) -> list[Chunk]:
    """Cut a parsed document into chunks carrying source, title, heading path and page.

    Args:
        document: the loader's output.
        source: the file's path relative to the ingested folder (its stable name).
        chunk_size: maximum characters per chunk.
        chunk_overlap: characters repeated between consecutive pieces of one section.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    chunks: list[Chunk] = []
    used: set[str] = set()

    def add(
        text: str,
        heading: str,
        page: int | None,
        question: str | None = None,
        entry: FaqEntry | None = None,
    ) -> None:
        # Hidden characters (tag-character smuggling, bidi overrides, zero-width) never
        # reach the index: what the model reads is what a reviewer of the file sees.
        text, heading = strip_invisible(text).strip(), strip_invisible(heading)
        question = strip_invisible(question) if question is not None else None
        also = tuple(strip_invisible(a) for a in entry.also_asked) if entry else ()
        if not text:
            return
        # Other wordings change the question's vector, so they are part of the id (an
        # entry without any keeps the id it always had).
        asked = "\x1f".join((question or "", *also))
        base = chunk_id(source, heading, f"{asked}\x00{text}")
        cid, n = base, 1
        while cid in used:  # identical text twice under one heading: keep both
            n += 1
            cid = f"{base[:13]}-{n:02d}"
        used.add(cid)
        chunks.append(
            Chunk(
                id=cid,
                text=text,
                source=source,
                title=strip_invisible(document.title),
                heading=heading,
                page=page,
                position=len(chunks),
                kind="faq" if question is not None else "doc",
                question=question,
                also_asked=also,
                author=entry.author if entry else "",
            )
        )

    if document.kind == "faq":
        for entry in document.faq:
            if entry.author == AGENT_AUTHOR:  # a citation says who wrote it, and when
                heading = agent_heading(entry.date)
            else:
                heading = entry.category.strip().title() if entry.category else ""
            add(entry.answer, heading, None, question=entry.question, entry=entry)
        return chunks

    for section in document.sections:
        heading = " > ".join(section.headings)
        for piece in splitter.split_text(section.text):
            piece = piece.strip()
            if piece:
                add(piece, heading, section.page)
    return chunks
