"""Loaders: one file in, a :class:`Document` of headed sections (or FAQ entries) out.

Each loader keeps the document's own structure (Markdown/HTML/DOCX headings, the PDF
outline, setext headings in text files) so chunks can be cut along it and cited by
section. Parsing is left to well-kept libraries: langchain's Markdown header splitter,
BeautifulSoup, pypdf, python-docx, PyYAML and the csv module.

Every problem a user can cause (empty, binary, badly encoded, corrupt, encrypted, too
big) raises :class:`FileRejected` with a reason and the fix, never a bare traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from supportbot.config import IngestSettings
from supportbot.errors import FileRejected

DOC_SUFFIXES = {".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".docx"}
FAQ_SUFFIXES = {".csv", ".json", ".yaml", ".yml"}
SUPPORTED_SUFFIXES = DOC_SUFFIXES | FAQ_SUFFIXES

QUESTION_KEYS = ("question", "q", "questions", "query", "title", "prompt")
ANSWER_KEYS = ("answer", "a", "answers", "response", "reply", "body")
ALSO_ASKED_KEYS = ("also_asked", "also asked", "alternatives", "paraphrases")
NOT_APPROVED = ("draft", "pending", "review", "rejected", "unapproved")
"""``status`` values of FAQ entries that are never indexed (so never served). An agent's
answer (``author: agent``) is indexed only with ``status: approved``."""


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (outermost first)."""

    headings: tuple[str, ...]
    text: str
    page: int | None = None


@dataclass(frozen=True)
class FaqEntry:
    """One curated question and its answer.

    ``also_asked`` are other wordings of the question (matched with it); ``author`` is
    ``agent`` for an answer a support agent wrote, whose citation names it as such with
    its approval ``date`` (the managed FAQ of :mod:`supportbot.gaps`).
    """

    question: str
    answer: str
    category: str = ""
    also_asked: tuple[str, ...] = ()
    author: str = ""
    date: str = ""


@dataclass
class Document:
    """A parsed file: headed sections for manuals, entries for FAQ files."""

    title: str
    kind: Literal["doc", "faq"] = "doc"
    sections: list[Section] = field(default_factory=list)
    faq: list[FaqEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- reading bytes and text ---------------------------------------------------------------


def read_bytes(path: Path, settings: IngestSettings) -> bytes:
    """Read a file after checking it is not too big or empty."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileRejected(path, f"cannot be read ({exc.strerror})", "Check it exists.") from exc
    limit = int(settings.max_file_mb * 1024 * 1024)
    if size > limit:
        raise FileRejected(
            path,
            f"too large ({size / 1e6:.1f} MB, limit {settings.max_file_mb:g} MB)",
            "Split it, or raise SUPPORTBOT_INGEST__MAX_FILE_MB.",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileRejected(
            path, f"cannot be read ({exc.strerror})", "Check its permissions."
        ) from exc
    if not data.strip():
        raise FileRejected(path, "is empty", "Add content or remove the file.")
    return data


def decode_text(path: Path, data: bytes, settings: IngestSettings) -> str:
    """Decode a text file: UTF-8 (with or without BOM) or UTF-16 with a BOM.

    Anything else is refused unless ``fallback_encoding`` is configured, because
    guessing an encoding silently garbles the text customers will be quoted.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FileRejected(path, "has a UTF-16 mark but is not valid UTF-16") from exc
    if b"\x00" in data[:8192]:
        raise FileRejected(
            path,
            "looks binary (contains NUL bytes), not a text document",
            "Convert it to Markdown, HTML, PDF, DOCX or UTF-8 text.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if settings.fallback_encoding:
            try:
                return data.decode(settings.fallback_encoding)
            except (UnicodeDecodeError, LookupError) as exc2:
                raise FileRejected(
                    path, f"is neither UTF-8 nor {settings.fallback_encoding}"
                ) from exc2
        raise FileRejected(
            path,
            f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            "Re-save it as UTF-8, or set SUPPORTBOT_INGEST__FALLBACK_ENCODING (e.g. cp1252).",
        ) from exc


def _clean(text: str) -> str:
    """Normalise whitespace and drop control characters that confuse tokenizers."""
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text)
    return text.strip()


# -- manuals ------------------------------------------------------------------------------


def load_markdown_text(text: str, fallback_title: str) -> Document:
    """Split Markdown on its headings (code fences respected by langchain's splitter)."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    levels = [("#" * i, f"h{i}") for i in range(1, 7)]
    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=levels, strip_headers=True)
    parts = splitter.split_text(text)
    title = ""
    sections: list[Section] = []
    for part in parts:
        heads = tuple(str(part.metadata[f"h{i}"]) for i in range(1, 7) if f"h{i}" in part.metadata)
        if not title and "h1" in part.metadata:
            title = str(part.metadata["h1"])
        body = _clean(part.page_content)
        if body:
            sections.append(Section(headings=heads, text=body))
    title = title or fallback_title
    # The document title is carried by Chunk.title; drop it from heading paths.
    sections = [
        Section(s.headings[1:] if s.headings[:1] == (title,) else s.headings, s.text, s.page)
        for s in sections
    ]
    return Document(title=title, sections=sections)


def load_markdown(path: Path, settings: IngestSettings) -> Document:
    """A Markdown file."""
    return load_markdown_text(decode_text(path, read_bytes(path, settings), settings), path.stem)


_SETEXT = re.compile(r"^(?P<title>\S[^\n]*)\n(?P<bar>=+|-+)[ \t]*$", re.M)


def load_text(path: Path, settings: IngestSettings) -> Document:
    """Plain text; setext-underlined lines (``Title`` over ``=====``/``-----``) are headings."""
    text = decode_text(path, read_bytes(path, settings), settings)

    def to_atx(m: re.Match[str]) -> str:
        if len(m.group("bar")) < 3:
            return m.group(0)
        return ("# " if m.group("bar")[0] == "=" else "## ") + m.group("title").strip()

    return load_markdown_text(_SETEXT.sub(to_atx, text), path.stem)


# Elements that end a line of text (a browser starts a new line after them).
_HTML_BLOCKS = frozenset(
    "p div pre blockquote dt dd li tr caption figcaption address section article main "
    "aside table thead tbody tfoot ul ol dl hr br center".split()
)
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_DROP = ["script", "style", "noscript", "template", "nav", "iframe", "svg", "form", "button"]
# Page furniture by its conventional names (generated manuals, CMS themes).
_HTML_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|nav-panel|navheader|navfooter|breadcrumbs?|"
    r"header|footer|masthead|sidebar|skip-link|toc|table-of-contents|menu)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HTML_LINK_SHARE = 0.7


def _is_furniture(el: Any) -> bool:
    """Navigation, headers, footers and tables of contents, as a reader tells them apart.

    By role or conventional class/id name, or by shape: a block (list, table, paragraph,
    div) holding two or more links, with at least 70% of its letters and digits in link
    text. That is what a
    "Previous | Up | Next" bar, a breadcrumb or a table of contents looks like in any
    generated manual, whatever the generator calls it; prose that cites a link or two
    keeps most of its words outside links.
    """
    if el.name in ("header", "footer", "aside") or el.get("role") in ("navigation", "banner"):
        return True
    names = " ".join([el.get("id") or "", *(el.get("class") or [])])
    if names.strip() and _HTML_FURNITURE.search(names):
        return True
    if el.name not in ("ul", "ol", "dl", "table", "div", "p", "menu", "center"):
        return False
    links = el.find_all("a", href=True)
    if len(links) < 2:
        return False
    text = _alnum(el.get_text(" ", strip=True))
    linked = sum(_alnum(a.get_text(" ", strip=True)) for a in links)
    return text > 0 and linked / text >= _HTML_LINK_SHARE


def _alnum(text: str) -> int:
    """Letters and digits in ``text``: what link density is measured in ("[ << ]" is 0)."""
    return sum(ch.isalnum() for ch in text)


def load_html(path: Path, settings: IngestSettings) -> Document:
    """HTML read as a browser reads it: headings open sections, everything else fills them.

    Parsed with html5lib, the HTML5 parsing algorithm browsers use, so unclosed
    paragraphs, headings inside ``<p>`` and other tag soup of generated manuals end up
    where a browser puts them. Scripts, styles, navigation bars, headers, footers and
    tables of contents are left out (:func:`_is_furniture`): they repeat on every page and
    answer nothing.
    """
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
    from bs4.element import (
        Comment,
        Declaration,
        Doctype,
        NavigableString,
        ProcessingInstruction,
        Tag,
    )

    text = decode_text(path, read_bytes(path, settings), settings)
    with warnings.catch_warnings():  # XHTML is HTML to a browser, and to us
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(text, "html5lib")
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    title = (
        (title_tag.get_text(" ", strip=True) if title_tag else "")
        or (h1.get_text(" ", strip=True) if h1 else "")
        or path.stem
    )
    root = soup.body or soup
    for el in root.find_all(True):
        if el.parent is not None and _is_furniture(el) and not el.find(list(_HTML_HEADINGS)):
            el.decompose()
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    buf: list[str] = []
    links = [0, 0]  # links in the section so far, and the characters of their text

    def flush() -> None:
        body = _clean("".join(buf))
        # A section that is only links (a table of contents, an index) answers nothing.
        contents = links[0] >= 2 and links[1] >= _HTML_LINK_SHARE * _alnum(body)
        if body and not contents:
            heads = tuple(h for lvl, h in stack if not (lvl == 1 and h == title))
            sections.append(Section(headings=heads, text=body))
        buf.clear()
        links[:] = [0, 0]

    skip = (Comment, Declaration, Doctype, ProcessingInstruction)

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, skip):
                    inside_pre = child.find_parent("pre") is not None
                    buf.append(str(child) if inside_pre else " ".join(str(child).split()) + " ")
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name or ""
            if name in _HTML_HEADINGS:
                flush()
                level = int(name[1])
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, child.get_text(" ", strip=True)))
                continue
            if name == "a" and child.get("href"):
                links[0] += 1
                links[1] += _alnum(child.get_text(" ", strip=True))
            if name in ("td", "th") and child.find_previous_sibling(["td", "th"]) is not None:
                buf.append(" | ")
            if name in _HTML_BLOCKS:
                buf.append("\n")
            if name == "li":
                buf.append("- ")
            walk(child)
            if name in _HTML_BLOCKS:
                buf.append("\n")

    walk(root)
    flush()
    return Document(title=title, sections=sections)


PDF_PASSWORD_FIX = (
    "Remove the password (in the PDF editor that made it, or with "
    "`qpdf --decrypt --password=PASSWORD in.pdf out.pdf`), or export or print an "
    "unprotected copy to PDF, and ingest that."
)


def load_pdf(path: Path, settings: IngestSettings) -> Document:
    """PDF: text per page, cut into sections at the headings its outline (bookmarks) names.

    Encrypted PDFs that open without a password (an empty user password, common for forms
    and statements; RC4 or AES, read through ``cryptography``) are decrypted and read;
    password-protected ones are rejected as such. Pages whose extracted text is not text
    (a font without a usable character map gives glyph garbage) are left out with a
    warning, and a PDF with nothing else is rejected (:func:`text_quality`).
    """
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    data = read_bytes(path, settings)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRejected(path, "is password-protected", PDF_PASSWORD_FIX)
        n_pages = len(reader.pages)
    except FileRejected:
        raise
    except DependencyError as exc:
        raise FileRejected(
            path,
            f"is encrypted and cannot be decrypted here ({exc})",
            "Install the PDF crypto support: pip install 'pypdf[crypto]'.",
        ) from exc
    except FileNotDecryptedError as exc:
        raise FileRejected(path, "is password-protected", PDF_PASSWORD_FIX) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileRejected(
            path, f"is not a readable PDF ({exc})", "Re-export it from the original document."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on corrupt input
        raise FileRejected(path, f"is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if n_pages > settings.max_pdf_pages:
        raise FileRejected(
            path,
            f"has {n_pages} pages (limit {settings.max_pdf_pages})",
            "Split it, or raise SUPPORTBOT_INGEST__MAX_PDF_PAGES.",
        )

    title = ""
    try:
        if reader.metadata and reader.metadata.title:
            title = str(reader.metadata.title)
    except Exception:  # noqa: BLE001 - broken metadata must not sink the text
        title = ""
    outline = _pdf_outline(reader)
    by_page: dict[int, list[tuple[int, str]]] = {}
    for level, heading, page in outline:
        by_page.setdefault(page, []).append((level, heading))

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    warnings: list[str] = []
    garbled: list[tuple[int, TextQuality, str]] = []
    for index in range(n_pages):
        try:
            page_text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # noqa: BLE001
            warnings.append(f"page {index + 1} skipped: {exc}")
            continue
        quality = text_quality(page_text)
        if not quality.readable:
            garbled.append((index + 1, quality, page_text))
            page_text = ""  # its outline headings still open sections
        lines = _strip_page_furniture(page_text.splitlines())
        pending = list(by_page.get(index, []))
        buf: list[str] = []

        def flush(buf: list[str] = buf, page_no: int = index + 1) -> None:
            body = _clean("\n".join(buf))
            if body:
                heads = tuple(h for lvl, h in stack if not (lvl == 0 and h == title))
                sections.append(Section(headings=heads, text=body, page=page_no))
            buf.clear()

        for line in lines:
            stripped = line.strip()
            if pending and _same_heading(stripped, pending[0][1]):
                flush()
                level, heading = pending.pop(0)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading))
                continue
            buf.append(line)
        # Headings whose line was not found still open their section for the next text.
        for level, heading in pending:
            flush()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        flush()
    if not title:
        title = outline[0][1] if outline else path.stem
    if garbled:
        _, quality, sample = garbled[0]
        what = (
            f"its text is not readable text ({quality.describe()}, e.g. "
            f"{_sample(sample)!r}): its fonts do not map glyphs to characters"
        )
        if not sections:
            raise FileRejected(
                path,
                what,
                "Re-export it with embedded Unicode fonts (or 'PDF/A'), or run OCR on it, and "
                "ingest that.",
            )
        pages = ", ".join(str(n) for n, _, _ in garbled[:10]) + ("..." if len(garbled) > 10 else "")
        warnings.append(
            f"page(s) {pages} left out: {what}. Re-export the PDF with embedded Unicode fonts "
            "to index them."
        )
    if not sections:
        raise FileRejected(
            path,
            "has no extractable text (a scanned image?)",
            "Run OCR on it first, or provide the text another way.",
        )
    return Document(title=title, sections=sections, warnings=warnings)


# -- is extracted text text? ---------------------------------------------------------------

# Scripts written without spaces between words: their "words" cannot be counted.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>«»‹›„“”‚‘’*_/|"
MIN_JUDGED_CHARS = 40
MIN_LETTER_SHARE = 0.3
_RUNS = re.compile(r"([^\w\s])\1{2,}")  # dot leaders and rules: "......", "-----"
MIN_WORD_SHARE = 0.4


@dataclass(frozen=True)
class TextQuality:
    """How much of a text is letters, and how much of it is words.

    ``letters``: the share of non-space characters that are letters (any script),
    digits and runs of one punctuation mark (dot leaders, rules) left out.
    ``words``: the share of tokens holding letters that look like words: two or more
    letters (apostrophes and hyphens inside allowed) in lower, upper or title case.
    Tokens with digits (codes, prices, versions) are left out. Text in a script written
    without spaces (Chinese, Japanese, Thai...) is judged on its letters only. Nothing
    here is tied to a language: glyph garbage ("F n e m b h e h k ; e Z") has single
    letters and symbols instead of words, in any language.
    """

    chars: int
    letters: float
    words: float

    @property
    def readable(self) -> bool:
        """False for text that is mostly not words (too short a text is not judged)."""
        if self.chars < MIN_JUDGED_CHARS:
            return True
        return self.letters >= MIN_LETTER_SHARE and self.words >= MIN_WORD_SHARE

    def describe(self) -> str:
        """``12% words, 85% letters``."""
        return f"{self.words:.0%} words, {self.letters:.0%} letters"


def _wordlike(token: str) -> bool:
    core = token.strip(_EDGE_PUNCT)
    letters = [ch for ch in core if ch.isalpha()]
    inside = "'’-\u00b7"
    if len(letters) < 2 or not all(ch.isalpha() or ch in inside or _is_mark(ch) for ch in core):
        return False
    plain = "".join(letters)
    return plain.islower() or plain.isupper() or (plain[0].isupper() and plain[1:].islower())


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def text_quality(text: str) -> TextQuality:
    """Measure how much of ``text`` is letters and words (see :class:`TextQuality`)."""
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return TextQuality(0, 0.0, 0.0)
    counted = [ch for ch in _RUNS.sub("", text) if not ch.isspace() and not ch.isdigit()]
    letters = sum(1 for ch in counted if ch.isalpha() or _is_mark(ch))
    letter_share = letters / len(counted) if counted else 1.0
    if len(_UNSPACED.findall(text)) > letters / 2:
        return TextQuality(len(visible), letter_share, 1.0)
    tokens = [t for t in text.split() if any(ch.isalpha() for ch in t)]
    judged = [t for t in tokens if not any(ch.isdigit() for ch in t)]
    words = sum(1 for t in judged if _wordlike(t)) / len(judged) if judged else 1.0
    return TextQuality(len(visible), letter_share, words)


_WORD = re.compile(r"[^\W\d_]{3,}")
MIN_VOCABULARY = 1000
MIN_KNOWN_SHARE = 0.2


def words_of(text: str) -> list[str]:
    """Lower-cased words of three or more letters (any script), for word lists."""
    return [w.lower() for w in _WORD.findall(text)]


def known_word_share(text: str, vocabulary: set[str]) -> float | None:
    """Share of ``text``'s words found in ``vocabulary`` (words of the other documents).

    None when it says nothing: a small word list, a short text, or a script written
    without spaces. Text whose glyphs map to the wrong letters reads as words
    ("Wkh txlfn eurzq") but hardly any of them occur in the rest of the knowledge base.
    """
    words = words_of(text)
    if len(vocabulary) < MIN_VOCABULARY or len(words) < 100 or _UNSPACED.search(text):
        return None
    return sum(1 for w in words if w in vocabulary) / len(words)


def _sample(text: str, n: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[:n] + "..."


_PAGE_NUMBER = re.compile(r"^\s*(page\s+)?\d+(\s*(of|/)\s*\d+)?\s*$", re.I)


def _strip_page_furniture(lines: list[str]) -> list[str]:
    """Drop page-number lines ("Page 3", "3 of 26") at the top or bottom of a page."""
    while lines and _PAGE_NUMBER.match(lines[-1]):
        lines = lines[:-1]
    while lines and _PAGE_NUMBER.match(lines[0]):
        lines = lines[1:]
    return lines


def _same_heading(line: str, heading: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s).strip().lower()

    return bool(line) and norm(line) == norm(heading)


def _pdf_outline(reader: Any) -> list[tuple[int, str, int]]:
    """Flatten the outline to (level, title, page index), in reading order."""
    out: list[tuple[int, str, int]] = []

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
                # pypdf answers None for a bookmark that points nowhere: skip it.
                if isinstance(page, int):
                    out.append((level, str(item.title).strip(), page))
            except Exception:  # noqa: BLE001 - a broken bookmark is just ignored
                continue

    try:
        walk(list(reader.outline), 0)
    except Exception:  # noqa: BLE001
        return []
    out.sort(key=lambda t: t[2])
    return out


def load_docx(path: Path, settings: IngestSettings) -> Document:
    """Word documents: paragraphs styled ``Heading N``/``Title`` open sections."""
    import docx

    data = read_bytes(path, settings)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises zip/xml/key errors
        raise FileRejected(
            path,
            f"is not a readable .docx file ({type(exc).__name__})",
            "Open and re-save it in Word or LibreOffice.",
        ) from exc
    title = (document.core_properties.title or "").strip()
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    buf: list[str] = []

    def flush() -> None:
        body = _clean("\n".join(buf))
        if body:
            sections.append(Section(headings=tuple(h for _, h in stack), text=body))
        buf.clear()

    for para in document.paragraphs:
        text = para.text.strip()
        style = (para.style.name if para.style is not None else "") or ""
        match = re.fullmatch(r"Heading (\d)", style)
        if style == "Title":
            title = title or text
            continue
        if match and text:
            flush()
            level = int(match.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
        elif text:
            buf.append(text)
    flush()
    for table in document.tables:
        rows = [" | ".join(c.text.strip() for c in row.cells) for row in table.rows]
        body = _clean("\n".join(rows))
        if body:
            sections.append(Section(headings=("Tables",), text=body))
    return Document(title=title or path.stem, sections=sections)


# -- FAQ files ----------------------------------------------------------------------------


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _also_asked(row: dict[str, Any]) -> tuple[str, ...]:
    """Other wordings of the question: a list, or one string with a wording per line."""
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for key in ALSO_ASKED_KEYS:
        value = lowered.get(key)
        if isinstance(value, str):
            value = value.splitlines()
        if isinstance(value, list):
            return tuple(_clean(str(v)) for v in value if isinstance(v, str) and v.strip())
    return ()


def _faq_from_rows(path: Path, rows: list[Any], title: str = "") -> Document:
    entries: list[FaqEntry] = []
    warnings: list[str] = []
    seen_keys: set[str] = set()
    drafts = 0
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            warnings.append(f"entry {number} skipped: not a mapping")
            continue
        seen_keys.update(str(k).lower() for k in row)
        status = str(row.get("status") or "").strip().lower()
        author = str(row.get("author") or "").strip().lower()
        if status in NOT_APPROVED or (author == "agent" and status != "approved"):
            drafts += 1  # not approved: never indexed, so never served
            continue
        q, a = _pick(row, QUESTION_KEYS), _pick(row, ANSWER_KEYS)
        if not q or not a:
            warnings.append(f"entry {number} skipped: needs a non-empty question and answer")
            continue
        entries.append(
            FaqEntry(
                _clean(q),
                _clean(a),
                str(row.get("category", "") or ""),
                _also_asked(row),
                author,
                str(row.get("approved_at", "") or "").strip()[:10],
            )
        )
    if drafts:
        warnings.append(f"{drafts} entr{'y' if drafts == 1 else 'ies'} not approved: not indexed")
    if not entries:
        if drafts:
            raise FileRejected(
                path,
                f"has no approved entries ({drafts} not approved)",
                "Approve an entry (status: approved) or remove the file from the index.",
            )
        found = ", ".join(sorted(seen_keys)) or "none"
        raise FileRejected(
            path,
            f"has no question/answer pairs (fields found: {found})",
            "FAQ files need 'question' and 'answer' fields (CSV columns, JSON/YAML keys).",
        )
    stem = path.stem.replace("_", " ").replace("-", " ").strip()
    if not title:
        title = "FAQ" if stem.lower() in ("faq", "faqs") else f"FAQ: {stem}"
    return Document(title=title, kind="faq", faq=entries, warnings=warnings)


def _title(data: Any) -> str:
    """A JSON/YAML FAQ's own ``title`` (a mapping with a title and its entries)."""
    value = data.get("title") if isinstance(data, dict) else None
    return _clean(value)[:200] if isinstance(value, str) and value.strip() else ""


def _unwrap(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("faq", "faqs", "questions", "entries", "items", "data"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return []


def load_faq(path: Path, settings: IngestSettings) -> Document:
    """FAQ files: CSV with question/answer columns, or JSON/YAML lists of mappings."""
    text = decode_text(path, read_bytes(path, settings), settings)
    suffix = path.suffix.lower()
    title = ""
    try:
        if suffix == ".csv":
            rows: list[Any] = list(csv.DictReader(io.StringIO(text)))
        elif suffix == ".json":
            data = json.loads(text)
            rows, title = _unwrap(data), _title(data)
        else:
            import yaml

            data = yaml.safe_load(text)
            rows, title = _unwrap(data), _title(data)
    except json.JSONDecodeError as exc:
        raise FileRejected(
            path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except csv.Error as exc:
        raise FileRejected(path, f"is not valid CSV ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError and friends
        raise FileRejected(path, f"is not valid {suffix[1:].upper()} ({exc})") from exc
    return _faq_from_rows(path, rows, title)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub_text(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _scrub(document: Document) -> Document:
    """Replace lone surrogates (from JSON or YAML escapes like u+DFAA, or broken PDF text).

    A Python string may hold them, but they cannot be encoded to UTF-8, so they would
    crash hashing, embedding and the store far from the file that held them.
    """
    document.title = _scrub_text(document.title)
    document.sections = [
        Section(tuple(_scrub_text(h) for h in s.headings), _scrub_text(s.text), s.page)
        for s in document.sections
    ]
    document.faq = [
        replace(
            e,
            question=_scrub_text(e.question),
            answer=_scrub_text(e.answer),
            category=_scrub_text(e.category),
            also_asked=tuple(_scrub_text(a) for a in e.also_asked),
            author=_scrub_text(e.author),
            date=_scrub_text(e.date),
        )
        for e in document.faq
    ]
    return document


LOADERS: dict[str, Callable[[Path, IngestSettings], Document]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".csv": load_faq,
    ".json": load_faq,
    ".yaml": load_faq,
    ".yml": load_faq,
}


def load_document(path: Path, settings: IngestSettings) -> Document:
    """Parse any supported file.

    Raises:
        FileRejected: unsupported type, or the file cannot be parsed; the message says why.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise FileRejected(
            path,
            f"has an unsupported type '{path.suffix or '(none)'}'",
            "Supported: " + ", ".join(sorted(SUPPORTED_SUFFIXES)) + ".",
        )
    try:
        return _scrub(loader(path, settings))
    except FileRejected:
        raise
    except RecursionError as exc:
        raise FileRejected(path, "is nested too deeply to parse") from exc
    except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the whole run
        raise FileRejected(path, f"could not be parsed ({type(exc).__name__}: {exc})") from exc
