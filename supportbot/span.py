"""Select the span that answers: complete sentences and whole lists, never fragments.

A retrieved passage is a window of its section: chunking cuts long sections with an
overlap, so a passage may start or end mid-sentence. Quoting it, or giving it to a small
model, ships those fragments ("...after from a maildrop after N days"). So before anything
is written:

1. the passage's **section** is reassembled from its sibling passages (same document and
   heading, consecutive positions, the overlap removed);
2. the section is split into **units**: sentences, and list items (lines the loader wrote
   as ``- item``); the units the passage overlaps are complete by construction, because
   they come from the section's full text;
3. each unit is **scored** against the question: embedding similarity, the share of the
   question's rare terms it holds (IDF-weighted), its position in its section and the
   passage's retrieval score; the weights are generic, chosen on one dev product
   (fetchmail) and reported on the other (zsh) in docs/measured.md;
4. the best unit grows into a **span**: the units after it in its section while they
   stay relevant and within ``answer.selection_words``; a list is added whole with the
   sentence that introduces it, or not at all (steps are useless one at a time).

The model is given only the span (a shorter prompt is also a faster first token) and is
verified against it; when its text does not survive, the span itself is the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from supportbot.embed import Embedder
from supportbot.keyword import tokenize
from supportbot.safety.hygiene import INJECTION_MARKER, neutralise_instructions
from supportbot.types import Chunk, Hit

__all__ = ["Selection", "SpanSelector", "Unit", "join_section", "split_units"]

UnitKind = Literal["sentence", "item", "line"]

_SENTENCE_END = re.compile(r"(?<!\b[A-Z]\.)(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Unit:
    """One sentence or list item of a section, with where it sits in the section text.

    ``paragraph`` numbers the blocks of the section (a list is one block), so a span
    never runs from one paragraph into the next.
    """

    text: str
    kind: UnitKind
    start: int
    end: int
    paragraph: int
    index: int

    @property
    def words(self) -> int:
        """Length in words (the selection budget counts these)."""
        return len(_WORD.findall(self.text))

    @property
    def is_block(self) -> bool:
        """List items and literal lines: taken whole, with their introduction."""
        return self.kind != "sentence"

    @property
    def introduces_list(self) -> bool:
        """A sentence ending in a colon announces what follows (steps, options)."""
        return self.kind == "sentence" and self.text.rstrip().endswith(":")


@dataclass(frozen=True)
class Selection:
    """The span chosen to answer from: whole units of one section.

    Attributes:
        hit: the retrieved passage the span was found through (its citation).
        units: the span, in section order, complete sentences and list items: what the
            model reads and is verified against.
        section: the whole section's text (what "see the whole section" shows).
        score: the best unit's score (comparable across passages of one question).
        shown: what is quoted to the customer when it differs from ``units``: a short
            section whole (``answer.whole_section_words``), which is one answer as its
            author wrote it, where the model reads only its best part (a faster first
            token).
    """

    hit: Hit
    units: tuple[Unit, ...]
    section: str
    score: float
    shown: tuple[Unit, ...] = ()

    @property
    def text(self) -> str:
        """The span as text: sentences run on, list items one per line as ``- item``."""
        return _render(self.units)

    @property
    def quote(self) -> str:
        """What the customer is shown in the documents' words (the span or its section)."""
        return _render(self.shown or self.units)

    @property
    def has_block(self) -> bool:
        """Whether the quote holds list items or literal lines (shown as a block)."""
        return any(u.is_block for u in self.shown or self.units)

    def as_hit(self, quoted: bool = False) -> Hit:
        """The hit with its text replaced by the span or, with ``quoted``, by the quote.

        The span is what the model reads and cites; the quote is what the customer sees.
        """
        from dataclasses import replace

        text = self.quote if quoted else self.text
        return replace(self.hit, chunk=replace(self.hit.chunk, text=text))


def _render(units: Sequence[Unit]) -> str:
    """Units as text: sentences run on, list items one per line as ``- item``."""
    out: list[str] = []
    for i, unit in enumerate(units):
        if unit.kind == "item":
            out.append(("\n" if i else "") + f"- {_ITEM.sub('', unit.text).strip()}")
        elif unit.kind == "line":
            out.append(("\n" if i else "") + f"    {unit.text}")
        else:
            sep = "\n\n" if i and units[i - 1].is_block else " "
            out.append((sep if i else "") + unit.text.strip())
    return "".join(out).strip("\n ")


def join_section(chunks: Sequence[Chunk]) -> str:
    """Reassemble consecutive passages of one section, removing the chunker's overlap.

    The splitter repeats up to ``chunk_overlap`` characters at the start of the next
    piece, with the whitespace around them possibly changed; the longest run of words
    that ends the text so far and starts the next piece is dropped from that piece.
    Pieces that share no words are joined by a line break.
    """
    text = ""
    for chunk in sorted(chunks, key=lambda c: c.position):
        piece = chunk.text.strip()
        if not text:
            text = piece
            continue
        tail = text.split()[-80:]
        words = list(re.finditer(r"\S+", piece))[:80]
        overlap = 0
        for k in range(min(len(tail), len(words)), 1, -1):
            if tail[-k:] == [w.group(0) for w in words[:k]]:
                overlap = k
                break
        if overlap:
            rest = piece[words[overlap - 1].end() :]
            text += rest if rest[:1].isspace() or not rest else " " + rest
        else:
            text += ("\n" if not text.endswith("\n") else "") + piece
    return text


def split_units(section: str) -> list[Unit]:
    """Sentences, list items and literal lines of a section, with offsets and paragraphs.

    Blocks are separated by blank lines. In a block, ``- item`` lines are list items;
    a run of other lines is prose when its line breaks are only wrapping (a line ending
    mid-phrase followed by one starting in lower case, as PDF text is), split into
    sentences; otherwise (a command, a configuration example) it is kept line by line.
    A list or literal run continues the paragraph of a sentence introducing it with a
    colon, so the two are selected together.
    """
    units: list[Unit] = []
    paragraph = -1

    def add(text: str, kind: UnitKind, start: int) -> None:
        units.append(Unit(text, kind, start, start + len(text), paragraph, len(units)))

    def sentences(prose: str, base: int) -> None:
        cursor = 0
        for part in _SENTENCE_END.split(prose):
            found = prose.find(part, cursor)
            cursor = found + len(part)
            if part.strip():
                add(part.strip(), "sentence", base + found + len(part) - len(part.lstrip()))

    for block in re.finditer(r"[^\n](?:.|\n(?!\s*\n))*", section):
        runs: list[tuple[bool, int, list[str]]] = []  # (is_item, offset, lines)
        offset = block.start()
        for line in block.group(0).split("\n"):
            item = bool(_ITEM.match(line))
            if line.strip():
                if item or not runs or runs[-1][0]:
                    runs.append((item, offset, [line]))
                else:
                    runs[-1][2].append(line)
            offset += len(line) + 1
        for item, at, lines in runs:
            follows_intro = bool(units) and (units[-1].introduces_list or units[-1].is_block)
            wrapped = any(
                re.search(r"[a-z,;]$", a.rstrip()) and re.match(r"\s*[a-z]", b)
                for a, b in zip(lines, lines[1:], strict=False)
            )
            prose_lines = sum(line.rstrip().endswith((".", "?", "!")) for line in lines)
            if not item and len(lines) > 1 and not wrapped and 2 * prose_lines >= len(lines):
                # Paragraphs separated by single line breaks (HTML blocks): one at a time.
                for line in lines:
                    paragraph += 1
                    sentences(line, at)
                    at += len(line) + 1
                continue
            # One line after "like this:" that ends no sentence is a command, not prose.
            command = (
                follows_intro and len(lines) == 1 and not lines[0].rstrip().endswith(tuple(".:?!"))
            )
            if item or command or (len(lines) > 1 and not wrapped):
                kind: UnitKind = "item" if item else "line"
                if not follows_intro:
                    paragraph += 1
                cursor = at
                for line in lines:
                    add(line.strip(), kind, cursor + len(line) - len(line.lstrip()))
                    cursor += len(line) + 1
                continue
            paragraph += 1
            sentences("\n".join(lines).replace("\n", " "), at)  # same length: true offsets
    return units


def _near(units: list[Unit], section: str, passage: str, spare: int = 3) -> list[Unit]:
    """The units a passage covers, the few around it and the section's opening ones.

    Long manual sections hold hundreds of sentences; scoring them all would cost more
    than the answer. The passage was retrieved for the question, so the answer lies in
    it, next to it, or in the section's opening lines (which often state it).
    """
    at = section.find(passage[:200])
    if at < 0:
        keep = list(range(len(units)))
    else:
        end = at + len(passage)
        inside = [i for i, u in enumerate(units) if u.end > at and u.start < end]
        lo, hi = (inside[0], inside[-1]) if inside else (0, -1)
        keep = [i for i in range(len(units)) if i < spare or lo - spare <= i <= hi + spare]
    return [units[i] for i in keep if _usable(units[i])]


def _usable(unit: Unit) -> bool:
    """Units that say something: not the injection marker, not a bare heading-like stub."""
    return INJECTION_MARKER not in unit.text and len(tokenize(unit.text)) >= 2


class SpanSelector:
    """Chooses the answering span among the retrieved passages' sections.

    Args:
        embedder: embeds the question and the candidate units.
        section_of: the passages of a chunk's section, in order (the keyword index
            holds every passage in memory, so this costs no store query).
        idf: inverse document frequency of a term over the knowledge base's passages.
        max_words: the span's word budget (a whole list may go over it, up to twice).
        passages: how many of the best passages are searched for the span.
        whole_section: a section whose words (list items and literal lines counted half)
            stay within this is quoted whole (:attr:`Selection.shown`); 0 turns it off.
            250 was chosen on the fetchmail dev set by the quote's token F1 against the
            FAQ's own answers (0.548 at 0 -> 0.604; zsh, held out: 0.389 -> 0.532).
    """

    # Weights of the unit score and how a span grows: chosen on the fetchmail dev set
    # (bench/answer_devsets.py), reported on zsh as held out (docs/measured.md).
    W_EMBED = 1.0
    W_TERMS = 0.2
    W_POSITION = 0.5
    W_HIT = 1.5
    GROW_FLOOR = 0.5
    """How far below the best unit's score a following unit may fall and still be added."""
    GROW_ACROSS = True
    """Whether a span continues into the section's next paragraphs (within the budget)."""

    def __init__(
        self,
        embedder: Embedder,
        section_of: Callable[[Chunk], Sequence[Chunk]],
        idf: Callable[[str], float],
        max_words: int = 120,
        passages: int = 3,
        whole_section: int = 0,
    ) -> None:
        self.embedder = embedder
        self.section_of = section_of
        self.idf = idf
        self.max_words = max_words
        self.passages = passages
        self.whole_section = whole_section

    def select(self, question: str, hits: Sequence[Hit]) -> list[Selection]:
        """The best span of each of the top passages' sections, best first.

        Passages of one section share a span (the section is searched once).
        """
        candidates: list[tuple[Hit, str, list[Unit], tuple[Unit, ...]]] = []
        seen: set[tuple[str, str, int]] = set()
        for hit in hits[: self.passages]:
            # An FAQ entry is a section of its own (its category is not a section).
            faq = hit.chunk.kind == "faq"
            siblings = [hit.chunk] if faq else list(self.section_of(hit.chunk)) or [hit.chunk]
            key = (hit.chunk.source, hit.chunk.heading, min(c.position for c in siblings))
            if key in seen:
                continue
            seen.add(key)
            section = join_section([_clean(c) for c in siblings])
            every = split_units(section)
            units = _near(every, section, _clean(hit.chunk).text)
            if units:
                # Whole, less what was addressed to an AI (its marker is no answer).
                whole = tuple(u for u in every if INJECTION_MARKER not in u.text)
                short = _cost(every, set(range(len(every)))) <= self.whole_section
                candidates.append((hit, section, units, whole if short else ()))
        if not candidates:
            return []
        flat = [u.text for _, _, units, _ in candidates for u in units]
        vectors = self.embedder.embed(flat)
        qvec = self.embedder.embed_query(question)
        weights = {t: self.idf(t) for t in set(tokenize(question))}
        total = sum(weights.values()) or 1.0
        out: list[Selection] = []
        at = 0
        top = max(h.score for h, _, _, _ in candidates) or 1.0
        for hit, section, units, whole in candidates:
            scores = []
            for i, unit in enumerate(units):
                vec = vectors[at + i]
                cosine = sum(a * b for a, b in zip(qvec, vec, strict=True))
                terms = set(tokenize(unit.text))
                coverage = sum(w for t, w in weights.items() if t in terms) / total
                position = 1.0 / (1.0 + unit.index)
                scores.append(
                    self.W_EMBED * cosine
                    + self.W_TERMS * coverage
                    + self.W_POSITION * position
                    + self.W_HIT * hit.score / top
                )
            at += len(units)
            best = max(range(len(units)), key=lambda i: scores[i])
            span = tuple(self._grow(units, scores, best))
            shown = whole if whole != span else ()
            out.append(Selection(hit, span, section, scores[best], shown))
        out.sort(key=lambda s: -s.score)
        return out

    def _grow(self, units: list[Unit], scores: list[float], best: int) -> list[Unit]:
        """The best unit (its list whole), then the units after it while they fit.

        Literal lines and list items count half against the budget (they are short and
        a symptom's error output is not the answer that follows it), and a span never
        ends on a sentence announcing what follows ("like this:"): the next block is
        added, or the announcement dropped.
        """
        para = units[best].paragraph
        chosen = {best}
        if units[best].is_block or units[best].introduces_list:
            # Steps are useless one at a time: the introducing sentence and every item.
            same = [i for i in range(len(units)) if units[i].paragraph == para]
            intro = [i for i in same if units[i].introduces_list and i <= best]
            chosen |= {i for i in same if units[i].is_block} | set(intro[-1:])
            while _cost(units, chosen) > 2 * self.max_words and len(chosen) > 1:
                chosen.remove(max(chosen))
        floor = scores[best] - self.GROW_FLOOR * abs(scores[best])
        i = max(chosen) + 1
        while i < len(units) and units[i].index == units[i - 1].index + 1:
            if units[i].paragraph != para and not self.GROW_ACROSS:
                break
            group = self._group(units, i)
            if max(scores[j] for j in group) < floor:
                break
            if _cost(units, chosen | set(group)) > self.max_words:
                break
            chosen.update(group)
            i = group[-1] + 1
        first = min(chosen)
        if (
            first > 0
            and _ANAPHOR.match(units[first].text)
            and units[first - 1].paragraph == units[first].paragraph
            and not units[first - 1].is_block
            and _cost(units, chosen | {first - 1}) <= 1.5 * self.max_words
        ):
            # "This will hang fetchmail" says nothing without the sentence "This" is.
            chosen.add(first - 1)
        last = max(chosen)
        if units[last].introduces_list and len(chosen) > 1:
            nxt = last + 1
            fits = False
            if nxt < len(units) and units[nxt].index == units[last].index + 1:
                group = self._group(units, nxt)
                fits = _cost(units, chosen | set(group)) <= 2 * self.max_words
                if fits:
                    chosen.update(group)
            if not fits:
                chosen.discard(last)
        return [units[i] for i in sorted(chosen)]

    @staticmethod
    def _group(units: list[Unit], i: int) -> list[int]:
        """Unit ``i`` alone, or with the block it introduces or belongs to (all of it)."""
        group = [i]
        if units[i].is_block or units[i].introduces_list:
            p = units[i].paragraph
            while (
                group[-1] + 1 < len(units)
                and units[group[-1] + 1].paragraph == p
                and units[group[-1] + 1].index == units[group[-1]].index + 1
            ):
                group.append(group[-1] + 1)
        return group


_ANAPHOR = re.compile(r"(?:This|That|These|Those|It|They|Such|Then|Otherwise)\b")
"""A sentence starting with one of these leans on the sentence before it."""


def _cost(units: list[Unit], chosen: set[int]) -> float:
    """Words a span spends of its budget: list items and literal lines count half."""
    return sum(units[i].words * (0.5 if units[i].is_block else 1.0) for i in chosen)


def _clean(chunk: Chunk) -> Chunk:
    """The passage as it may be shown: instructions addressed to an AI replaced."""
    from dataclasses import replace

    return replace(chunk, text=neutralise_instructions(chunk.text))
