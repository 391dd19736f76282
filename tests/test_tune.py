"""``supportbot tune``: pairs from the knowledge base, a real (tiny) training run, the swap.

The model tests tune the real all-MiniLM-L6-v2 on a twelve-section manual for two
training steps: enough to get a different model, swap it in, revert, and interrupt it.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest import run_ingest
from ingest.pairs import (
    TrainingPair,
    add_hard_negatives,
    faq_pairs,
    heading_pairs,
    sentence_pairs,
    stored_passages,
)
from ingest.pipeline import reembed
from ingest.train import TrainOptions
from ingest.tune import TuneOptions, TuneProgress, revert, tune
from supportbot.config import Settings, load_settings
from supportbot.embed import SentenceTransformerEmbedder
from supportbot.errors import ConfigError, EmbeddingMismatchError, IngestError
from supportbot.factory import build_embedder, build_store
from supportbot.retrieve import HybridRetriever
from supportbot.store import ChromaStore, open_chroma_client
from supportbot.tuned import live_tuned_model, read_record, tuned_models_dir
from supportbot.types import Chunk

BASE = "sentence-transformers/all-MiniLM-L6-v2"
TOPICS = {
    "Charging the scooter": "Plug the charger into the port under the deck. A full charge "
    "takes four hours and the battery light turns green when it is done.",
    "Folding the stem": "Pull the safety latch, push the lever down and fold the stem "
    "until it clicks into the rear hook. Never fold it while riding.",
    "Tyre pressure": "Inflate both tyres to 50 psi with a Schrader valve pump. Soft tyres "
    "drain the battery faster and wear out within a month.",
    "Error E-21 motor overheating": "E-21 means the motor controller is too hot. Stop, "
    "switch the scooter off and let it cool for fifteen minutes before riding on.",
    "Pairing the app": "Open the app, tap Add scooter and hold the power button for five "
    "seconds until the headlight blinks twice. Keep the phone within one metre.",
    "Cruise control": "Hold the throttle steady for eight seconds at any speed above six "
    "km/h and a beep confirms cruise control. Braking turns it off again.",
    "Brake adjustment": "Turn the barrel adjuster on the brake lever anticlockwise to "
    "tighten the disc brake cable. The wheel should spin freely when released.",
    "Riding in the rain": "The scooter is rated IPX5: light rain is fine but puddles "
    "deeper than three centimetres can reach the battery compartment.",
    "Firmware updates": "Updates install from the app over Bluetooth. Keep the battery "
    "above half charge and do not switch the scooter off during an update.",
    "Headlight modes": "Press the power button twice to cycle the headlight between off, "
    "dipped and full beam. The rear light always stays on while riding.",
    "Speed limits by region": "Regional mode caps the top speed at 20 km/h in Europe and "
    "25 km/h elsewhere. Change the region in the app under Settings.",
    "Storing over winter": "Charge the battery to sixty percent, switch the scooter off and "
    "store it indoors above five degrees. Recharge it every two months.",
}
FAQ = textwrap.dedent(
    """\
    - question: How long is the scooter warranty?
      answer: The frame has a five-year warranty and the battery two years.
    - question: Can I ride with a passenger?
      answer: No. The scooter is built for a single rider up to 120 kg.
    """
)


def _manual() -> str:
    parts = ["# Volt Scooter Manual", ""]
    for n, (heading, text) in enumerate(TOPICS.items(), start=1):
        parts += [f"## {n}. {heading}", "", text, ""]
    parts += ["## 13.", "", "See the support site for spare parts and repairs.", ""]
    return "\n".join(parts)


@pytest.fixture
def tiny_kb(tmp_path: Path) -> Path:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "manual.md").write_text(_manual())
    (kb / "faq.yaml").write_text(FAQ)
    return kb


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Path:
    """The tiny KB ingested once with the real embedder; tests work on copies of it."""
    root = tmp_path_factory.mktemp("tune")
    kb = root / "kb"
    kb.mkdir()
    (kb / "manual.md").write_text(_manual())
    (kb / "faq.yaml").write_text(FAQ)
    data = root / "data"
    settings = load_settings(None, data_dir=data, calibration={"enabled": False})
    assert run_ingest([kb], settings, embedder=real_embedder).ok
    return data


@pytest.fixture
def index(ingested: Path, tmp_path: Path) -> Settings:
    """A private copy of the ingested index (calibration off, for speed)."""
    data = tmp_path / "data"
    shutil.copytree(ingested, data)
    return load_settings(None, data_dir=data, calibration={"enabled": False})


FAST = TuneOptions(max_minutes=5, train=TrainOptions(max_steps=2, batch_size=4, max_seq_length=48))


def _chunk(cid: str, heading: str, text: str, **kw: object) -> Chunk:
    return Chunk(id=cid, text=text, source="m.md", title="Volt Manual", heading=heading, **kw)  # type: ignore[arg-type]


# -- pairs (no model) ------------------------------------------------------------------


def test_faq_pairs_take_faq_entries_and_question_headings_only() -> None:
    chunks = [
        _chunk("a", "", "Five years.", kind="faq", question="How long is the warranty?"),
        _chunk("b", "Riding > How do I fold the stem?", "Pull the latch."),
        _chunk("c", "Riding > Folding the stem", "Pull the latch."),
        _chunk("d", "FAQ > G1.", "Pull the latch."),
    ]
    pairs = faq_pairs(chunks)
    assert [(p.anchor, p.chunk_id) for p in pairs] == [
        ("How long is the warranty?", "a"),
        ("How do I fold the stem?", "b"),
    ]
    assert all(p.kind == "faq" and "?" not in p.positive for p in pairs)


def test_heading_pairs_skip_numbers_and_questions_and_strip_numbering() -> None:
    chunks = [
        _chunk("a", "Setup > 3.1: Charging the battery", "Plug it in."),
        _chunk("b", "FAQ > G1.", "Numbered only."),
        _chunk("c", "FAQ > How do I charge it?", "A question heading."),
        _chunk("d", "", "No heading."),
    ]
    pairs = heading_pairs(chunks)
    assert [(p.anchor, p.positive) for p in pairs] == [
        ("Volt Manual > Setup > Charging the battery", "Plug it in.")
    ]


def test_sentence_pairs_cut_the_sentence_out_of_its_passage() -> None:
    text = (
        "Hold the power button for five seconds to pair. The headlight blinks twice when "
        "pairing starts. Keep the phone within one metre of the scooter."
    )
    pairs = sentence_pairs([_chunk("a", "Pairing the app", text)], seed=3)
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair.anchor in text and pair.anchor not in pair.positive
    assert pair.positive.startswith("Volt Manual > Pairing the app\n")
    assert sentence_pairs([_chunk("a", "Pairing the app", text)], seed=3) == pairs


def test_hard_negatives_come_from_other_sections_in_the_positive_s_form() -> None:
    chunks = [
        _chunk("a", "Brakes", "Tighten the brake cable with the barrel adjuster.", position=0),
        _chunk("b", "Brakes", "The brake cable stretches over the first month.", position=1),
        _chunk("c", "Lights", "The brake light flashes when the brake lever is pulled."),
        _chunk("d", "Tyres", "Inflate the tyres to 50 psi."),
    ]
    framed = TrainingPair("brake cable adjuster", chunks[0].embedding_text(), "heading", "a")
    bare = TrainingPair("brake cable adjuster", chunks[0].text, "heading", "a")
    got = add_hard_negatives([framed, bare], chunks, seed=0)
    assert got[0].negative == chunks[2].embedding_text()  # not b: same section as a
    assert got[1].negative == chunks[2].text
    # An anchor BM25 finds nothing for gets a passage of another section at random.
    lonely = TrainingPair("zeppelin", chunks[3].text, "heading", "d")
    assert add_hard_negatives([lonely], chunks)[0].negative in {c.text for c in chunks[:3]}


# -- bad input -------------------------------------------------------------------------


def test_tuning_an_empty_index_says_to_ingest_first(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "empty")
    with pytest.raises(IngestError, match="empty.*supportbot ingest"):
        tune(settings, FAST)
    assert not tuned_models_dir(settings).exists()


def test_tuning_needs_a_real_embedding_model(settings: Settings, tiny_kb: Path) -> None:
    run_ingest([tiny_kb], settings)  # the hash fake
    with pytest.raises(ConfigError, match="real embedding model"):
        tune(settings, FAST)


def test_reembedding_stops_at_its_deadline(index: Settings, real_embedder) -> None:  # type: ignore[no-untyped-def]
    target = ChromaStore(open_chroma_client(), "staging")
    with pytest.raises(IngestError, match="time budget"):
        reembed(build_store(index), target, real_embedder, deadline=time.monotonic() - 1)


@pytest.mark.model
def test_a_budget_too_small_to_reembed_changes_nothing(index: Settings) -> None:
    before = build_store(index).stamp()
    with pytest.raises(IngestError, match="no time to train.*unchanged"):
        tune(index, TuneOptions(max_minutes=0.01))
    assert build_store(index).stamp() == before and read_record(index) is None


# -- the swap, revert, interruption (real model) ---------------------------------------


@pytest.mark.model
def test_tune_swaps_in_a_tuned_model_refits_and_revert_goes_back(
    index: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.calibrate import calibrate, stored_model

    index = index.model_copy(
        update={
            "calibration": index.calibration.model_copy(
                update={"enabled": True, "in_scope_probes": 20, "out_of_scope_probes": 20}
            )
        }
    )
    store = build_store(index)
    calibrate(index, store, build_embedder(index))
    fitted = stored_model(store)
    before = store.vectors(sorted(c.id for c in stored_passages(store)))
    report = tune(index, FAST)

    live = live_tuned_model(index)
    assert live is not None and live.name == report.model
    assert live.name.startswith("all-MiniLM-L6-v2-tuned-supportbot-2f")  # what it was tuned on
    assert live.base == index.embedding.model and live.trained_on["passages"] == report.passages
    store = build_store(index)
    assert store.stamp() == (live.name, 384)
    assert build_embedder(index).name == live.name  # every process now embeds with it
    assert report.training["steps"] == 2 and report.reembedded == store.count()
    assert report.pairs["faq"] == 2 and report.pairs["heading"] == 12
    after = store.vectors(list(before))
    assert set(after) == set(before) and after != before
    assert {c.id for c in stored_passages(store)} == set(before)  # same passages, new vectors
    assert {s.name for s in store.client.list_collections()} == {"supportbot", "supportbot-files"}
    refitted = stored_model(store)  # scores changed with the model: refitted on the new one
    assert refitted is not None and fitted is not None and refitted.coef != fitted.coef
    assert report.calibration.startswith("relevance model refitted")
    hits = HybridRetriever(build_embedder(index), store).search("motor overheating error", k=3)
    assert "E-21" in hits[0].chunk.heading

    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(index.data_dir))
    monkeypatch.setenv("SUPPORTBOT_CALIBRATION__ENABLED", "false")
    out = CliRunner().invoke(_app(), ["info"])
    assert out.exit_code == 0, out.output
    assert f"embedder: tuned {live.name}" in out.output

    reverted = revert(index)
    assert reverted.reverted and reverted.model == BASE
    assert read_record(index) is None and not live.path.exists()
    store = build_store(index)
    assert store.stamp() == (BASE, 384)
    assert build_embedder(index).name == BASE
    again = store.vectors(list(before))
    assert all(
        abs(x - y) < 1e-4 for cid in before for x, y in zip(again[cid], before[cid], strict=True)
    )
    assert revert(index).notes == [f"{BASE} is already live: nothing to do"]


class _StopAt(TuneProgress):
    def __init__(self, phase: str) -> None:
        self.stop, self.current = phase, ""

    def phase(self, name: str, total: int | None = None) -> None:
        self.current = name

    def advance(self, done: int, total: int) -> None:
        if self.current == self.stop:
            raise KeyboardInterrupt

    def chunks_embedded(self, n: int) -> None:
        if self.current == self.stop:
            raise KeyboardInterrupt


@pytest.mark.model
@pytest.mark.parametrize("phase", ["training", "re-embedding"])
def test_an_interrupted_run_leaves_the_live_index_intact(index: Settings, phase: str) -> None:
    store = build_store(index)
    ids = sorted(c.id for c in stored_passages(store))
    before = store.vectors(ids)
    with pytest.raises(KeyboardInterrupt):
        tune(index, FAST, progress=_StopAt(phase))
    store = build_store(index)
    assert store.stamp() == (BASE, 384) and read_record(index) is None
    assert store.vectors(ids) == before
    assert {s.name for s in store.client.list_collections()} == {"supportbot", "supportbot-files"}
    assert not any(tuned_models_dir(index).iterdir())  # nothing half-written is kept
    assert HybridRetriever(build_embedder(index), store).search("fold the stem", k=1)


def test_a_swap_killed_midway_is_put_back(tmp_path: Path) -> None:
    client = open_chroma_client(path=str(tmp_path / "chroma"))
    live, staged = ChromaStore(client, "kbx"), ChromaStore(client, "kbx-tune")
    for store, model in ((live, "old-model"), (staged, "new-model")):
        store.ensure_model(model, 3)
        store.put_file(_record())
    # Killed after the live collections were set aside, before the staged ones moved in.
    for name in ("kbx", "kbx-files"):
        client.get_collection(name).modify(name=f"{name}-old")
    assert live.undo_replace()
    assert ChromaStore(client, "kbx").stamp() == ("old-model", 3)
    assert ChromaStore(client, "kbx").files()
    # Killed after the staged index moved in, before the old one was deleted.
    for name in ("kbx", "kbx-files"):
        client.get_collection(name).modify(name=f"{name}-old")
        client.get_collection(name.replace("kbx", "kbx-tune")).modify(name=name)
    assert live.undo_replace()
    assert ChromaStore(client, "kbx").stamp() == ("new-model", 3)
    names = {c.name for c in client.list_collections()}
    assert names == {"kbx", "kbx-files"}
    assert not live.undo_replace()


def test_a_process_holding_the_old_index_sees_the_swap(tmp_path: Path) -> None:
    """Another reader's handle to the swapped-out collection is reopened, not an error."""
    client = open_chroma_client(path=str(tmp_path / "chroma"))
    reader = ChromaStore(client, "kbx")
    reader.ensure_model("old-model", 3)
    reader.put_file(_record())
    assert reader.stamp() == ("old-model", 3)  # holds a handle to the old collection
    writer, staged = ChromaStore(client, "kbx"), ChromaStore(client, "kbx-tune")
    staged.ensure_model("new-model", 3)
    staged.put_file(_record())
    writer.replace_with(staged)
    assert reader.refresh()
    assert reader.stamp() == ("new-model", 3)


def _record():  # type: ignore[no-untyped-def]
    from supportbot.types import FileRecord

    return FileRecord("m.md", "abc", 1, "2026-01-01T00:00:00", 10, "/kb", "m.md")


def _app():  # type: ignore[no-untyped-def]
    from supportbot.cli import app

    return app


@pytest.mark.model
def test_a_mismatched_index_is_refused(index: Settings) -> None:
    store = build_store(index)
    store.set_meta("supportbot_embedding_model", "someone-elses-model")
    with pytest.raises(EmbeddingMismatchError, match="--rebuild"):
        tune(index, FAST)
