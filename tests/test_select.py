"""Selecting the answering span (supportbot/span.py) and the sentence-level checks.

Logic only: the hash embedder stands in for MiniLM. The same cases through the real
default models are in test_answer_checks.py.
"""

from __future__ import annotations

from ingest.chunk import chunk_document
from ingest.load import Document, Section
from supportbot.embed import HashEmbedder
from supportbot.span import Selection, SpanSelector, join_section, split_units
from supportbot.types import Chunk, Hit
from supportbot.verify import AnswerVerifier, fragment, negated, restates

LONG = (
    "The sync service copies files between devices. It runs in the background and starts "
    "when you sign in. Files larger than 4 GB are skipped, and a notice names them. To "
    "pause syncing, open Settings and choose Pause; syncing resumes after two hours, when "
    "you choose Resume, or when the device restarts after an update or a power cut. Deleted files "
    "stay in the trash for 30 days before they are "
    "removed from every device. Conflicts are kept as copies named after the device."
)


def _chunks(text: str, size: int = 120) -> list[Chunk]:
    doc = Document(title="Guide", sections=[Section(headings=("Sync",), text=text)])
    return chunk_document(doc, "guide.md", chunk_size=size, chunk_overlap=40)


def test_sections_are_reassembled_without_the_overlap() -> None:
    chunks = _chunks(LONG)
    assert len(chunks) > 3
    assert all(not c.text.startswith(("The sync", "It runs")) for c in chunks[2:])  # mid-text
    assert " ".join(join_section(chunks).split()) == " ".join(LONG.split())


def test_units_are_whole_sentences_lists_and_literal_lines() -> None:
    text = (
        "To reset the router:\n- Unplug it.\n- Wait 30 seconds.\n- Plug it back in.\n\n"
        "Add this line to the configuration:\n\npoll mail.example.com proto pop3\n"
        "user jane there with password secret\n\nA wrapped\nline of prose ends here."
    )
    units = split_units(text)
    kinds = [(u.kind, u.text) for u in units]
    assert kinds[:4] == [
        ("sentence", "To reset the router:"),
        ("item", "- Unplug it."),
        ("item", "- Wait 30 seconds."),
        ("item", "- Plug it back in."),
    ]
    assert ("line", "poll mail.example.com proto pop3") in kinds
    assert kinds[-1] == ("sentence", "A wrapped line of prose ends here.")
    one = split_units("Ian T. Smith runs it like this:\n\nmailpull -u jane -s mail.example.com\n")
    assert [(u.kind, u.paragraph) for u in one] == [("sentence", 0), ("line", 0)]
    # A list and a literal block belong to the sentence that introduces them.
    assert len({u.paragraph for u in units[:4]}) == 1
    assert all(text[u.start : u.end].replace("\n", " ") == u.text for u in units)


def _selector(chunks: list[Chunk], max_words: int = 40) -> SpanSelector:
    by_heading = {c.heading: [x for x in chunks if x.heading == c.heading] for c in chunks}
    return SpanSelector(
        HashEmbedder(64), lambda c: by_heading[c.heading], lambda t: 1.0, max_words=max_words
    )


def test_a_passage_cut_mid_sentence_yields_whole_sentences() -> None:
    chunks = _chunks(LONG)
    middle = next(c for c in chunks if "Resume" in c.text and not c.text.startswith("To"))
    assert not middle.text[0].isupper()  # the chunker cut the sentence
    (span, *_) = _selector(chunks).select("how do I pause syncing", [Hit(middle, 0.9, 1)])
    text = span.text
    assert "To pause syncing, open Settings and choose Pause" in text
    assert "or when the device restarts after an update or a power cut." in text
    assert text[0].isupper() and text.rstrip().endswith(".")
    assert all(s in LONG for s in text.split(". ") if s)  # nothing spliced or cut
    assert span.section.startswith("The sync service")  # "see the whole section"


def test_a_list_of_steps_is_kept_whole_with_its_introduction() -> None:
    text = (
        "The router keeps its settings through power cuts.\n\n"
        "To reset the router to factory settings:\n- Unplug the power cable.\n"
        "- Hold the reset button.\n- Plug the cable back in while holding it.\n"
        "- Release the button when the light blinks.\n\nThe reset takes two minutes."
    )
    chunks = _chunks(text, size=90)
    hit = next(c for c in chunks if "Hold the reset" in c.text)
    # 34 words: a list may take twice the span's budget, so it is not cut.
    (span, *_) = _selector(chunks, max_words=20).select("reset the router", [Hit(hit, 0.9, 1)])
    assert span.has_block
    assert span.text.splitlines() == [
        "To reset the router to factory settings:",
        "- Unplug the power cable.",
        "- Hold the reset button.",
        "- Plug the cable back in while holding it.",
        "- Release the button when the light blinks.",
    ]


def test_a_short_section_is_quoted_whole_and_the_model_reads_only_the_span() -> None:
    chunks = _chunks(LONG)
    hit = next(c for c in chunks if "Deleted files" in c.text)
    words = len(LONG.split())  # 93

    def select(whole: int) -> Selection:
        by_heading = {c.heading: chunks for c in chunks}
        selector = SpanSelector(
            HashEmbedder(64),
            lambda c: by_heading[c.heading],
            lambda t: 1.0,
            max_words=20,
            whole_section=whole,
        )
        return selector.select("how long do deleted files stay", [Hit(hit, 0.9, 1)])[0]

    short = select(words)
    assert len(short.text.split()) <= 20 < words  # what the model reads
    assert " ".join(short.quote.split()) == " ".join(LONG.split())  # what the customer sees
    assert short.as_hit(quoted=True).chunk.text == short.quote
    assert short.as_hit().chunk.text == short.text
    cut = select(words - 1)  # one word longer than the limit: the span alone is quoted
    assert cut.quote == cut.text and cut.shown == ()


def test_a_span_starting_with_this_takes_the_sentence_it_refers_to() -> None:
    text = (
        "Some servers end each line with a bare carriage return. This will hang the "
        "client during a download. Recent versions print a warning and carry on, and the "
        "log names the server, the mailbox and the message number so it can be reported."
    )
    chunks = _chunks(text, size=400)
    (span, *_) = _selector(chunks, max_words=12).select(
        "why does the client hang during a download", [Hit(chunks[0], 0.9, 1)]
    )
    assert span.text.startswith("Some servers end each line with a bare carriage return.")
    assert "This will hang the client during a download." in span.text


def test_echoes_fragments_and_polarity_are_recognised() -> None:
    q = "How can I use fetchmail with Microsoft Exchange?"
    assert restates("You can use fetchmail with Microsoft Exchange.", q)
    assert restates("You can set up fetchmail with Exchange by using the following steps.", q)
    assert not restates("Exchange's POP3 support is so broken it is unusable.", q)
    assert not restates("A full charge takes 90 minutes.", "how many minutes for a charge")
    assert not restates("The appliance cannot be used outdoors.", "Can I use it outdoors?")
    assert fragment("You can do it by using the following steps:")
    assert fragment("It doesn't play well with it, but works with.")
    assert fragment('He said "use the option.')
    assert not fragment("Fetchmail works with most IMAP servers.")
    assert fragment('\\n \\n "Hi Joe, what now?%# " If you have the bad taste to set it.')
    assert fragment("\u2039zsh-announce@zsh.org>.")
    assert fragment("I'm not sure why you need a .fetchmailrc.")
    assert fragment("Sorry, I cannot find that in the manual.")
    whole_sentences = (
        "zsh handles multibyte input.",
        ".fetchmailrc is read first.",
        '"Hi Joe" appears in the prompt.',
        "- Start the service again.",
        "2. Run the setup.",
    )
    for whole in whole_sentences:
        assert not fragment(whole), whole
    assert negated("POP3 support is unusable.") and negated("You can't do that.")
    assert not negated("Yes, you can use it with Exchange.")


def _hit(text: str, n: int = 1) -> Hit:
    return Hit(Chunk(id=f"c{n}", text=text, source="faq.md", title="FAQ"), 0.9, n)


V = AnswerVerifier(HashEmbedder(64), min_overlap=0.6, min_similarity=0.99)


def test_verification_removes_echoes_and_contradictions() -> None:
    hits = [_hit("Exchange's POP3 support is so broken that it is unusable with fetchmail.")]
    q = "How can I use fetchmail with Microsoft Exchange?"
    out = V.verify("You can use fetchmail with Microsoft Exchange [1].", hits, question=q)
    assert out.text == "" and "restates the question" in out.removed[0].reason
    out = V.verify("Exchange POP3 support is broken and usable with fetchmail [1].", hits, q)
    assert out.text == "" and "contradicts" in out.removed[0].reason
    out = V.verify("Exchange POP3 support is so broken that it is unusable [1].", hits, q)
    assert out.kept == 1 and out.cited == [1]


def test_support_must_come_from_one_sentence_not_scattered_words() -> None:
    hits = [
        _hit(
            "The red light means the battery is low. Cleaning takes ten minutes. "
            "Filters are washable. The fan runs at night."
        )
    ]
    # Every word is in the passage, but no one sentence says it.
    out = V.verify("The red fan runs the battery [1].", hits, question="red light")
    assert out.text == "" and "one source sentence" in out.removed[0].reason
    out = V.verify("The red light means the battery is low [1].", hits, question="red light")
    assert out.kept == 1
