"""Fine-tune a sentence-transformers embedder on training pairs, with its own trainer.

No hand-written training loop: :class:`sentence_transformers.SentenceTransformerTrainer`
runs MultipleNegativesRankingLoss (the pair's passage against every other passage in
the batch, and its hard negative) with the no-duplicates batch sampler, so one section's
heading never meets its own passages as negatives. This module only adds what a
command needs around it: a time budget, progress callbacks, and a clean stop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.pairs import TrainingPair
from supportbot.embed import force_offline
from supportbot.errors import ModelError

__all__ = ["TrainOptions", "TrainResult", "train_embedder"]


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the defaults were chosen on the fetchmail dev set: docs/measured.md).

    Attributes:
        epochs: passes over the pairs.
        learning_rate: peak learning rate (linear warm-up over the first 10% of steps).
        batch_size: pairs per step; every other passage in the batch is a negative.
        max_steps: stop after this many steps (0: no cap); tests cap it.
        max_seq_length: tokens kept per text (passages are at most ~600 characters).
        seed: fixes shuffling and initialisation of the run.
    """

    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_steps: int = 0
    max_seq_length: int = 256
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    """What a training run did."""

    steps: int
    planned_steps: int
    seconds: float
    loss: float | None
    stopped_early: bool


def _quiet() -> None:
    force_offline()
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("transformers", "sentence_transformers", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:  # pragma: no cover - datasets is a dependency
        pass


def train_embedder(
    base: Path,
    pairs: Sequence[TrainingPair],
    output: Path,
    options: TrainOptions,
    *,
    device: str = "cpu",
    deadline: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a copy of the model in ``base`` on ``pairs`` and save it to ``output``.

    Args:
        base: folder of the sentence-transformers model to start from.
        pairs: anchors and positives (a pair with a negative adds it as a hard negative;
            pairs are trained with or without one, never mixed in one dataset).
        output: folder the tuned model is saved to (created).
        options: epochs, learning rate, batch size, step cap.
        device: torch device ('cpu', 'cuda').
        deadline: a ``time.monotonic()`` value; training stops after the step that
            passes it and keeps what it learnt so far.
        progress: called with (steps done, steps planned) after each step.

    Raises:
        ModelError: the trainer or its dependencies (datasets, accelerate) are missing,
            or the base model cannot be loaded.
    """
    _quiet()
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
        from transformers import PrinterCallback, TrainerCallback
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            f"Tuning needs sentence-transformers' trainer ({exc}). Install the project's "
            "dependencies: `pip install -c constraints.txt -e .` (datasets, accelerate)."
        ) from exc
    import torch

    torch.manual_seed(options.seed)
    try:
        model = SentenceTransformer(str(base), device=device, local_files_only=True)
    except Exception as exc:
        raise ModelError(
            f"Could not load the embedding model from {base} to tune it: {exc}."
        ) from exc
    model.max_seq_length = min(
        model.max_seq_length or options.max_seq_length, options.max_seq_length
    )
    # The trainer computes "widget examples" for a Hub model card (with a tqdm bar of its
    # own) unless the card has some; no model card is written here (create_model_card).
    card = getattr(model, "model_card_data", None)
    if card is not None and hasattr(card, "widget"):
        card.widget = [{"text": "supportbot tune"}]
    with_negative = all(p.negative for p in pairs)
    columns: dict[str, list[str]] = {
        "anchor": [p.anchor for p in pairs],
        "positive": [p.positive for p in pairs],
    }
    if with_negative:
        columns["negative"] = [p.negative or "" for p in pairs]
    dataset = Dataset.from_dict(columns)
    batch = max(2, min(options.batch_size, len(pairs)))
    steps_per_epoch = max(1, len(pairs) // batch)
    planned = max(1, round(steps_per_epoch * options.epochs))
    if options.max_steps:
        planned = min(planned, options.max_steps)
    work = output.with_name(output.name + ".trainer")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=options.epochs,
        max_steps=planned,
        per_device_train_batch_size=batch,
        learning_rate=options.learning_rate,
        warmup_steps=max(1, planned // 10),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=options.seed,
        data_seed=options.seed,
        use_cpu=device == "cpu",
        dataloader_drop_last=True,
    )
    started = time.monotonic()
    stopped = {"early": False}

    class Budget(TrainerCallback):
        """Reports each step and stops the trainer once the deadline has passed."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if progress is not None:
                progress(int(state.global_step), planned)
            if deadline is not None and time.monotonic() > deadline:
                stopped["early"] = state.global_step < planned
                control.should_training_stop = True
            return control

    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[Budget()],
    )
    # The trainer prints its metrics to stdout when tqdm is off; progress is ours to show.
    trainer.remove_callback(PrinterCallback)
    output.mkdir(parents=True, exist_ok=True)
    try:
        result = trainer.train()
    finally:
        _remove_tree(work)  # the trainer's scratch folder, also when interrupted
    model.save(str(output), create_model_card=False)
    loss = getattr(result, "training_loss", None)
    return TrainResult(
        steps=int(trainer.state.global_step),
        planned_steps=planned,
        seconds=time.monotonic() - started,
        loss=float(loss) if loss is not None else None,
        stopped_early=stopped["early"],
    )


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
