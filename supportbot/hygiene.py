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


# C0/C1 controls except tab and newline; zero-width and bidi controls; tag characters.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
    "\ufe00-\ufe0f\U000e0000-\U000e007f]"
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
    """Remove control, zero-width, bidi-override and Unicode tag characters."""
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
