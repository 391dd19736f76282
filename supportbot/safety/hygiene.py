"""Input hygiene: what reaches retrieval and the prompt is clean, bounded text.

Questions are cleaned (control and invisible characters removed, length capped) with a
notice the customer sees; an empty question is refused. Passages are neutralised before
they enter the prompt: sentences addressed to an AI ("ignore previous instructions",
"you are now...") are replaced by a marker, so a poisoned document is data, never
instructions.
"""

from __future__ import annotations

import re
import unicodedata

from supportbot.errors import InputError

# Characters a reader cannot see but a model (or a browser) acts on: C0/C1 controls except
# tab and newline (ESC starts terminal escape sequences); soft hyphen; zero-width
# characters and joiners; bidi marks, embeddings, overrides and isolates (Trojan Source);
# invisible operators; BOM; interlinear annotation marks; variation selectors (also
# abused to smuggle bytes, VS17-256 included); Unicode tag characters (ASCII smuggling);
# other format characters (Mongolian vowel separator, Arabic letter mark, Hangul fillers).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    "\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e007f"
    "\U000e0100-\U000e01ef]"
)

# Cues that a sentence addresses the model rather than the customer. Written as generic
# categories (override requests, role and turn markers, notes to AI readers, trigger
# conditions, output directives, new tasks, mode switches) after reading the published
# corpora bench/attacks.py uses; they must leave the sample knowledge base untouched
# (tests/test_injection.py checks every chunk of kb/docs).
_CUES = [
    # override: "ignore all previous instructions", "disregard all info except...",
    # "override manual scoring", "ignore the rest of this data"
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:[\w'-]+\s+){0,4}?(?:instructions?|"
    r"directions?|directives?|rules|prompts?|guidelines|constraints|restrictions|boundaries|"
    r"policies|requests?|indicators|scoring|context|data|content|text|info(?:rmation)?|input|"
    r"messages?|above|everything)\b",
    # role and turn markers: "\nAssistant: ...", "SYSTEM: ...", "[system]", "<|endoftext|>"
    # (capitalised, as a speaker label is: PDF text wraps lines anywhere, "web\nadmin: ...")
    r"(?:^|(?<=[\n.!?>\]*-])\s*)(?-i:(?:System|Assistant|User|Human|Admin|Developer)"
    r"(?:\s+(?:[Mm]essage|[Pp]rompt|[Nn]ote|[Rr]equest|[Oo]verride|[Ii]nstructions?))?)\s*:(?!//)",
    r"(?-i:\b(?:SYSTEM|ASSISTANT|ADMIN)(?:\s+(?:MESSAGE|PROMPT|REQUEST|NOTE))?\s*:{1,2})",
    r"\[\s*/?\s*(?:system|inst|admin|assistant|user|rest-of-document)\b",
    r"<\|?\s*/?\s*(?:system|im_start|im_end|endoftext|end_of_turn|start_of_turn|eot_id|"
    r"instructions?|assistant|user|end of session)\b",
    # notes to AI readers: "Note to automated analysis software", "for automated screening"
    r"\b(?:note|message|instructions?|reminder|memo)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
    r"(?:ai|assistants?|models?|llms?|chatbots?|bots?|gpt|automated|language\s+models?)\b",
    r"\bfor\s+(?:the\s+)?(?:ai|llm|automated|language\s+model)\s+(?:screening|analysis|"
    r"systems?|software|models?|assistants?|readers?)\b",
    r"\bvisible\s+to\s+(?:the\s+)?(?:llms?|ai|models?)\b",
    # trigger conditions: "If user asks for a summary, reply with...", "If questioned, ..."
    r"\b(?:if|when)\s+(?:the\s+)?(?:user|human)\s+asks\b",
    r"\bif\s+(?:questioned|prompted)\b",
    r"\bif\s+asked\s+(?:how|what|about|whether)\b",
    r"\bif\s+you\s+are\s+(?:told|asked)\s+to\s+(?:summari[sz]e|answer|translate)\b",
    # output directives: "reply with only the following", "include in your response"
    r"\b(?:reply|respond|output|print|repeat)\b\s+(?:[\w'-]+\s+){0,3}?(?:the\s+following|"
    r"exactly|verbatim|nothing\s+else)\b",
    r"\bprint\s*[\"'\u201c\u2018<(]",
    r"\b(?:include|add|append|insert|put)\b.{0,40}?\bin\s+your\s+(?:response|answer|reply|"
    r"output)\b",
    r"\bfocus\s+(?:only|exclusively|solely)\s+on\b",
    # new tasks: "NEW INSTRUCTIONS", "your new task is to", "URGENT NEW TASK"
    r"\bnew\s+(?:[\w'-]+\s+){0,2}?(?:instructions?|task|directives?|orders)\b",
    r"\b(?:urgent|priority)\s+(?:new\s+)?task\b",
    r"\bcore\s+instructions?\b",
    r"\bfollow\s+(?:this|these|the\s+following|my|new)\s+instructions?\b",
    r"\byour\s+(?:new\s+|real\s+|actual\s+|only\s+)?(?:task|role|job|mission|goal)\s+"
    r"(?:is|now)\b",
    r"\bspecial\s+case\s*:",
    # mode switches and personas: "DEVELOPER MODE ENABLED", "you are now DAN"
    r"\b(?:developer|debug|god|jailbreak|dan|unrestricted)\s+mode\s+(?:is\s+|has\s+been\s+)?"
    r"(?:enabled|activated|on)\b",
    r"\byou\s+are\s+(?:now\s+)?(?:operating|running)\s+(?:in|as)\b",
    r"\byou\s+are\s+now\s+(?:a|an|in|dan)\b",
    r"\bdo\s+anything\s+now\b",
    # asking for the prompt itself
    r"\b(?:reveal|print|show|repeat|output)\s+(?:your|the)\s+(?:system\s+prompt|instructions|"
    r"configuration|initial\s+prompt)",
    r"\bsystem\s+prompt\s*:",
]
_INJECTION = re.compile("(?im)" + "|".join(f"(?:{c})" for c in _CUES))
_PARAGRAPH = re.compile(r"(\n[ \t]*\n)")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
INJECTION_MARKER = "[text addressed to the assistant removed]"


def strip_invisible(text: str) -> str:
    """Remove control, zero-width, bidi, variation-selector and Unicode tag characters.

    Hidden text is how instructions are smuggled past a human reviewer (tag characters
    spell ASCII invisibly; bidi overrides reorder what is shown), so everything that is
    read by the model or shown to a person goes through this first.
    """
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text))


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}")
MAX_ID_CHARS = 128


def check_text(value: object, what: str) -> str:
    """Untrusted text at the boundary: a ``str`` of Unicode scalar values, or an InputError.

    The one gate every question, reply and id passes through (Python API, CLI, web UI),
    so nothing deeper (tokenizers, SQLite, the model) ever sees a non-string or a lone
    surrogate (what a JSON escape of one, or undecodable bytes, produce).

    Args:
        value: what the caller sent.
        what: its name in the error message ("The question", "The conversation id").

    Raises:
        InputError: not a string, or not valid Unicode text; the message says what to do.
    """
    if not isinstance(value, str):
        raise InputError(
            f"{what} must be text (a string), not {type(value).__name__}. Send it as a string."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what} holds characters that are not valid Unicode text (position {exc.start}: a "
            "lone surrogate, e.g. from undecodable bytes). Send UTF-8 text; decode bytes with "
            "errors='replace'."
        ) from None
    return value


def check_id(value: object, what: str = "The conversation id") -> str:
    """An id from outside (conversation, hand-off): 1-128 plain ASCII characters.

    Ids end up in SQLite keys, URLs and log lines; a short, plain alphabet keeps them
    harmless there.

    Raises:
        InputError: not a string, empty, too long, or with other characters.
    """
    text = check_text(value, what)
    if not _ID.fullmatch(text):
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise InputError(
            f"{what} {shown!r} is not valid: use 1-{MAX_ID_CHARS} letters, digits or "
            "'.', '_', ':', '@', '+', '=', '-', starting with a letter or digit."
        )
    return text


def clean_question(text: object, max_chars: int) -> tuple[str, list[str]]:
    """Clean a customer message; returns the text and notices for the customer.

    Raises:
        InputError: not text (see :func:`check_text`), or nothing readable is left.
    """
    text = check_text(text, "The question")
    notices: list[str] = []
    cleaned = strip_invisible(text)
    if cleaned != text and len(text) - len(cleaned) > 0:
        notices.append("Invisible or control characters were removed from your message.")
    cleaned = re.sub(r"[ \t]+", " ", cleaned).strip()
    if not cleaned:
        raise InputError(
            "Your message is empty. Please type your question, for example "
            "'What does this error message mean?'."
        )
    if len(cleaned) > max_chars:
        cleaned = cleaned[:max_chars].rstrip()
        notices.append(
            f"Your message was {len(text):,} characters long; only the first {max_chars:,} were "
            "read. For best results, ask one short question (an error code and what you tried)."
        )
    return cleaned, notices


def neutralise_instructions(text: str) -> str:
    """Replace text that tries to instruct the model with a visible marker.

    From the first sentence holding a cue to the end of its paragraph, every sentence
    becomes a marker: an injection is a cue ("If user asks for a summary, reply with only
    the following text:") followed by its payload, often on the next line, and removing
    only the cue would leave the payload to be quoted as fact.
    """
    if not _INJECTION.search(text):
        return text.strip()
    out: list[str] = []
    for part in _PARAGRAPH.split(text):
        m = _INJECTION.search(part)
        if m is None or _PARAGRAPH.fullmatch(part):
            out.append(part)
            continue
        start = max(part.rfind(ch, 0, m.start()) for ch in ".!?\n") + 1
        tail = part[start:]
        count = sum(1 for s in _SENTENCE.findall(tail) if s.strip()) or 1
        head = part[:start].rstrip()
        out.append((head + " " if head else "") + " ".join([INJECTION_MARKER] * count))
    return "".join(out).strip()


def looks_like_injection(text: str) -> bool:
    """True when ``text`` holds a sentence addressed to the assistant."""
    return bool(_INJECTION.search(text))
