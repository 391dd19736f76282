from pathlib import Path

from conftest import MANUAL_MD

from ingest.chunk import chunk_document
from ingest.load import Document, FaqEntry, Section, load_document
from supportbot.config import IngestSettings


def _manual(tmp_path: Path) -> Document:
    p = tmp_path / "manual.md"
    p.write_text(MANUAL_MD)
    return load_document(p, IngestSettings())


def test_chunks_carry_provenance(tmp_path: Path) -> None:
    chunks = chunk_document(_manual(tmp_path), "manual.md")
    c = next(c for c in chunks if "90 minutes" in c.text)
    assert c.source == "manual.md"
    assert c.title == "Widget Manual"
    assert c.heading == "Setup > Charging the widget"
    assert c.section == "Charging the widget"
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert c.embedding_text().startswith("Widget Manual > Setup > Charging the widget\n")


def test_ids_are_stable_content_hashes(tmp_path: Path) -> None:
    a = chunk_document(_manual(tmp_path), "manual.md")
    b = chunk_document(_manual(tmp_path), "manual.md")
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    other = chunk_document(_manual(tmp_path), "copy.md")
    assert not {c.id for c in a} & {c.id for c in other}


def test_long_sections_are_split_within_size_and_never_across_headings() -> None:
    body = " ".join(f"Sentence number {i} about the widget." for i in range(300))
    doc = Document(title="T", sections=[Section(("A",), body), Section(("B",), "short")])
    chunks = chunk_document(doc, "t.md", chunk_size=400, chunk_overlap=50)
    assert all(len(c.text) <= 400 for c in chunks)
    assert {c.heading for c in chunks} == {"A", "B"}
    assert chunks[-1].text == "short"
    a_chunks = [c for c in chunks if c.heading == "A"]
    # Overlap: consecutive pieces share some text.
    assert a_chunks[0].text[-30:].split()[-1] in a_chunks[1].text


def test_duplicate_text_under_one_heading_keeps_both() -> None:
    doc = Document(title="T", sections=[Section(("A",), "Same."), Section(("A",), "Same.")])
    chunks = chunk_document(doc, "t.md")
    assert len(chunks) == 2 and chunks[0].id != chunks[1].id


def test_faq_entry_is_one_chunk_with_its_question() -> None:
    doc = Document(title="faq", kind="faq", faq=[FaqEntry("How long?", "Two years.", "warranty")])
    (c,) = chunk_document(doc, "faq.yaml")
    assert (c.kind, c.question, c.text, c.heading) == ("faq", "How long?", "Two years.", "Warranty")
    changed = chunk_document(
        Document(title="faq", kind="faq", faq=[FaqEntry("How long?", "Three years.", "warranty")]),
        "faq.yaml",
    )
    assert changed[0].id != c.id  # a new answer is a new chunk
