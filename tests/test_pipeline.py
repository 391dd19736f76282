"""Incremental, idempotent, safe ingestion (hash embedder: no model needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from filelock import FileLock

from ingest import run_ingest, verify_index
from supportbot.config import Settings
from supportbot.embed import HashEmbedder
from supportbot.errors import EmbeddingMismatchError, StoreLockedError
from supportbot.factory import build_store
from supportbot.retrieve import DenseRetriever


def _texts(settings: Settings) -> list[str]:
    return [
        doc
        for _, doc, meta, _ in build_store(settings).iter_records(False)
        if meta["record"] == "passage"
    ]


def test_first_run_indexes_everything_with_provenance(kb_dir: Path, tmp_path: Path) -> None:
    # The defaults: files are parsed in the worker process (the fixture parses in-process).
    settings = Settings(data_dir=tmp_path / "data", embedding={"backend": "hash"})
    assert settings.ingest.file_timeout > 0
    report = run_ingest([kb_dir], settings)
    assert report.ok
    assert report.count("added") == 3
    store = build_store(settings)
    assert store.count() == report.chunks_total == report.chunks_embedded
    assert set(store.files()) == {"manual.md", "guide.html", "faq.yaml"}
    hit = DenseRetriever(HashEmbedder(64), store).search("pair button blinks blue", k=1)[0]
    assert hit.chunk.source == "manual.md"
    assert hit.chunk.heading == "Setup > Pairing with the phone"
    assert 0.0 < hit.score <= 1.0
    assert verify_index(store).ok


def test_second_run_embeds_nothing(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    again = run_ingest([kb_dir], settings)
    assert again.chunks_embedded == 0 and again.chunks_deleted == 0
    assert again.count("unchanged") == 3


def test_changed_file_replaces_its_old_chunks(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    manual = kb_dir / "manual.md"
    manual.write_text(manual.read_text().replace("90 minutes", "2 hours"))
    report = run_ingest([kb_dir], settings)
    (changed,) = [f for f in report.files if f.status == "updated"]
    assert changed.source == "manual.md"
    assert changed.embedded == 1  # only the edited section is re-embedded
    assert report.chunks_deleted == 1
    texts = _texts(settings)
    assert any("2 hours" in t for t in texts)
    assert not any("90 minutes" in t for t in texts)
    assert verify_index(build_store(settings)).ok


def test_deleted_file_is_pruned_and_no_prune_keeps_it(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    (kb_dir / "guide.html").unlink()
    kept = run_ingest([kb_dir], settings, prune=False)
    assert kept.count("removed") == 0
    assert "guide.html" in build_store(settings).files()
    pruned = run_ingest([kb_dir], settings)
    assert [f.source for f in pruned.files if f.status == "removed"] == ["guide.html"]
    store = build_store(settings)
    assert "guide.html" not in store.files()
    assert not any(m["source"] == "guide.html" for _, _, m, _ in store.iter_records(False))


def test_pruning_one_folder_leaves_other_folders_alone(
    kb_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("# Notes\n\nSeparate folder.")
    run_ingest([kb_dir], settings)
    run_ingest([other], settings)
    assert {"manual.md", "notes.md"} <= set(build_store(settings).files())


def test_dry_run_writes_nothing(kb_dir: Path, settings: Settings) -> None:
    report = run_ingest([kb_dir], settings, dry_run=True)
    assert report.count("added") == 3 and report.chunks_embedded == 0
    assert build_store(settings).count() == 0
    run_ingest([kb_dir], settings)
    (kb_dir / "faq.yaml").unlink()
    (kb_dir / "new.md").write_text("# New\n\nFresh text.")
    plan = run_ingest([kb_dir], settings, dry_run=True)
    assert {(f.source, f.status) for f in plan.files} >= {
        ("faq.yaml", "removed"),
        ("new.md", "added"),
    }
    assert "faq.yaml" in build_store(settings).files()


def test_bad_files_are_reported_and_the_rest_ingested(kb_dir: Path, settings: Settings) -> None:
    (kb_dir / "empty.md").write_text("")
    (kb_dir / "binary.txt").write_bytes(b"\x00\x01\x02garbage" * 100)
    (kb_dir / "latin1.md").write_bytes("# Caf\xe9".encode("latin-1") + b"\n\ncr\xe8me")
    (kb_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (kb_dir / "photo.png").write_bytes(b"\x89PNG")
    report = run_ingest([kb_dir], settings)
    assert not report.ok
    failed = {f.source: f.reason for f in report.failed}
    assert set(failed) == {"empty.md", "binary.txt", "latin1.md", "broken.pdf"}
    assert "empty" in failed["empty.md"]
    assert "binary" in failed["binary.txt"]
    assert "UTF-8" in failed["latin1.md"]
    assert [f.source for f in report.files if f.status == "skipped"] == ["photo.png"]
    assert report.count("added") == 3
    assert set(build_store(settings).files()) == {"manual.md", "guide.html", "faq.yaml"}


def test_a_file_that_turns_bad_keeps_its_indexed_version(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    before = sorted(_texts(settings))
    (kb_dir / "manual.md").write_bytes(b"\x00\xff corrupted")
    report = run_ingest([kb_dir], settings)
    assert [f.source for f in report.failed] == ["manual.md"]
    assert sorted(_texts(settings)) == before


def test_missing_path_is_reported(settings: Settings, tmp_path: Path) -> None:
    report = run_ingest([tmp_path / "nowhere"], settings)
    assert report.failed[0].reason.startswith("does not exist")


def test_other_embedding_model_is_refused_then_rebuilt(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    with pytest.raises(EmbeddingMismatchError, match="--rebuild"):
        run_ingest([kb_dir], settings, embedder=HashEmbedder(32))
    report = run_ingest([kb_dir], settings, embedder=HashEmbedder(32), rebuild=True)
    assert report.rebuilt and report.count("added") == 3
    assert build_store(settings).stamp() == ("hash-32", 32)
    with pytest.raises(EmbeddingMismatchError):
        DenseRetriever(HashEmbedder(64), build_store(settings)).search("warranty")


def test_second_writer_is_stopped_with_a_clear_message(kb_dir: Path, settings: Settings) -> None:
    lock = FileLock(str(settings.data_dir / "ingest-supportbot.lock"))
    settings.data_dir.mkdir(parents=True)
    with lock:
        with pytest.raises(StoreLockedError, match="Another ingest run"):
            run_ingest([kb_dir], settings, lock_timeout=0.2)
    assert run_ingest([kb_dir], settings).ok


def test_concurrent_ingest_processes_do_not_interleave(kb_dir: Path, tmp_path: Path) -> None:
    """Two real processes against one store: both finish, the index stays whole."""
    for i in range(30):
        (kb_dir / f"extra{i}.md").write_text(f"# Extra {i}\n\n" + f"Paragraph {i}. " * 50)
    env = {
        **os.environ,
        "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"),
        "SUPPORTBOT_EMBEDDING__BACKEND": "hash",
        "SUPPORTBOT_INGEST__LOCK_TIMEOUT": "60",
    }
    cmd = [sys.executable, "-m", "ingest", str(kb_dir), "--json"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode == 0, p.stderr.read()
    settings = Settings(data_dir=tmp_path / "data", embedding={"backend": "hash"})
    assert len(build_store(settings).files()) == 33
    assert verify_index(build_store(settings)).ok


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from supportbot.config import Settings
    from supportbot.embed import HashEmbedder
    from ingest import run_ingest

    class DyingEmbedder(HashEmbedder):
        calls = 0
        def embed(self, texts):
            DyingEmbedder.calls += 1
            if DyingEmbedder.calls == 3:   # mid-way: some files written, some pending
                os.kill(os.getpid(), signal.SIGKILL)
            return super().embed(texts)

    s = Settings(data_dir=sys.argv[2], embedding={"backend": "hash"},
                 store={"write_batch_size": 8})
    run_ingest([sys.argv[1]], s, embedder=DyingEmbedder(64))
    """
)


def test_kill_9_mid_run_leaves_a_consistent_index_that_the_next_run_completes(
    kb_dir: Path, tmp_path: Path
) -> None:
    for i in range(10):
        (kb_dir / f"extra{i}.md").write_text(f"# Extra {i}\n\n" + f"Paragraph {i}. " * 80)
    data = tmp_path / "data"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run(
        [sys.executable, str(script), str(kb_dir), str(data)], capture_output=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    settings = Settings(data_dir=data, embedding={"backend": "hash"}, store={"write_batch_size": 8})
    store = build_store(settings)
    assert 0 < store.count()
    problems = verify_index(store).problems
    assert any("pending" in p for p in problems)  # the interrupted file is known
    # Every chunk present is findable and complete, only the manifest is behind.
    assert all("pending" in p or "manifest says" in p or "no manifest" in p for p in problems)

    report = run_ingest([kb_dir], settings)
    assert report.ok and report.count("added") + report.count("updated") > 0
    assert verify_index(build_store(settings)).ok

    clean = Settings(data_dir=tmp_path / "clean", embedding={"backend": "hash"})
    run_ingest([kb_dir], clean)
    assert sorted(_texts(clean)) == sorted(_texts(settings))


def test_verify_finds_tampering(kb_dir: Path, settings: Settings) -> None:
    run_ingest([kb_dir], settings)
    store = build_store(settings)
    victim = next(iter(store.ids_for_source("manual.md")))
    store.chunks.delete(ids=[victim])
    problems = verify_index(store).problems
    assert any("manual.md: manifest says" in p for p in problems)


# -- documents are identified by where they came from -----------------------------------------

UPLOADED_FAQ = "- question: How do I pair the remote?\n  answer: Hold OK and Back for 3 seconds.\n"


def _passages(settings: Settings, source: str) -> list[str]:
    store = build_store(settings)
    return [
        doc
        for _, doc, meta, _ in store.iter_records(False)
        if meta["record"] == "passage" and meta["source"] == source
    ]


def test_an_upload_named_like_an_indexed_file_is_kept_beside_it(
    kb_dir: Path, settings: Settings
) -> None:
    """The web UI's uploads folder is a second root: its faq.yaml must not replace kb's."""
    first = run_ingest([kb_dir], settings)
    before = sorted(_passages(settings, "faq.yaml"))
    assert len(before) == 2
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "faq.yaml").write_text(UPLOADED_FAQ)

    report = run_ingest([uploads], settings)
    assert report.ok
    (result,) = report.files
    assert (result.source, result.status) == ("uploads/faq.yaml", "added")
    assert any("another file named faq.yaml" in w and str(kb_dir) in w for w in result.warnings)
    assert sorted(_passages(settings, "faq.yaml")) == before  # nothing replaced
    assert _passages(settings, "uploads/faq.yaml") == ["Hold OK and Back for 3 seconds."]

    files = build_store(settings).files()
    assert files["faq.yaml"].root == str(kb_dir.resolve())
    assert files["uploads/faq.yaml"].root == str(uploads.resolve())
    assert files["uploads/faq.yaml"].rel == "faq.yaml"
    assert files["uploads/faq.yaml"].path == str(uploads.resolve() / "faq.yaml")
    assert verify_index(build_store(settings)).ok

    # Both keep their names on later runs, whichever folder is ingested.
    assert run_ingest([kb_dir], settings).count("unchanged") == first.count("added")
    assert run_ingest([uploads], settings).files[0].status == "unchanged"
    # Both are found; a citation names each by its own title and source.
    hits = DenseRetriever(HashEmbedder(64), build_store(settings)).search("pair the remote", k=10)
    assert "uploads/faq.yaml" in {h.chunk.source for h in hits}

    # Removing the upload prunes the upload only.
    (uploads / "faq.yaml").unlink()
    pruned = run_ingest([uploads], settings)
    assert [(f.source, f.status) for f in pruned.files] == [("uploads/faq.yaml", "removed")]
    assert sorted(_passages(settings, "faq.yaml")) == before


def test_two_folders_with_the_same_file_name_in_one_run_both_stay(
    kb_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "docs"
    other.mkdir(parents=True)
    (other / "manual.md").write_text("# Other manual\n\nThe other widget charges in 3 hours.")
    report = run_ingest([kb_dir, other], settings)
    assert report.ok
    assert {f.source for f in report.files} == {
        "manual.md",
        "guide.html",
        "faq.yaml",
        "docs/manual.md",
    }
    # A third root whose folder name is taken too gets its parent in the label.
    third = tmp_path / "more" / "docs"
    third.mkdir(parents=True)
    (third / "manual.md").write_text("# Third manual\n\nThe third widget is blue.")
    (added,) = run_ingest([third], settings).files
    assert added.source == "more/docs/manual.md"
    texts = {s: _passages(settings, s) for s in ("manual.md", "docs/manual.md")}
    assert any("90 minutes" in t for t in texts["manual.md"])
    assert any("3 hours" in t for t in texts["docs/manual.md"])
    assert verify_index(build_store(settings)).ok


def test_an_index_without_relative_paths_keeps_working(kb_dir: Path, settings: Settings) -> None:
    """Entries written before ``rel`` existed: the source name is the relative path."""
    run_ingest([kb_dir], settings)
    store = build_store(settings)
    names = list(store.files())
    store.files_collection.update(ids=names, metadatas=[{"rel": None}] * len(names))  # type: ignore[list-item]
    again = run_ingest([kb_dir], settings)
    assert again.count("unchanged") == 3 and again.chunks_embedded == 0
    assert verify_index(build_store(settings)).ok


def test_verify_catches_a_file_replaced_by_another_of_the_same_name(
    kb_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    run_ingest([kb_dir], settings)
    store = build_store(settings)
    victim = sorted(store.ids_for_source("faq.yaml"))[0]
    store.update_metadata({victim: {"root": str(tmp_path / "uploads")}})
    problems = verify_index(store).problems
    assert any("faq.yaml: chunks come from" in p and "replaced" in p for p in problems)

    record = store.files()["manual.md"]
    from dataclasses import replace

    store.put_file(replace(record, source="manual-copy.md"))
    problems = verify_index(build_store(settings)).problems
    assert any("are both entries for" in p for p in problems)
    assert any("manual-copy.md: the entry names another file" in p for p in problems)


def test_a_pdf_whose_words_occur_nowhere_else_is_flagged_in_the_report(
    settings: Settings, tmp_path: Path
) -> None:
    from conftest import KB_DOCS, make_pdf

    manual = (KB_DOCS / "nexa-user-manual.md").read_text()[:3000]
    plain = manual.encode("latin-1", "replace").decode("latin-1").replace("#", "")
    shifted = "".join(chr((ord(c) - 97 + 3) % 26 + 97) if "a" <= c <= "z" else c for c in plain)
    extra = tmp_path / "extra"
    extra.mkdir()
    make_pdf(extra / "scrambled.pdf", {"Vhwxs": shifted})
    make_pdf(extra / "fine.pdf", {"Setup": plain})
    run_ingest([KB_DOCS], settings)
    report = run_ingest([extra], settings)
    warned = {f.source: " ".join(f.warnings) for f in report.files}
    assert "of its words occur in the other documents" in warned["scrambled.pdf"]
    assert "garbled" in warned["scrambled.pdf"]
    assert "occur in the other documents" not in warned["fine.pdf"]
