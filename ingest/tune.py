"""``supportbot tune``: adapt the embedding model to the company's own documents.

A generic embedder blurs a product's vocabulary; all-MiniLM-L6-v2 is small enough
(22M parameters) to fine-tune on a CPU in minutes. One run:

1. **pairs** from the knowledge base alone (:mod:`ingest.pairs`): FAQ questions and
   answers, heading paths and their sections, sentences and their passages, and
   optionally questions the local model writes; each with a BM25 hard negative;
2. **train** a copy of the configured model with sentence-transformers' own trainer and
   MultipleNegativesRankingLoss (:mod:`ingest.train`), into
   ``<data_dir>/embedders/<name>``, a name that says what it was tuned on;
3. under the ingest **writer lock**, **re-embed** the index into a staging collection
   (:func:`ingest.pipeline.reembed`) and **refit** its relevance model there
   (:mod:`ingest.calibrate`: scores change with the model);
4. **swap** the staging collections in (:meth:`ChromaStore.replace_with`) and record
   the model as live (:mod:`supportbot.tuned`), which is what the factory reads.

Everything before the swap happens aside: Ctrl-C, an error or the ``--max-minutes``
budget running out leaves the live index and the live model as they were. The budget
covers the whole run: training stops early (keeping what it learnt) to leave time for
re-embedding and the refit, estimated from how fast the model embeds this index.
:func:`revert` re-embeds the index with the configured model the same way.
"""

from __future__ import annotations

import random
import re
import resource
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ingest.pairs import (
    PAIR_KINDS,
    PairKind,
    TrainingPair,
    add_hard_negatives,
    faq_pairs,
    heading_pairs,
    pseudo_pairs,
    sentence_pairs,
    stored_passages,
)
from ingest.pipeline import Progress, reembed, writer_lock
from ingest.train import TrainOptions, TrainResult, train_embedder
from supportbot.config import Settings
from supportbot.embed import Embedder, resolve_model_path
from supportbot.errors import ConfigError, EmbeddingMismatchError, IngestError
from supportbot.factory import build_embedder, build_store
from supportbot.store import ChromaStore
from supportbot.tuned import (
    TunedModel,
    read_record,
    tuned_models_dir,
    write_record,
)
from supportbot.types import Chunk

__all__ = [
    "DEFAULT_KINDS",
    "MIN_PAIRS",
    "MIN_PASSAGES",
    "TuneOptions",
    "TuneProgress",
    "TuneReport",
    "revert",
    "tune",
]

DEFAULT_KINDS: tuple[PairKind, ...] = ("faq", "heading", "sentence")
"""Pair kinds used unless asked otherwise; ``pseudo`` is opt-in (docs/measured.md)."""
MIN_PASSAGES = 8
MIN_PAIRS = 8
RECORD_FILE = "supportbot-tuned.json"
"""A copy of the model's record inside its folder, to repair the live record from."""


@dataclass(frozen=True)
class TuneOptions:
    """What a tuning run does (defaults chosen on the fetchmail dev set; zsh held out).

    Attributes:
        kinds: which pair sources to use (:data:`ingest.pairs.PAIR_KINDS`).
        pseudo_limit: passages the local model writes a question for (``pseudo``).
        max_pairs: pairs sampled for training at most (bounds the time on a large KB).
        max_minutes: the time budget of the whole run.
        hard_negatives: add a BM25 hard negative to each pair.
        train: the trainer's settings.
    """

    kinds: tuple[PairKind, ...] = DEFAULT_KINDS
    pseudo_limit: int = 200
    max_pairs: int = 1500
    max_minutes: float = 20.0
    hard_negatives: bool = True
    train: TrainOptions = field(default_factory=TrainOptions)


@dataclass
class TuneReport:
    """What a run did (``supportbot tune`` prints it; ``--json`` dumps it)."""

    model: str
    """The model now live: the tuned model's name, or the configured model's."""
    base: str
    reverted: bool = False
    passages: int = 0
    pairs: dict[str, int] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    reembedded: int = 0
    calibration: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: v for k, v in self.__dict__.items()}


class TuneProgress(Progress):
    """Callbacks a shell may implement to show a run; the default shows nothing.

    ``chunks_embedded`` (from :class:`ingest.pipeline.Progress`) reports re-embedding.
    """

    def phase(self, name: str, total: int | None = None) -> None:
        """A step begins: 'questions', 'training', 're-embedding', 'relevance model'."""

    def advance(self, done: int, total: int) -> None:
        """The current step's count, e.g. training steps done out of planned."""


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def _short(name: str) -> str:
    """A model name fit for a folder name: 'sentence-transformers/x' -> 'x'."""
    tail = name.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-.") or "model"


def _with_model(settings: Settings, model: str) -> Settings:
    return settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"model": model})}
    )


def _staging(store: ChromaStore) -> ChromaStore:
    return ChromaStore(store.client, f"{store.name}-tune")


def _check_backend(settings: Settings) -> None:
    if settings.embedding.backend != "sentence-transformers":
        raise ConfigError(
            f"Tuning needs a real embedding model, but embedding.backend is "
            f"{settings.embedding.backend!r}. Set it to 'sentence-transformers'."
        )


def _reconcile(settings: Settings, store: ChromaStore, base_name: str) -> list[str]:
    """Repair what a run killed mid-swap left: collections set aside, a stale record.

    The index's model stamp is the truth; the record is made to agree with it.
    """
    notes = []
    if store.undo_replace():
        notes.append("finished the swap an earlier run was stopped in")
    _staging(store).drop()
    stamp = store.stamp()
    record = read_record(settings)
    if stamp is None or (record is not None and record.name == stamp[0]):
        return notes
    saved = tuned_models_dir(settings) / stamp[0] / RECORD_FILE
    if saved.is_file():
        write_record(settings, TunedModel.from_json(saved.read_text("utf-8")))
        notes.append(f"recorded {stamp[0]} as live (the index was built with it)")
    elif record is not None and stamp[0] == base_name:
        write_record(settings, None)
        notes.append(f"recorded {base_name} as live (the index was built with it)")
    return notes


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C back for the few milliseconds of the swap, then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def _remove_other_models(settings: Settings, keep: str | None) -> None:
    """Delete this collection's tuned models other than ``keep`` (and unfinished ones)."""
    folder = tuned_models_dir(settings)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        saved = path / RECORD_FILE
        if not path.is_dir() or path.name == keep:
            continue
        if path.name.startswith(f".partial-{settings.store.collection}-"):
            shutil.rmtree(path, ignore_errors=True)
            continue
        try:
            mine = TunedModel.from_json(saved.read_text("utf-8")).collection
        except (OSError, ValueError, KeyError):
            continue
        if mine == settings.store.collection:
            shutil.rmtree(path, ignore_errors=True)


def build_pairs(
    settings: Settings,
    passages: Sequence[Chunk],
    options: TuneOptions,
    *,
    deadline: float | None = None,
    progress: TuneProgress | None = None,
) -> list[TrainingPair]:
    """The training pairs of ``options.kinds``, sampled to ``max_pairs``, with negatives.

    Raises:
        IngestError: too few pairs to learn anything from.
    """
    from supportbot.factory import build_generator

    progress = progress or TuneProgress()
    seed = options.train.seed
    pairs: list[TrainingPair] = []
    if "faq" in options.kinds:
        pairs += faq_pairs(passages)
    if "heading" in options.kinds:
        pairs += heading_pairs(passages)
    if "sentence" in options.kinds:
        pairs += sentence_pairs(passages, seed=seed)
    if "pseudo" in options.kinds and options.pseudo_limit > 0:
        progress.phase("questions written by the local model", options.pseudo_limit)
        pairs += pseudo_pairs(
            passages,
            build_generator(settings),
            limit=options.pseudo_limit,
            seed=seed,
            deadline=deadline,
            progress=progress.advance,
        )
    if len(pairs) > options.max_pairs:
        # FAQ pairs are the closest thing to customers' questions: keep them all.
        faq = [p for p in pairs if p.kind == "faq"][: options.max_pairs]
        rest = [p for p in pairs if p.kind != "faq"]
        pairs = faq + random.Random(seed).sample(rest, options.max_pairs - len(faq))
    if len(pairs) < MIN_PAIRS:
        raise IngestError(
            f"Only {len(pairs)} training pairs could be written from the knowledge base "
            f"({len(passages)} passages): too few to tune on. Ingest more documents (manuals "
            "with headings, FAQ files), or add pseudo-questions with --pseudo."
        )
    if options.hard_negatives:
        pairs = add_hard_negatives(pairs, passages, seed=seed)
        with_negative = [p for p in pairs if p.negative]
        # The trainer takes one shape of example: drop the few pairs BM25 found nothing for.
        if len(with_negative) >= max(MIN_PAIRS, len(pairs) // 2):
            pairs = with_negative
        else:
            pairs = [replace(p, negative=None) for p in pairs]
    return pairs


def _embed_rate(embedder: Embedder, passages: Sequence[Chunk]) -> float:
    """Passages per second ``embedder`` embeds here (a small timed sample)."""
    sample = [c.embedding_text() for c in passages[:32]]
    embedder.embed(sample[:2])  # load the model first
    started = time.monotonic()
    embedder.embed(sample)
    return len(sample) / max(time.monotonic() - started, 1e-3)


def _reserve(settings: Settings, records: int, rate: float) -> float:
    """Seconds to keep for re-embedding ``records`` and refitting the relevance model."""
    seconds = records / rate
    c = settings.calibration
    if c.enabled:
        seconds += 2 * (c.in_scope_probes + c.out_of_scope_probes) / rate + 20
    return 1.3 * seconds + 10


def _swap_in(
    settings: Settings,
    embedder: Embedder,
    record: TunedModel | None,
    *,
    base_name: str,
    deadline: float | None,
    progress: TuneProgress,
    report: TuneReport,
) -> None:
    """Re-embed, refit and swap under the writer lock; write the record last."""
    from ingest.calibrate import calibrate

    with writer_lock(settings):
        store = build_store(settings)
        report.notes += _reconcile(settings, store, base_name)
        staging = _staging(store)
        try:
            started = time.monotonic()
            progress.phase("re-embedding", store.count())
            report.reembedded = reembed(
                store, staging, embedder, progress=progress, deadline=deadline
            )
            report.seconds["reembed"] = round(time.monotonic() - started, 1)
            if settings.calibration.enabled:
                started = time.monotonic()
                progress.phase("relevance model")
                fitted = calibrate(settings, staging, embedder)
                report.seconds["calibrate"] = round(time.monotonic() - started, 1)
                if fitted.model is None:
                    report.calibration = f"relevance model not fitted: {fitted.skipped}"
                else:
                    e = fitted.model.expected
                    report.calibration = (
                        f"relevance model refitted in {fitted.seconds:.0f} s: out-of-scope "
                        f"bank answered {e['out_of_scope_answered']:.1%}, probe AUROC "
                        f"{e['probe_auroc']:.3f}"
                    )
            with _uninterrupted():
                store.replace_with(staging)
                write_record(settings, record)
        except BaseException:
            staging.drop()
            raise


def tune(
    settings: Settings,
    options: TuneOptions | None = None,
    *,
    progress: TuneProgress | None = None,
) -> TuneReport:
    """Fine-tune the embedding model on the index's documents and swap it in.

    Args:
        settings: the index to tune for (``store``, ``data_dir``) and the model to start
            from (``embedding.model``; a model tuned earlier is replaced, not tuned on).
        options: pair kinds, budget and trainer settings.
        progress: receives phases and counts (the CLI draws bars).

    Returns:
        What was done; the tuned model is live when it returns.

    Raises:
        ConfigError: the embedding backend is not a real model.
        IngestError: the index is empty or too small, or the budget ran out before the
            swap (the live index is then unchanged).
        EmbeddingMismatchError: the index was built with a model these settings do not
            name (run ``supportbot ingest --rebuild`` first).
        ModelError: a model cannot be loaded, or the trainer is not installed.
    """
    _check_backend(settings)
    options = options or TuneOptions()
    progress = progress or TuneProgress()
    started = time.monotonic()
    hard = started + options.max_minutes * 60
    base = build_embedder(settings, tuned=False)
    base_name = base.name
    store = build_store(settings)
    stamp = store.stamp()
    passages = stored_passages(store) if stamp is not None else []
    if stamp is None or not passages:
        raise IngestError(
            f"The index '{settings.store.collection}' is empty: there is nothing to tune on. "
            "Ingest the documents first (`supportbot ingest PATH`)."
        )
    live = build_embedder(settings)
    if stamp[0] not in (live.name, base_name):
        raise EmbeddingMismatchError(
            f"The index '{store.name}' was built with {stamp[0]}, not with {live.name}. "
            "Re-embed it with `supportbot ingest PATH --rebuild` before tuning."
        )
    if len(passages) < MIN_PASSAGES:
        raise IngestError(
            f"The index holds only {len(passages)} passages: too few to tune on (at least "
            f"{MIN_PASSAGES}). Ingest more documents first."
        )
    report = TuneReport(model=live.name, base=base_name, passages=len(passages))
    files = store.files()
    pairs_deadline = started + options.max_minutes * 60 * 0.4
    pairs = build_pairs(settings, passages, options, deadline=pairs_deadline, progress=progress)
    report.pairs = {k: sum(1 for p in pairs if p.kind == k) for k in PAIR_KINDS}
    report.pairs["with_hard_negative"] = sum(1 for p in pairs if p.negative)
    report.seconds["pairs"] = round(time.monotonic() - started, 1)
    reserve = _reserve(settings, store.count() + len(passages), _embed_rate(base, passages))
    soft = hard - reserve
    if time.monotonic() >= soft:
        raise IngestError(
            f"--max-minutes {options.max_minutes:g} leaves no time to train: re-embedding "
            f"this index and refitting its relevance model need about {reserve / 60:.1f} "
            "minutes on this machine. Give more minutes. The live index is unchanged."
        )
    stamp_time = datetime.now(UTC)
    name = (
        f"{_short(base_name)}-tuned-{settings.store.collection}-{len(files)}f"
        f"{len(passages)}p-{stamp_time.strftime('%Y%m%dT%H%M%S')}"
    )
    folder = tuned_models_dir(settings)
    partial = folder / f".partial-{settings.store.collection}-{name}"
    final = folder / name
    try:
        progress.phase("training", None)
        t0 = time.monotonic()
        result: TrainResult = train_embedder(
            resolve_model_path(settings.embedding.model),
            pairs,
            partial,
            options.train,
            device=settings.embedding.device,
            deadline=soft,
            progress=progress.advance,
        )
        report.seconds["train"] = round(time.monotonic() - t0, 1)
        report.training = {
            "steps": result.steps,
            "planned_steps": result.planned_steps,
            "loss": None if result.loss is None else round(result.loss, 4),
            "stopped_early": result.stopped_early,
            "epochs": options.train.epochs,
            "learning_rate": options.train.learning_rate,
            "batch_size": options.train.batch_size,
        }
        if result.stopped_early:
            report.notes.append(
                f"training stopped at the time budget after {result.steps} of "
                f"{result.planned_steps} steps (what it learnt is kept)"
            )
        record = TunedModel(
            name=name,
            path=final.resolve(),
            base=settings.embedding.model,
            collection=settings.store.collection,
            tuned_at=stamp_time.isoformat(timespec="seconds"),
            trained_on={
                "files": {s: r.file_hash for s, r in sorted(files.items())},
                "passages": len(passages),
                "pairs": report.pairs,
                "training": report.training,
            },
        )
        (partial / RECORD_FILE).write_text(record.to_json(), "utf-8")
        partial.rename(final)
        tuned = build_embedder(_with_model(settings, str(final)), tuned=False)
        _swap_in(
            settings,
            tuned,
            record,
            base_name=base_name,
            deadline=hard,
            progress=progress,
            report=report,
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        now_live = read_record(settings)
        if now_live is None or now_live.name != name:  # stopped before the swap
            shutil.rmtree(final, ignore_errors=True)
        raise
    _remove_other_models(settings, keep=name)
    report.model = name
    report.seconds["total"] = round(time.monotonic() - started, 1)
    report.peak_memory_mb = _peak_mb()
    return report


def revert(
    settings: Settings,
    *,
    max_minutes: float = 60.0,
    progress: TuneProgress | None = None,
) -> TuneReport:
    """Go back to the configured embedding model: re-embed the index with it and swap.

    Returns:
        What was done (``reverted`` is false when the configured model was already live).

    Raises:
        ConfigError: the embedding backend is not a real model.
        IngestError: the index is empty, or the budget ran out (nothing changed).
    """
    _check_backend(settings)
    progress = progress or TuneProgress()
    started = time.monotonic()
    base = build_embedder(settings, tuned=False)
    store = build_store(settings)
    stamp = store.stamp()
    report = TuneReport(model=base.name, base=base.name)
    if stamp is None:
        raise IngestError(
            f"The index '{settings.store.collection}' is empty: there is nothing to revert."
        )
    if stamp[0] == base.name and read_record(settings) is None:
        report.notes.append(f"{base.name} is already live: nothing to do")
        return report
    _swap_in(
        settings,
        base,
        None,
        base_name=base.name,
        deadline=started + max_minutes * 60,
        progress=progress,
        report=report,
    )
    _remove_other_models(settings, keep=None)
    report.reverted = True
    report.seconds["total"] = round(time.monotonic() - started, 1)
    report.peak_memory_mb = _peak_mb()
    return report
