"""Each index's relevance model, fitted from its own documents (ingest/calibrate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import run_ingest
from ingest.calibrate import (
    in_scope_probes,
    needs_refit,
    out_of_scope_probes,
    stored_model,
)
from supportbot.config import Settings
from supportbot.embed import SentenceTransformerEmbedder
from supportbot.factory import build, build_store
from supportbot.generate import ScriptedGenerator
from supportbot.relevance import RelevanceModel
from supportbot.types import Chunk


def _chunk(i: int, heading: str, text: str, source: str = "m.md") -> Chunk:
    return Chunk(id=f"c{i}", text=text, source=source, title="Manual", heading=heading)


def test_probes_come_from_every_document_and_are_deterministic() -> None:
    chunks = [
        _chunk(i, f"Setting up the {w} module", f"Connect the {w} cable to port {i}. Then wait.", s)
        for i, (w, s) in enumerate([("audio", "a.md"), ("video", "b.md"), ("power", "c.md")] * 4)
    ]
    probes = in_scope_probes(chunks, 6, seed=1)
    assert probes == in_scope_probes(chunks, 6, seed=1)
    assert len(probes) == 6 and len(set(probes)) == 6
    assert all(p.endswith("?") for p in probes)
    bank = out_of_scope_probes(50, seed=1)
    assert len(bank) == 50 and bank == out_of_scope_probes(50, seed=1)


def test_model_round_trips_and_folds_its_boundary_to_one_half() -> None:
    model = RelevanceModel([0.3], [0.1], [2.0], 0.0, threshold=0.8)
    again = RelevanceModel.from_json(model.to_json())
    assert again == model
    x_at_boundary = [0.3 + 0.1 * 1.3862944 / 2.0]  # mean + scale * logit(0.8) / coef
    assert abs(model.relevance(x_at_boundary) - 0.5) < 1e-4
    assert model.relevance([0.9]) > 0.5 > model.relevance([0.1])
    assert RelevanceModel.from_json("{not json") is None
    assert RelevanceModel.from_json('{"mean": [1]}') is None


def test_hash_embedder_indexes_get_no_model(settings: Settings, kb_dir: Path) -> None:
    report = run_ingest([kb_dir], settings)
    assert report.ok and report.calibration == ""
    assert stored_model(build_store(settings)) is None


@pytest.mark.model
def test_a_calibrated_index_separates_in_from_out_of_scope(
    kb_index: Settings, real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    """kb/docs (its own profile keeps the generic score) calibrated with the defaults."""
    import shutil

    from ingest.calibrate import calibrate

    shutil.copytree(kb_index.data_dir, tmp_path / "data")
    settings = Settings(data_dir=tmp_path / "data")
    store = build_store(settings)
    result = calibrate(settings, store, real_embedder)
    model = stored_model(store)
    assert model is not None and model == result.model
    assert model.expected["out_of_scope_answered"] <= 0.05
    assert model.expected["probe_auroc"] >= 0.8
    assert not needs_refit(store, 0.2)
    bot = build(settings, embedder=real_embedder, generator=ScriptedGenerator()).bot
    inside = bot.plan("what does error E-104 mean on my router?")
    outside = bot.plan("how do I bake sourdough bread at home?")
    assert inside.retrieval.floor == 0.5 == outside.retrieval.floor
    assert inside.retrieval.top_score > 0.5 > outside.retrieval.top_score
    assert "NO_RELEVANT_CONTEXT" in [r.value for r in outside.decision.reasons]
    assert not inside.decision.escalate
    # switched off, the same index is read with the generic score and floor
    off = Settings(data_dir=tmp_path / "data", calibration={"enabled": False})
    plain = build(off, embedder=real_embedder, generator=ScriptedGenerator()).bot
    assert plain.plan("how do I bake sourdough bread at home?").retrieval.floor == 0.175


def test_setting_min_relevance_overrides_the_fitted_boundary(
    hash_services: object,
) -> None:
    from supportbot.config import EscalationSettings
    from supportbot.escalation import EscalationPolicy

    policy = EscalationPolicy(EscalationSettings())
    assert policy.floor(0.5) == 0.5 and policy.floor(None) == 0.175
    fixed = EscalationPolicy(EscalationSettings(min_relevance=0.3))
    assert fixed.floor(0.5) == 0.3
