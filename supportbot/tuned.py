"""Which embedding model an index is live with: the configured one, or one tuned for it.

``supportbot tune`` (``ingest/tune.py``) fine-tunes the configured embedding model on a
knowledge base, saves it under ``<data_dir>/embedders/`` in a folder whose name says what
it was tuned on, re-embeds the index with it, and then records it here, in
``<data_dir>/embedders/<collection>.json``. The factory reads that record, so every
process built from the same settings (the web UI, the CLI, an evaluation) embeds
questions with the model the index was built with, and nobody edits a config file.

The record is used only while ``embedding.model`` is still the model it was tuned from:
configuring another model is a deliberate choice that wins (and, like any model change,
needs ``supportbot ingest --rebuild``). ``supportbot tune --revert`` re-embeds the index
with the configured model and removes the record.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supportbot.config import Settings

__all__ = [
    "TunedModel",
    "live_tuned_model",
    "read_record",
    "record_path",
    "tuned_models_dir",
    "write_record",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TunedModel:
    """A model ``supportbot tune`` trained for one index.

    Attributes:
        name: the model folder's name, which is also the index's model stamp, e.g.
            ``all-MiniLM-L6-v2-tuned-on-supportbot-3f325p-1a2b3c4d``.
        path: the folder (a sentence-transformers model).
        base: the ``embedding.model`` setting it was tuned from.
        collection: the index it was tuned on.
        tuned_at: when (UTC, ISO 8601).
        trained_on: files, passages, pairs by kind, steps and seconds of the run.

    Example:
        >>> model = live_tuned_model(settings)
        >>> model.name if model else "the configured model"
    """

    name: str
    path: Path
    base: str
    collection: str
    tuned_at: str
    trained_on: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record's JSON form."""
        data = asdict(self)
        data["path"] = str(self.path)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TunedModel:
        """Read a record written by :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            path=Path(data["path"]),
            base=str(data["base"]),
            collection=str(data["collection"]),
            tuned_at=str(data.get("tuned_at", "")),
            trained_on=dict(data.get("trained_on") or {}),
        )


def tuned_models_dir(settings: Settings) -> Path:
    """Where tuned models and their records live: ``<data_dir>/embedders``."""
    return settings.data_dir / "embedders"


def record_path(settings: Settings) -> Path:
    """The record of the live tuned model of ``store.collection``."""
    return tuned_models_dir(settings) / f"{settings.store.collection}.json"


def read_record(settings: Settings) -> TunedModel | None:
    """The record as written, whatever the current settings (None when there is none)."""
    path = record_path(settings)
    try:
        return TunedModel.from_json(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the unreadable tuned-model record %s: %s", path, exc)
        return None


def live_tuned_model(settings: Settings) -> TunedModel | None:
    """The tuned model to embed with for these settings, or None for ``embedding.model``.

    None when nothing was tuned, when ``embedding.model`` is no longer the model it was
    tuned from, or when its folder is gone (the index then reports the mismatch, and
    ``supportbot tune --revert`` or ``supportbot ingest --rebuild`` repairs it).
    """
    if settings.embedding.backend != "sentence-transformers":
        return None
    record = read_record(settings)
    if record is None or record.base != settings.embedding.model:
        return None
    if not (record.path / "modules.json").is_file():
        log.warning(
            "the tuned embedding model %s is missing (%s): run `supportbot tune --revert` "
            "to go back to %s",
            record.name,
            record.path,
            settings.embedding.model,
        )
        return None
    return record


def write_record(settings: Settings, model: TunedModel | None) -> None:
    """Record ``model`` as live for ``store.collection`` (None: the configured model is).

    Written to a temporary file and renamed, so a reader sees the old or the new
    record, never half of one.
    """
    path = record_path(settings)
    if model is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(model.to_json(), "utf-8")
    os.replace(tmp, path)
