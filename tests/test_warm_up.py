"""SupportBot.warm_up loads what the first question needs, so no customer waits for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import run_ingest
from supportbot import redact
from supportbot.api import SupportBot
from supportbot.config import Settings
from supportbot.conversation import MemoryConversationStore
from supportbot.embed import HashEmbedder
from supportbot.factory import build_store
from supportbot.generate import ScriptedGenerator


def _bot(kb_dir: Path, tmp_path: Path, **handoff: object) -> SupportBot:
    settings = Settings(data_dir=tmp_path / "data", embedding={"backend": "hash"}, handoff=handoff)
    run_ingest([kb_dir], settings)
    return SupportBot(
        HashEmbedder(64),
        build_store(settings),
        ScriptedGenerator(),
        MemoryConversationStore(),
        settings,
    )


def test_warm_up_builds_the_keyword_index_and_the_pii_detector(
    kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = _bot(kb_dir, tmp_path)
    monkeypatch.setattr(redact, "_analyzer_instance", None)  # as in a fresh process
    assert len(bot.retriever.keyword) == 0
    bot.warm_up()
    assert len(bot.retriever.keyword) > 0
    assert redact._analyzer_instance is not None


def test_warm_up_skips_the_pii_detector_when_nothing_is_redacted(
    kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = _bot(kb_dir, tmp_path, redact_pii=False)
    monkeypatch.setattr(redact, "_analyzer_instance", None)
    bot.warm_up()
    assert redact._analyzer_instance is None
    assert len(bot.retriever.keyword) > 0
