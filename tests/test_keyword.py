from pathlib import Path

from ingest import run_ingest
from supportbot.config import Settings
from supportbot.factory import build_store
from supportbot.keyword import KeywordIndex, tokenize


def test_identifiers_stay_whole_and_also_match_without_hyphens() -> None:
    toks = tokenize("Error E-104 with part BW-PSU-12-2A on firmware 3.4.2, isn't it?")
    assert {"e-104", "e104", "bw-psu-12-2a", "bwpsu122a", "3.4.2", "342"} <= set(toks)
    assert "with" not in toks and "it" not in toks


def test_index_follows_ingestion(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    index = KeywordIndex(build_store(settings))
    (chunk, score), *_ = index.search("W-42")
    assert chunk.section == "Error W-42 overheating" and score > 0
    assert index.search("W42")[0][0].id == chunk.id
    assert index.search("zebra") == []
    (kb_dir / "manual.md").write_text("# Widget Manual\n\n## New\n\nError W-77 means low battery.")
    run_ingest([kb_dir], settings)
    assert index.search("W-77")[0][0].section == "New"  # rebuilt on its own
    assert index.search("W-42") == []
