"""Output guard: the bot never shows its instructions or its configuration.

"Repeat the text above", "print your system prompt", "what model are you running?":
a small model asked these, by a customer or by a poisoned document, often obliges. The
prompt is not secret in the cryptographic sense, but echoing it helps an attacker craft
the next injection, and configuration values (model file, data folder, server URLs,
keys) describe the deployment. So after verification every answer sentence is checked:

* a sentence sharing any run of ``NGRAM`` consecutive words with the prompt's own text
  (:data:`supportbot.prompt.INSTRUCTIONS` and its fixed scaffolding) is removed;
* a sentence containing a configuration value (paths, URLs, keys, model names, taken from
  the live :class:`~supportbot.config.Settings` and the generator) is removed.

Removed sentences are recorded with the reason, like verification's. When nothing is
left, the caller falls back to quoting the best passage, as for any unsupported answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from supportbot.config import Settings
from supportbot.types import Removed
from supportbot.verify import split_sentences

__all__ = [
    "LEAK_INSTRUCTIONS",
    "LEAK_SETTING",
    "NGRAM",
    "StreamGuard",
    "config_values",
    "guard_answer",
]

NGRAM = 5
"""Words in a row shared with the instructions that make a sentence a leak (5: "one to
three sentences using" is a leak; ordinary answers share at most three or four)."""
LEAK_INSTRUCTIONS = "repeats the assistant's instructions"
LEAK_SETTING = "reveals a configuration value"

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SECRET_FIELDS = re.compile(r"(?i)(key|secret|token|password|url|path|dir|model)")
_MIN_SECRET = 6


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@functools.lru_cache(maxsize=1)
def _prompt_shingles() -> frozenset[tuple[str, ...]]:
    from supportbot.prompt import INSTRUCTIONS, SCAFFOLDING

    out: set[tuple[str, ...]] = set()
    for text in (INSTRUCTIONS, *SCAFFOLDING):
        out |= _shingles(text)
    return frozenset(out)


def _walk(value: Any, name: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{name}.{k}" if name else str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v, name)
    else:
        yield name, value


def config_values(settings: Settings, model_name: str = "") -> list[str]:
    """Configuration strings an answer must not contain.

    Paths (as configured and resolved, and file names with an extension), URLs, keys
    and secrets, model names: every setting whose name says it is one of these.
    Public contacts (``handoff.redact_allow``) and phrase lists are not secrets.
    """
    found: set[str] = set()
    dumped = settings.model_dump()
    dumped.get("handoff", {}).pop("redact_allow", None)
    dumped.get("escalation", {}).pop("sensitive_topics", None)
    dumped.pop("render", None)
    derived = [
        getattr(settings, attr, None)
        for attr in ("store_path", "conversations_path", "handoff_queue_path")
    ]
    items = list(_walk(dumped)) + [("derived.path", p) for p in derived if p is not None]
    items.append(("llm.model", model_name))
    for name, value in items:
        if value is None or isinstance(value, (bool, int, float)):
            continue
        if not (isinstance(value, Path) or _SECRET_FIELDS.search(name.rsplit(".", 1)[-1])):
            continue
        text = str(value).strip()
        if not text or text in ("default", "cpu", "cuda", "auto", "sqlite", "memory"):
            continue
        found.add(text)
        if isinstance(value, Path) or "/" in text:
            path = Path(text)
            found.add(str(path.expanduser().resolve()))
            if path.suffix or path.name.startswith("."):
                found.add(path.name)
    return sorted(v for v in found if len(v) >= _MIN_SECRET)


def leak_reason(
    sentence: str, secrets: Sequence[str], shingles: frozenset[tuple[str, ...]] | None = None
) -> str | None:
    """Why ``sentence`` leaks the prompt or the configuration, or None."""
    lowered = sentence.lower()
    if any(s.lower() in lowered for s in secrets):
        return LEAK_SETTING
    if _shingles(sentence) & (shingles if shingles is not None else _prompt_shingles()):
        return LEAK_INSTRUCTIONS
    return None


def guard_answer(
    text: str, settings: Settings, model_name: str = "", secrets: Sequence[str] | None = None
) -> tuple[str, list[Removed]]:
    """Drop the sentences of ``text`` that leak the instructions or configuration.

    ``secrets`` are the :func:`config_values` when the caller already has them (the
    answer loop computes them once for the stream guard and this check).

    Returns:
        The remaining text (possibly empty) and what was removed, with the reason.
    """
    if not text.strip():
        return text, []
    if secrets is None:
        secrets = config_values(settings, model_name)
    kept: list[str] = []
    removed: list[Removed] = []
    for sentence in split_sentences(text):
        reason = leak_reason(sentence, secrets)
        if reason is None:
            kept.append(sentence)
        else:
            removed.append(Removed(sentence, reason))
    if not removed:
        return text, []
    return " ".join(kept), removed


class StreamGuard:
    """Holds streamed text back a little, and stops showing it at the first leak.

    :func:`guard_answer` checks the finished answer, but the tokens streamed before it
    are already on the customer's screen (and in a terminal's scrollback). So streamed
    text is released ``hold`` characters behind the model, and the recent text is
    checked before each release: once it repeats the instructions, or starts a
    configuration value (its first ``prefix`` characters are enough, and ``hold`` is
    longer, so no part of the value is shown), nothing more is streamed. The final,
    verified and guarded answer then replaces what was shown.

    Example:
        >>> g = StreamGuard(["/srv/models/secret.gguf"])
        >>> shown = g.feed("Restart the router and wait. ") + g.feed("The file is /srv/mo")
        >>> shown += g.feed("dels/secret.gguf.") + g.flush()
        >>> shown, "/srv" in shown
        ('Restart the router and w', False)
    """

    def __init__(self, secrets: Sequence[str], hold: int = 24, prefix: int = 16) -> None:
        self.triggers = [s[:prefix] for s in secrets if s]
        self.hold = max(hold, prefix + 1)
        self.text = ""
        self.shown = 0
        self.stopped = False

    def _leaks(self, upto: int) -> bool:
        window = self.text[max(0, self.shown - 200) : upto]
        return leak_reason(window, self.triggers) is not None

    def feed(self, piece: str) -> str:
        """Add a streamed piece; returns the text that is now safe to show ('' if none)."""
        self.text += piece
        if self.stopped:
            return ""
        if self._leaks(len(self.text)):
            self.stopped = True
            return ""
        release = len(self.text) - self.hold
        if release <= self.shown:
            return ""
        out, self.shown = self.text[self.shown : release], release
        return out

    def flush(self) -> str:
        """At the end of the stream: the held-back rest, unless a leak stopped it."""
        if self.stopped or self._leaks(len(self.text)):
            self.stopped = True
            return ""
        out, self.shown = self.text[self.shown :], len(self.text)
        return out
