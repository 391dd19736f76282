#!/usr/bin/env python3
"""Build the sample knowledge base PDF from its Markdown source.

Renders ``kb/pdf-src/nexa-troubleshooting-and-warranty.md`` to
``kb/docs/nexa-troubleshooting-and-warranty.pdf`` with fpdf2 (A4, core Helvetica font).

Only a small Markdown subset is understood, and anything else is rejected rather than
rendered wrongly:

- ``# Title`` (once): the title page.
- ``## Chapter``: starts a new page.
- ``### Section``.
- paragraphs (consecutive non-blank lines are joined), ``- bullet`` items and ``1. numbered``
  steps. An indented line continues the list item above it.

Every heading becomes a PDF outline entry (bookmark) at its level (title 0, chapter 1,
section 2) and is printed on a line of its own, shrunk if needed so that it never wraps:
the ingestion pipeline (``ingest/load.py``) finds section boundaries by matching outline
titles against whole extracted text lines. The core font only covers Latin-1, so the source
must be plain ASCII. The creation date is fixed, so rebuilding unchanged text gives the same
bytes.

Usage::

    python scripts/build_kb_pdf.py [--src PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import XPos, YPos

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT / "kb" / "pdf-src" / "nexa-troubleshooting-and-warranty.md"
DEFAULT_OUT = ROOT / "kb" / "docs" / "nexa-troubleshooting-and-warranty.pdf"

AUTHOR = "Brightwave Networks, Inc."
SUBJECT = "Nexa mesh Wi-Fi error codes, troubleshooting, safety, warranty, returns and parts"
TITLE_PAGE_LINES = (
    "Brightwave Nexa mesh Wi-Fi",
    "Nexa R1, Nexa R1 Pro, Nexa S1, Nexa O1 and Nexa Home Kit",
    "Firmware 3.4.2",
)
# Fixed so that the output is reproducible (fpdf2 derives the file ID from it too).
CREATION_DATE = datetime(2026, 9, 15, tzinfo=UTC)

FONT = "Helvetica"
BODY_SIZE = 10.5  # pt
LINE_H = 5.4  # mm, body line height
HEADING_SIZE = {1: 26.0, 2: 18.0, 3: 13.0}  # pt, by Markdown level
HEADING_LINE_H = {1: 12.0, 2: 9.0, 3: 7.0}  # mm
MIN_HEADING_SIZE = 8.0  # pt; a heading is shrunk down to this before it may wrap
LIST_INDENT = 5.0  # mm from the left margin to the bullet or number
LIST_GAP = 6.0  # mm from the bullet or number to the item text
KEEP_WITH_NEXT = 35.0  # mm: a section heading closer than this to the page foot moves on

BlockKind = Literal["heading", "paragraph", "bullet", "numbered"]

_HEADING = re.compile(r"^(#{1,3}) (\S.*)$")
_BULLET = re.compile(r"^- (\S.*)$")
_NUMBERED = re.compile(r"^(\d+)\. (\S.*)$")
_CONTINUATION = re.compile(r"^\s+(\S.*)$")


@dataclass
class Block:
    """One rendered unit of the document."""

    kind: BlockKind
    text: str
    level: int = 0  # heading level, 1-3
    label: str = ""  # "-" for bullets, "3." for numbered steps


def _in_list(blocks: list[Block]) -> bool:
    """Whether the last block is a list item that an indented line may continue."""
    return bool(blocks) and blocks[-1].kind in ("bullet", "numbered")


def parse_markdown(source: str) -> list[Block]:
    """Parse the supported Markdown subset into blocks.

    Args:
        source: the Markdown text.

    Returns:
        The blocks in document order.

    Raises:
        ValueError: on non-ASCII text, a repeated ``#`` title, a duplicate heading, or a
            construct outside the subset (deeper headings, tables, emphasis, links, code).
    """
    blocks: list[Block] = []
    paragraph: list[str] = []
    seen_headings: set[str] = set()

    def flush_paragraph() -> None:
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()

    for number, raw in enumerate(source.splitlines(), start=1):
        where = f"line {number}"
        if not raw.isascii():
            bad = sorted({c for c in raw if not c.isascii()})
            raise ValueError(f"{where}: non-ASCII characters {bad!r}; the core font needs ASCII")
        line = raw.rstrip()
        if not line:
            flush_paragraph()
            continue
        if re.search(r"[*_`|]|\[.*\]\(", line) or line.startswith(("####", ">", "```")):
            raise ValueError(f"{where}: unsupported Markdown: {line!r}")
        if m := _HEADING.match(line):
            flush_paragraph()
            level, text = len(m.group(1)), m.group(2).strip()
            if level == 1 and any(b.kind == "heading" and b.level == 1 for b in blocks):
                raise ValueError(f"{where}: a second '# ' title")
            if text.lower() in seen_headings:
                raise ValueError(f"{where}: duplicate heading {text!r}")
            seen_headings.add(text.lower())
            blocks.append(Block("heading", text, level=level))
        elif m := _BULLET.match(line):
            flush_paragraph()
            blocks.append(Block("bullet", m.group(1), label="-"))
        elif m := _NUMBERED.match(line):
            flush_paragraph()
            blocks.append(Block("numbered", m.group(2), label=f"{m.group(1)}."))
        elif (m := _CONTINUATION.match(line)) and not paragraph and _in_list(blocks):
            blocks[-1].text += " " + m.group(1)
        else:
            paragraph.append(line.strip())
    flush_paragraph()
    return blocks


class GuidePDF(FPDF):
    """FPDF with a page-number footer on every page but the title page."""

    def footer(self) -> None:
        """Print "Page N" centred at the foot of the page."""
        if self.page_no() == 1:
            return
        self.set_y(-15)
        self.set_font(FONT, size=9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"Page {self.page_no()}", align="C")
        self.set_text_color(0, 0, 0)


class Renderer:
    """Lays out parsed blocks on a :class:`GuidePDF`."""

    def __init__(self, title: str) -> None:
        self.pdf = GuidePDF(orientation="portrait", unit="mm", format="A4")
        self.pdf.set_margins(left=20, top=20, right=20)
        self.pdf.set_auto_page_break(auto=True, margin=22)
        self.pdf.set_title(title)
        self.pdf.set_author(AUTHOR)
        self.pdf.set_subject(SUBJECT)
        self.pdf.set_creator("scripts/build_kb_pdf.py (fpdf2)")
        self.pdf.set_keywords("Brightwave Nexa troubleshooting error codes warranty RMA returns")
        self.pdf.set_lang("en-US")
        self.pdf.set_creation_date(CREATION_DATE)
        self.headings: list[tuple[int, str, int]] = []  # (level, text, page) for the report

    def _fit_font(self, text: str, size: float) -> None:
        """Set bold Helvetica at ``size``, shrunk until ``text`` fits on one line."""
        while True:
            self.pdf.set_font(FONT, style="B", size=size)
            # multi_cell keeps a cell margin on both sides of the text.
            room = self.pdf.epw - 2 * self.pdf.c_margin
            if self.pdf.get_string_width(text) <= room or size <= MIN_HEADING_SIZE:
                return
            size -= 0.5

    def _heading(self, block: Block) -> None:
        pdf = self.pdf
        if block.level == 1:
            pdf.add_page()
            pdf.set_y(80)
        elif block.level == 2:
            pdf.add_page()
        elif pdf.get_y() > pdf.page_break_trigger - KEEP_WITH_NEXT:
            pdf.add_page()
        else:
            pdf.ln(3)
        # The bookmark is registered at the current page and y, so call it just before printing.
        pdf.start_section(block.text, level=block.level - 1)
        self.headings.append((block.level, block.text, pdf.page_no()))
        self._fit_font(block.text, HEADING_SIZE[block.level])
        pdf.multi_cell(
            0, HEADING_LINE_H[block.level], block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        if block.level == 1:
            pdf.ln(6)
            pdf.set_font(FONT, size=14)
            for line in TITLE_PAGE_LINES:
                pdf.multi_cell(0, 8, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_y(-60)
            pdf.set_font(FONT, size=11)
            pdf.multi_cell(0, 6, AUTHOR, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.ln(2 if block.level == 3 else 3)

    def _paragraph(self, block: Block) -> None:
        self.pdf.set_font(FONT, size=BODY_SIZE)
        self.pdf.multi_cell(0, LINE_H, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(2)

    def _list_item(self, block: Block) -> None:
        pdf = self.pdf
        pdf.set_font(FONT, size=BODY_SIZE)
        if pdf.will_page_break(LINE_H):
            pdf.add_page()
        pdf.set_x(pdf.l_margin + LIST_INDENT)
        pdf.cell(LIST_GAP, LINE_H, block.label)
        width = pdf.epw - LIST_INDENT - LIST_GAP
        pdf.multi_cell(width, LINE_H, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)

    def render(self, blocks: list[Block]) -> None:
        """Lay out all blocks; the first block must be the ``#`` title."""
        if not blocks or blocks[0].kind != "heading" or blocks[0].level != 1:
            raise ValueError("the document must start with a '# ' title")
        for block in blocks:
            if block.kind == "heading":
                self._heading(block)
            elif block.kind == "paragraph":
                self._paragraph(block)
            else:
                self._list_item(block)

    def save(self, out: Path) -> None:
        """Write the PDF, creating the parent folder if needed."""
        out.parent.mkdir(parents=True, exist_ok=True)
        self.pdf.output(str(out))


def build(src: Path, out: Path) -> Renderer:
    """Render ``src`` (Markdown subset) to the PDF ``out`` and return the renderer."""
    blocks = parse_markdown(src.read_text(encoding="utf-8"))
    renderer = Renderer(title=blocks[0].text if blocks else src.stem)
    renderer.render(blocks)
    renderer.save(out)
    return renderer


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the page count and every heading with its page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="Markdown source")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PDF to write")
    parser.add_argument("--quiet", action="store_true", help="do not list the headings")
    args = parser.parse_args(argv)
    try:
        renderer = build(args.src, args.out)
    except (OSError, ValueError) as exc:
        print(f"build_kb_pdf: {exc}", file=sys.stderr)
        return 1
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({renderer.pdf.page_no()} pages, {size_kb:.0f} KB)")
    if not args.quiet:
        for level, text, page in renderer.headings:
            print(f"{page:>4}  {'  ' * (level - 1)}{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
