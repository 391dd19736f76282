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

from supportbot.errors import SupportBotError


class InputError(SupportBotError):
    """The customer's message cannot be used as it is; the message says what to do."""


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

_INJECTION = re.compile(
    r"(?is)[^.!?\n]*\b("
    r"(ignore|disregard|forget|override)\s+(all\s+|any\s+|the\s+)?(previous|prior|above|earlier|"
    r"preceding|system)\s+(instructions?|prompts?|rules|messages?)"
    r"|you\s+are\s+now\s+(a|an|in)\b"
    r"|(reveal|print|show|repeat)\s+(your|the)\s+(system\s+prompt|instructions|configuration)"
    r"|new\s+instructions?\s*:"
    r"|system\s+prompt\s*:"
    r")[^.!?\n]*[.!?]?"
)
INJECTION_MARKER = "[text addressed to the assistant removed]"


def strip_invisible(text: str) -> str:
    """Remove control, zero-width, bidi, variation-selector and Unicode tag characters.

    Hidden text is how instructions are smuggled past a human reviewer (tag characters
    spell ASCII invisibly; bidi overrides reorder what is shown), so everything that is
    read by the model or shown to a person goes through this first.
    """
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text))


def clean_question(text: str, max_chars: int) -> tuple[str, list[str]]:
    """Clean a customer message; returns the text and notices for the customer.

    Raises:
        InputError: nothing readable is left.
    """
    notices: list[str] = []
    cleaned = strip_invisible(text)
    if cleaned != text and len(text) - len(cleaned) > 0:
        notices.append("Invisible or control characters were removed from your message.")
    cleaned = re.sub(r"[ \t]+", " ", cleaned).strip()
    if not cleaned:
        raise InputError(
            "Your message is empty. Please type your question, for example "
            "'What does error E-104 mean?'."
        )
    if len(cleaned) > max_chars:
        cleaned = cleaned[:max_chars].rstrip()
        notices.append(
            f"Your message was {len(text):,} characters long; only the first {max_chars:,} were "
            "read. For best results, ask one short question (an error code and what you tried)."
        )
    return cleaned, notices


def neutralise_instructions(text: str) -> str:
    """Replace sentences that try to instruct the model with a visible marker."""
    return _INJECTION.sub(" " + INJECTION_MARKER + " ", text).strip()


def looks_like_injection(text: str) -> bool:
    """True when ``text`` holds a sentence addressed to the assistant."""
    return bool(_INJECTION.search(text))
