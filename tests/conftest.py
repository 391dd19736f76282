"""Shared fixtures: isolated settings, a small corpus, the real embedder (loaded once)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from supportbot.config import Settings, load_settings
from supportbot.embed import HashEmbedder, SentenceTransformerEmbedder
from supportbot.generate import ScriptedGenerator

if TYPE_CHECKING:
    from supportbot.bot import SupportBot
    from supportbot.factory import Services

ROOT = Path(__file__).resolve().parent.parent
KB_DOCS = ROOT / "kb" / "docs"
KB_PROFILE = ROOT / "kb" / "supportbot.toml"
"""The sample's product profile (Brightwave): tests of its wording and rules load it."""


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SUPPORTBOT_* variable or supportbot.toml from the developer's machine leaks in."""
    for var in list(os.environ):
        if var.startswith("SUPPORTBOT_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.chdir(tmp_path)


# The fixtures below parse files in the test process (``ingest.file_timeout`` 0): starting
# the parse worker, a fresh interpreter, costs more than ingesting their three small files.
# The worker itself is what the sample index (kb_index), every CLI and web UI test and
# tests/test_malformed_corpora.py (its time limit) ingest through.
IN_PROCESS = {"file_timeout": 0}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings writing under tmp_path, with the hash embedder (no model)."""
    return Settings(data_dir=tmp_path / "data", embedding={"backend": "hash"}, ingest=IN_PROCESS)


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The default all-MiniLM-L6-v2 from its wheel, loaded once per test session."""
    emb = SentenceTransformerEmbedder()
    assert emb.dimension == 384
    return emb


@pytest.fixture(scope="session")
def kb_index(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Settings:
    """kb/docs ingested once per test session with the real embedder, and its profile."""
    from ingest import run_ingest

    settings = load_settings(KB_PROFILE, data_dir=tmp_path_factory.mktemp("kbindex"))
    report = run_ingest([KB_DOCS], settings, embedder=real_embedder)
    assert report.ok and report.count("added") == 5
    return settings


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedGenerator:
    """The scripted model every bot built by the factory uses; enqueue its replies."""
    from supportbot import factory

    gen = ScriptedGenerator()
    monkeypatch.setattr(factory, "build_generator", lambda settings: gen)
    return gen


MANUAL_MD = textwrap.dedent(
    """\
    # Widget Manual

    Intro text about the widget.

    ## Setup

    ### Charging the widget

    Plug the widget into the USB-C port. A full charge takes 90 minutes.

    ### Pairing with the phone

    Hold the pair button for 5 seconds until the light blinks blue.

    ## Troubleshooting

    ### Error W-42 overheating

    W-42 means the widget is too hot. Let it cool for 10 minutes.
    """
)

FAQ_YAML = textwrap.dedent(
    """\
    - question: How long is the warranty?
      answer: The widget has a 2-year limited warranty.
      category: warranty
    - question: Can I return an opened widget?
      answer: Yes, within 30 days, minus a 15% restocking fee.
      category: returns
    """
)

GUIDE_HTML = textwrap.dedent(
    """\
    <!doctype html><html><head><title>Widget App Guide</title>
    <style>body {color: red}</style><script>var x = "script text";</script></head>
    <body><nav><a href="#a">Table of contents entry</a></nav>
    <h1>Widget App Guide</h1>
    <h2>Accounts</h2><h3>Creating an account</h3>
    <p>Open the app and tap <b>Sign up</b>.</p>
    <ul><li>Enter your email</li><li>Pick a password</li></ul>
    <h3>Deleting an account</h3><p>Go to Settings &gt; Account &gt; Delete.</p>
    <h2>Plans</h2><table><tr><th>Plan</th><th>Price</th></tr><tr><td>Plus</td><td>$4.99</td></tr></table>
    </body></html>
    """
)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A tiny knowledge base: a Markdown manual, an HTML guide and a YAML FAQ."""
    d = tmp_path / "kb"
    d.mkdir()
    (d / "manual.md").write_text(MANUAL_MD)
    (d / "guide.html").write_text(GUIDE_HTML)
    (d / "faq.yaml").write_text(FAQ_YAML)
    return d


@pytest.fixture
def hash_services(kb_dir: Path, tmp_path: Path) -> Callable[..., Services]:
    """Builds services (bot + desk) over ``kb_dir`` with the hash embedder and a scripted model.

    Keywords are settings overrides (``escalation={"enabled": False}``); ``generator``
    replaces the scripted model.
    """

    def make(generator: ScriptedGenerator | None = None, **overrides: Any) -> Services:
        from ingest import run_ingest
        from supportbot.conversation import MemoryConversationStore
        from supportbot.factory import build

        ingest = {**IN_PROCESS, **overrides.pop("ingest", {})}
        settings = Settings(
            data_dir=tmp_path / "data", embedding={"backend": "hash"}, ingest=ingest, **overrides
        )
        run_ingest([kb_dir], settings)
        return build(
            settings,
            embedder=HashEmbedder(64),
            generator=generator or ScriptedGenerator(),
            conversations=MemoryConversationStore(),
        )

    return make


@pytest.fixture
def hash_bot(hash_services: Callable[..., Services]) -> Callable[..., SupportBot]:
    """Like :func:`hash_services`, the bot alone."""

    def make(generator: ScriptedGenerator | None = None, **overrides: Any) -> SupportBot:
        return hash_services(generator, **overrides).bot

    return make


def make_pdf(path: Path, chapters: dict[str, str], title: str = "Widget Troubleshooting") -> Path:
    """A real PDF with an outline, built with fpdf2 (one chapter per page)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    for heading, body in chapters.items():
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.start_section(heading, level=0)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path
