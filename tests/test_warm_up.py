"""SupportBot.warm_up loads what the first question needs, so no customer waits for it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supportbot.bot import SupportBot
from supportbot.safety import redact


def test_warm_up_builds_the_keyword_index_and_the_pii_detector(
    hash_bot: Callable[..., SupportBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = hash_bot()
    monkeypatch.setattr(redact, "_analyzer_instance", None)  # as in a fresh process
    assert len(bot._retriever.keyword) == 0
    bot.warm_up()
    assert len(bot._retriever.keyword) > 0
    assert redact._analyzer_instance is not None


def test_warm_up_skips_the_pii_detector_when_nothing_is_redacted(
    hash_bot: Callable[..., SupportBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = hash_bot(handoff={"redact_pii": False})
    monkeypatch.setattr(redact, "_analyzer_instance", None)
    bot.warm_up()
    assert redact._analyzer_instance is None
    assert len(bot._retriever.keyword) > 0
