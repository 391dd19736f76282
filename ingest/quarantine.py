"""Quarantine: passages written to the assistant, not to the reader, are held back at ingest.

A manual talks to its reader ("press the reset button", "if you are asked for a
password, ..."). An injected instruction talks to the *assistant* that will read the
document: it gives it a persona or a mode, tells it what to output, sets rules for its
future answers or frees it from its rules. That difference is structural, so the
detector looks for the structures, not for the wording of any known attack:

* **override**: a request to drop the reader's instructions, rules or guidelines
  ("disregard your previous directions");
* **mode**: a named operating mode for the reader ("developer mode", "unfiltered
  mode"; a phone manual may say "developer mode" too, so it needs a second kind);
* **persona**: an identity or role assigned in the second person ("you are going to act
  as...", "pretend to be", "stay in character", "from now on you...");
* **directive**: an instruction about the reader's *output* ("respond exactly with",
  "begin every reply with", "your answers must", "never refuse");
* **ai address**: the reader named as an AI ("as an AI language model", "dear
  assistant", "language models reading this must...");
* **rules**: the reader's rules or policies named as something to be free of ("without
  any restrictions", "content policy", "ethical guidelines");
* **framing**: fiction or simulation set up for the reader ("hypothetical response",
  "simulate a conversation", "in a fictional world");
* **conversation**: the exchange itself named ("for the rest of this conversation");
* **trigger**: a condition on the conversation ("if the user asks", "whenever I say").

Each kind has a weight; a section whose kinds add up to :data:`THRESHOLD` (3) is
quarantined, all its chunks. No single kind is enough unless it is an override: a manual
may say "no restrictions", "developer mode" or "if you are asked for a password", but
not together with a persona or an output directive. Decisions are made per section (a
jailbreak spreads set-up, rules and payload over several chunks, in any order).

Quarantined chunks stay in the store, flagged ``quarantined``, so an administrator can
read and release them (:func:`list_quarantined`, :func:`release`;
``supportbot ingest --quarantined`` / ``--release CHUNK_ID``); retrieval never returns
them, so they never reach a prompt, an extract or a citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from supportbot.config import Settings
from supportbot.errors import IngestError
from supportbot.safety.hygiene import strip_invisible
from supportbot.store import ChromaStore
from supportbot.types import Chunk

__all__ = [
    "THRESHOLD",
    "Finding",
    "QuarantinedPassage",
    "assess",
    "list_quarantined",
    "release",
    "scan_chunks",
    "signals",
]

THRESHOLD = 3.0
EXCERPT_CHARS = 160

# Who a passage may name as its reader when it talks to an AI. Bare "model", "agent",
# "system" and "bot" are left out: manuals name product models and support agents.
_AI = (
    r"(?:a\.?i\.?(?:\s+(?:assistant|model|system|chat\s*bot|language\s+model))?|artificial\s+"
    r"intelligence|(?:virtual\s+|digital\s+|ai\s+)?assistant|chat\s*bot|chatgpt|gpt(?:-?\d[\w.]*)?"
    r"|llms?|(?:large\s+)?language\s+models?|claude|gemini|bard|copilot|llama)"
)
# The second person as the subject of a clause, possibly after "now"/"please".
_YOU_WILL = r"\byou(?:'re|\s+are|'ll|\s+will|\s+shall|\s+must|\s+should|\s+need\s+to|\s+have\s+to)"
# Where an imperative can start: a sentence or line start, a quote, or after "you will",
# "please", "now", "I want you to".
_IMPERATIVE = (
    r"(?:^|(?<=[.!?:;\n\"'(\[*>-])\s*|" + _YOU_WILL + r"\s+(?:now\s+|always\s+|only\s+)?|"
    r"\b(?:please|now|i\s+(?:want|need)\s+you\s+to|you\s+(?:are|were)\s+to)\s+)"
)
_OUTPUT_NOUN = r"(?:responses?|replies|reply|answers?|outputs?)"
_RULES_NOUN = (
    r"(?:restrictions|limitations|limits|filters|filtering|censorship|rules|guidelines|"
    r"policies|morals|morality|ethics|boundaries|constraints|confines|safeguards|programming)"
)

_KINDS: dict[str, tuple[float, list[str]]] = {
    "override": (
        3.0,
        [
            r"\b(?:ignore|disregard|forget|override|bypass|abandon|discard)\s+(?:all\s+|any\s+)?"
            r"(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|original|"
            r"initial|former|your|all|these|those)\s+(?:[\w'-]+\s+){0,2}?(?:instructions?|directions|"
            r"directives|rules|guidelines|policies|programming|restrictions|constraints|safeguards|"
            r"training|prompts?|requests)\b",
            r"\b(?:ignore|disregard|forget)\s+(?:everything|all|what)\s+(?:that\s+)?(?:you\s+"
            r"(?:were|have\s+been|'ve\s+been)\s+told|above|before\s+this|(?:i|we)\s+(?:said|told\s+"
            r"you)\s+before)\b",
            r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+rest\s+of\s+(?:this|the)\s+|"
            r"(?:all\s+)?other\s+|this\s+)(?:data|content|input|context|info(?:rmation)?|text|"
            r"documents?|snippets?)\b",
            r"\bregardless\s+of\s+(?:any\s+|all\s+|your\s+)?(?:previous|prior|earlier|original|"
            r"pre-existing)\s+(?:input|instructions?|requests?|guidelines|rules)\b",
        ],
    ),
    "mode": (
        2.0,
        [
            r"\b(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|uncensored|"
            r"evil|chaos|opposite|unlocked|no[- ]limits?|amoral)\s?mode\b",
            r"\bjailbr(?:eak|oken)(?:ed|s)?\b",
        ],
    ),
    "persona": (
        2.0,
        [
            _YOU_WILL
            + r"\s+(?:now\s+|going\s+to\s+|about\s+to\s+|be\s+)*(?:act(?:ing)?|pretend(?:ing)?|"
            r"play(?:ing)?|role-?play(?:ing)?|simulat(?:e|ing)|impersonat(?:e|ing)|"
            r"(?:answer|respond|reply|speak|talk)(?:ing)?\s+as|be\s+(?:my|called|named|known\s+as))\b",
            r"\byou\s+(?:are|'re)\s+(?:now\s+|no\s+longer\s+|going\s+to\s+be\s+)(?:an?\s+|the\s+|my\s+|"
            r"called\s+|named\s+|known\s+as\s+|(?-i:[A-Z]))",
            _IMPERATIVE
            + r"(?:act|behave|respond|answer|reply|speak|talk|write)[ \t]+(?:(?:every|all|each|my|"
            r"any|the|of|to)[ \t]+|(?:questions?|prompts?|messages?|requests?)[ \t]+){0,3}"
            r"(?:as|like)[ \t]+"
            r"(?:if\s+you|though\s+you|you\s+(?:are|were)\b|an?\b|the\b|my\b|(?-i:[A-Z]))",
            r"\bpretend\s+(?:to\s+be|you\s+are|you're|that\s+you)\b",
            r"\byou\s+(?:are|'re)\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,3}?(?:called|named|"
            r"known\s+as)\b",
            r"\b(?:play|take\s+on|assume|adopt|embody)\s+(?:the\s+|a\s+|this\s+)?(?:role|persona|"
            r"character|identity|personality)\b",
            r"\b(?:stay|remain|break|breaking|broke)\s+(?:in|out\s+of)\s+character\b",
            r"\byour\s+(?:new\s+)?(?:name|persona|role|character|identity|personality)\s+"
            r"(?:is|will\s+be|shall\s+be)\b",
            r"\bfrom\s+now\s+on\b[^.!?\n]{0,60}\byou\b",
            r"\byou\b[^.!?\n]{0,60}\bfrom\s+now\s+on\b",
            r"\bi\s+(?:want|need)\s+you\s+to\s+(?:act|pretend|be|play|become|simulate|imagine|"
            r"respond|answer|reply)\b",
            r"\bimagine\s+(?:that\s+)?you\s+(?:are|were)\b",
        ],
    ),
    "directive": (
        2.0,
        [
            _YOU_WILL + r"\s+(?:now\s+|always\s+|only\s+|henceforth\s+)*(?:answer|respond|reply|"
            r"output)\b",
            r"\b(?:respond|reply|answer|say|output|print|type|repeat|return|state)\s+"
            r"(?:(?:only|just|back|it|this|that|them|to\s+(?:me|this|it))\s+){0,2}"
            r"(?:exactly|verbatim|word\s+for\s+word|with\s+(?:only|just|exactly|nothing\s+but)|"
            r"only\s+with|nothing\s+(?:else|but)|in\s+the\s+(?:following\s+)?(?:form|format|style|"
            r"manner)|the\s+following\s+(?:text|message|phrase|"
            r"sentence|words?|response|string|line)s?)\b",
            r"\b(?:start|begin|prefix|open|end|finish|conclude)\s+(?:each|every|all|your|the)\s+"
            r"(?:of\s+your\s+)?(?:first\s+|next\s+)?" + _OUTPUT_NOUN + r"\b",
            r"\b(?:your|each|every|all)\s+(?:first\s+|next\s+|future\s+|subsequent\s+)?"
            + _OUTPUT_NOUN
            + r"\s+(?:must|should|will|shall|has\s+to|have\s+to|needs?\s+to|are\s+to|is\s+to)\b",
            r"\b(?:do\s+not|don't|never|must\s+not|will\s+not|won't|cannot|can't)\s+(?:ever\s+)?"
            r"(?:refuses?|declines?|apologi[sz]es?|add\s+(?:any\s+)?(?:warnings?|disclaimers?|notes?)|"
            r"break\s+character|remind\s+(?:me|the\s+user)|mention\s+that\s+you)\b",
            r"\bwithout\s+(?:any\s+)?(?:warnings?|disclaimers?|caveats|moralizing|moralising)\b",
            r"\b(?:two|2|both)\s+(?:different\s+|separate\s+)?(?:responses|answers|paragraphs)\b"
            r"[^.!?\n]{0,40}\b(?:one|first|normal)\b",
            r"\b(?:in\s+)?(?:every|each)\s+(?:single\s+)?(?:response|reply|answer|output)\b",
            r"\b(?:in|into|to|at\s+the\s+(?:end|start|beginning|top|bottom)\s+of|within|throughout)\s+"
            r"(?:each\s+of\s+|all\s+of\s+)?your\s+(?:next\s+|final\s+|first\s+)?(?:responses?|answers?|"
            r"outputs?)\b",
            _IMPERATIVE
            + r"(?:tell|inform|show|give|provide|report|send|say)\b(?:\s+[\w'-]+){0,4}?\s+"
            r"(?:to\s+)?the\s+(?:user|customer|human|reader)s?\b",
            r"\bfocus\s+(?:only|exclusively|solely)\s+on\b",
            r"\byour\s+(?:first\s+|next\s+|final\s+)?(?:responses?|replies|reply|answers?|outputs?)"
            r"\s*,?\s+(?:always\s+|standardly\s+)?(?:beginning|starting|ending|opening)\s+with\b",
            r"\b(?:new\s*)?(?:response|output|answer|reply)[-_ ]?format\s*[:}]",
            _IMPERATIVE
            + r"(?:respond|reply|answer|output|write)\s+(?:only\s+|exclusively\s+)?in\s+"
            r"(?:[\w-]+\s+){1,2}?(?:format|form|style|language|verse|code)\b",
            _IMPERATIVE
            + r"(?:start|begin|open|prefix|end)\s+(?:(?:your|the|each|every)\s+(?:[\w-]+\s+)?)?"
            r"with\s*[\"'\u201c<]",
        ],
    ),
    "ai address": (
        2.0,
        [
            r"\bas\s+(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,2}?" + _AI + r"\b",
            r"\byou\s+(?:are|'re)\s+(?:now\s+|no\s+longer\s+|just\s+|only\s+|not\s+)?(?:an?\s+|the\s+)?"
            r"(?:[\w-]+\s+){0,2}?" + _AI + r"\b",
            r"\b(?:dear|hey|hello|hi|attention|note\s+to|message\s+(?:to|for)|instructions?\s+"
            r"(?:to|for))\s+(?:the\s+|any\s+|all\s+|every\s+)?" + _AI + r"\b",
            _AI + r"s?\s+(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing)\s+(?:this|these"
            r"|the\s+following)\b",
            _AI + r"s?\s+(?:must|should|shall|will|may)\s+(?:now\s+|always\s+|never\s+|not\s+)?"
            r"(?:respond|answer|reply|say|output|ignore|follow|comply|obey|refuse|provide|generate)\b",
            r"\byour\s+(?:system\s+prompt|initial\s+prompt|original\s+instructions|programming|"
            r"training(?:\s+data)?|guidelines|content\s+polic(?:y|ies)|filters|creators?|developers)\b",
        ],
    ),
    "task": (
        1.5,
        [
            r"\byour\s+(?:new\s+|real\s+|actual\s+|only\s+|next\s+|primary\s+)?(?:task|mission|"
            r"directive|instructions|objective|purpose|orders)\b",
            r"\bnew\s+(?:[\w'-]+\s+){0,2}?(?:instructions|task|directives?|orders|rules)\b",
            r"\b(?:urgent|priority|important)\s+(?:new\s+)?(?:task|instructions?)\b",
        ],
    ),
    "turns": (
        1.5,
        [
            r"(?-i:^[ \t>*#-]*(?:System|SYSTEM|Assistant|ASSISTANT|User|USER|Human|HUMAN|AI)"
            r"(?:[- ]?(?:[Mm]essage|MESSAGE|[Pp]rompt|PROMPT|[Nn]ote|NOTE|[Qq]uery|QUERY|[Ii]nput|"
            r"INPUT|[Rr]equest))?\s*:(?!//))",
            r"[<\[]\|?/?(?:system|assistant|user|inst|im_start|im_end|endoftext|end_of_turn|"
            r"start_of_turn|eot_id|end\s+of\s+(?:session|conversation|prompt|document))\b",
        ],
    ),
    "rules": (
        1.5,
        [
            r"\b(?:no|without|free\s+(?:of|from)|beyond|not\s+(?:bound|restricted|limited|"
            r"constrained)\s+by|broken?\s+free\s+(?:of|from)|released\s+from|unbound\s+by|"
            r"regardless\s+of)\s+(?:any\s+|all\s+|the\s+|your\s+)?(?:of\s+(?:the|its|their|your)\s+)?"
            r"(?:typical\s+|usual\s+|normal\s+|ethical\s+|moral\s+|content\s+|safety\s+)*"
            + _RULES_NOUN
            + r"\b",
            r"\b(?:openai|anthropic|content\s+polic(?:y|ies)|usage\s+polic(?:y|ies)|"
            r"(?:ethical|safety|moral)\s+(?:guidelines|principles|constraints|compass))\b",
            r"\b(?:illegal|unethical|immoral|harmful|explicit|offensive|nsfw)\b[^.!?\n]{0,40}"
            r"\b(?:content|requests?|questions?|answers?|responses?|information)\b",
            r"\b(?:censor(?:ed|ship)?|uncensored|unfiltered|amoral)\b",
        ],
    ),
    "framing": (
        1.5,
        [
            r"\bhypothetical(?:ly)?\b[^.!?\n]{0,30}\b(?:response|scenario|story|world|setting|"
            r"situation|character|conversation|answer|reply)\b",
            r"\bsimulat(?:e|ing|ion\s+of)\s+(?:a\s+|an\s+|the\s+)?(?:[\w-]+\s+){0,2}?(?:mode|"
            r"conversation|dialog(?:ue)?|character|persona|ai|chatbot|personality|being|game|"
            r"scenario|machine)\b",
            r"\b(?:fictional|imaginary|fantasy|alternate|parallel)\s+(?:[\w-]+\s+)?(?:world|universe|"
            r"scenario|setting|story|reality|characters?|ais?|models?|chat\s*bots?|assistants?|"
            r"personas?|entity|entities)\b",
            r"\bfor\s+(?:purely\s+)?(?:educational|research|academic|entertainment)\s+purposes\b",
            r"\blet'?s\s+play\s+a\s+game\b",
            r"\b(?:this|it)\s+is\s+(?:just\s+|only\s+)?(?:a|an)\s+(?:game|role-?play|fiction|"
            r"hypothetical)\b",
        ],
    ),
    "request": (
        1.5,
        [
            r"\b(?:i|we)\s+(?:really\s+)?(?:need|want|would\s+like|require|expect)\s+you\s+to\b",
            r"\b(?:you|we)\s+(?:already\s+)?(?:agreed|promised|mentioned|discussed|said)\s+"
            r"(?:earlier|before|previously|to\s+help|that\s+you)\b",
        ],
    ),
    "conversation": (
        1.0,
        [
            r"\b(?:this|our|the\s+current|the\s+rest\s+of\s+(?:this|the|our))\s+(?:previous\s+|earlier\s+|"
            r"last\s+|ongoing\s+)?(?:conversation|chat|dialog(?:ue)?|exchange)\b",
        ],
    ),
    "trigger": (
        1.0,
        [
            r"\b(?:if|when|whenever|once)\s+(?:the\s+)?(?:user|human|customer|someone|anyone|i)\s+"
            r"(?:asks?|says?|types?|writes?|requests?|mentions?|sends?|gives?\s+you|tells?\s+you)\b",
            r"\b(?:if|when|whenever)\s+(?:you\s+are|you're|you\s+get)\s+(?:asked|told|prompted|"
            r"questioned)\b",
            r"\b(?:the\s+)?user'?s?\s+(?:question|prompt|request|query|message)s?\b",
        ],
    ),
}

_COMPILED = {
    kind: (weight, [re.compile(p, re.I | re.M) for p in patterns])
    for kind, (weight, patterns) in _KINDS.items()
}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


@dataclass(frozen=True)
class Signal:
    """One structure found: its kind, which of its patterns, and the words that showed it."""

    kind: str
    text: str
    start: int
    pattern: int = 0


@dataclass(frozen=True)
class Finding:
    """The detector's verdict on a passage."""

    score: float
    kinds: tuple[str, ...]
    signals: tuple[Signal, ...]

    @property
    def quarantined(self) -> bool:
        """True when the passage reaches :data:`THRESHOLD`."""
        return self.score >= THRESHOLD

    def reason(self) -> str:
        """``persona ("you are going to act"), directive ("respond exactly")``."""
        first: dict[str, str] = {}
        for s in self.signals:
            first.setdefault(s.kind, s.text)
        return ", ".join(f'{k} ("{_short(v, 60)}")' for k, v in first.items())


def _short(text: str, n: int) -> str:
    text = re.sub(r"\s+", " ", strip_invisible(text)).strip()
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def _normalise(text: str) -> str:
    # Markdown emphasis and quotes vary; the structures do not.
    return re.sub(r"[*_`~]+", "", strip_invisible(text).translate(_QUOTES))


def signals(text: str) -> list[Signal]:
    """Every structure of :data:`_KINDS` in ``text``, in order."""
    text = _normalise(text)
    found: list[Signal] = []
    for kind, (_, patterns) in _COMPILED.items():
        for n, pattern in enumerate(patterns):
            for m in pattern.finditer(text):
                found.append(Signal(kind, m.group(0).strip(), m.start(), n))
    found.sort(key=lambda s: s.start)
    return found


def _score(found: Sequence[Signal]) -> float:
    """Each kind counts its weight once; other structures of a kind add half a point each.

    At most one point in all is added that way. Repetition adds nothing: a long reference
    section may say "each response must" twenty times and still be a manual. Variety
    does: a persona set up three ways ("I want you to", "pretend to be", "your new name
    is") is addressed to the assistant.
    """
    kinds = {s.kind for s in found}
    structures = {(s.kind, s.pattern) for s in found}
    base = sum(_COMPILED[k][0] for k in kinds)
    return base + min(0.5 * (len(structures) - len(kinds)), 1.0)


def assess(text: str) -> Finding:
    """Score one passage; ``finding.quarantined`` says whether it addresses the assistant."""
    found = signals(text)
    kinds = tuple(dict.fromkeys(s.kind for s in found))
    return Finding(_score(found), kinds, tuple(found))


def scan_chunks(chunks: Sequence[Chunk]) -> dict[str, Finding]:
    """The chunks of one file to quarantine, by id, each with the finding that holds it.

    Chunks are judged by section (same heading and page; each FAQ entry on its own), so a
    set-up in one chunk and its payload in the next are seen together, and a section
    that addresses the assistant is held whole: the payload of a jailbreak may sit before
    its set-up or after it, in text with no cue of its own.
    """
    sections: dict[tuple[str, ...], list[Chunk]] = {}
    for c in chunks:
        key = ("faq", c.id) if c.kind == "faq" else ("doc", c.heading, str(c.page))
        sections.setdefault(key, []).append(c)
    out: dict[str, Finding] = {}
    for members in sections.values():
        found = [
            s for c in sorted(members, key=lambda c: c.position) for s in signals(_chunk_text(c))
        ]
        section = Finding(_score(found), tuple(dict.fromkeys(s.kind for s in found)), tuple(found))
        if section.quarantined:
            out.update((c.id, section) for c in members)
    return out


def _chunk_text(chunk: Chunk) -> str:
    return f"{chunk.question}\n{chunk.text}" if chunk.question else chunk.text


# -- the admin's side: list and release -------------------------------------------------------


@dataclass(frozen=True)
class QuarantinedPassage:
    """A passage held back from answers, for an administrator to read and release."""

    chunk_id: str
    source: str
    title: str
    heading: str
    page: int | None
    reason: str
    text: str

    @property
    def where(self) -> str:
        """``source > heading (p. 3)``: the file and section, for reports."""
        place = " > ".join(p for p in (self.source, self.heading) if p)
        return place + (f" (p. {self.page})" if self.page else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def excerpt(text: str) -> str:
    """The start of a passage, on one line, for reports."""
    return _short(text, EXCERPT_CHARS)


def list_quarantined(settings: Settings, store: ChromaStore) -> list[QuarantinedPassage]:
    """Every quarantined passage in the index, by source and position.

    ``settings`` is taken for symmetry with :func:`release` (the knowledge-base page has
    both at hand); nothing is written.
    """
    del settings
    got = store.chunks.get(
        where={"$and": [{"quarantined": True}, {"record": "passage"}]},
        include=["documents", "metadatas"],
    )
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (cid, doc or "", dict(meta or {}))
        for cid, doc, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
        )
    ]
    rows.sort(key=lambda r: (str(r[2].get("source", "")), int(r[2].get("position") or 0)))
    return [_passage(cid, doc, meta) for cid, doc, meta in rows]


def _passage(chunk_id: str, text: str, meta: dict[str, Any]) -> QuarantinedPassage:
    page = meta.get("page")
    return QuarantinedPassage(
        chunk_id=chunk_id,
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        heading=str(meta.get("heading", "")),
        page=int(page) if page is not None else None,
        reason=str(meta.get("quarantine_reason", "")),
        text=text,
    )


def release(settings: Settings, store: ChromaStore, chunk_id: str) -> QuarantinedPassage:
    """Let a quarantined passage be retrieved again (an administrator read it and trusts it).

    The release is recorded on the passage (``released_at``) and survives re-ingesting
    an unchanged file and ``--rebuild``; if the passage's text changes it is a new passage
    and is checked again.

    Raises:
        IngestError: no passage has this id, or it is not quarantined.
        StoreLockedError: an ingest run holds the index for longer than the lock timeout.
    """
    from ingest.pipeline import writer_lock

    with writer_lock(settings):
        got = store.chunks.get(ids=[chunk_id], include=["documents", "metadatas"])
        if not got["ids"]:
            raise IngestError(
                f"No passage has the id {chunk_id!r}. List the quarantined ones with "
                "`supportbot ingest --quarantined`."
            )
        meta: dict[str, Any] = dict((got["metadatas"] or [{}])[0] or {})
        if not meta.get("quarantined"):
            raise IngestError(f"Passage {chunk_id} is not quarantined; nothing to release.")
        passage = _passage(chunk_id, (got["documents"] or [""])[0] or "", meta)
        when = datetime.now(UTC).isoformat(timespec="seconds")
        store.update_metadata(
            {chunk_id: {"quarantined": False, "released": True, "released_at": when}}
        )
        recount_quarantined(store, passage.source)
        return passage


def recount_quarantined(store: ChromaStore, source: str) -> int:
    """Store the number of ``source``'s quarantined passages in its manifest entry.

    The keyword index is rebuilt when a manifest entry changes, so a released passage
    becomes searchable by keyword as soon as it is by meaning.
    """
    got = store.chunks.get(
        where={"$and": [{"source": source}, {"record": "passage"}, {"quarantined": True}]},
        include=[],
    )
    n = len(got["ids"])
    record = store.files().get(source)
    if record is not None and record.quarantined != n:
        store.put_file(replace(record, quarantined=n))
    return n


def released_ids(store: ChromaStore) -> set[str]:
    """Ids of passages an administrator released (kept across ``--rebuild``)."""
    got = store.chunks.get(where={"$and": [{"released": True}, {"record": "passage"}]}, include=[])
    return set(got["ids"])


def flag_metadata(finding: Finding | None, released: bool = False) -> dict[str, str | bool]:
    """The metadata a chunk is stored with: its quarantine flag and why."""
    if finding is None:
        return {"quarantined": False}
    if released:
        return {
            "quarantined": False,
            "quarantine_reason": finding.reason(),
            "released": True,
            "released_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    return {"quarantined": True, "quarantine_reason": finding.reason()}


def describe(chunks: Iterable[Chunk], flagged: dict[str, Finding]) -> list[dict[str, Any]]:
    """Report entries (chunk id, section, page, reason, excerpt) for the flagged chunks."""
    return [
        {
            "chunk_id": c.id,
            "section": c.heading,
            "page": c.page,
            "reason": flagged[c.id].reason(),
            "excerpt": excerpt(c.text),
        }
        for c in chunks
        if c.id in flagged
    ]
