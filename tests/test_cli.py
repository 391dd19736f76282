"""The CLI as a shell: exit codes, messages, JSON (hash embedder, via the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from supportbot import cli

cli._register_plugins()
runner = CliRunner()


@pytest.fixture(autouse=True)
def _hash_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__BACKEND", "hash")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))


def test_ingest_json_then_search_json(kb_dir: Path) -> None:
    res = runner.invoke(cli.app, ["ingest", str(kb_dir), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["summary"]["added"] == 3
    res = runner.invoke(cli.app, ["search", "restocking fee returns", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert len(hits) == 2 and hits[0]["source"] == "faq.yaml"
    assert hits[0]["question"] == "Can I return an opened widget?"


def test_second_ingest_says_nothing_to_do(kb_dir: Path) -> None:
    runner.invoke(cli.app, ["ingest", str(kb_dir)])
    res = runner.invoke(cli.app, ["ingest", str(kb_dir)])
    assert res.exit_code == 0
    assert "Index already up to date: nothing was embedded." in res.stdout


def test_failed_files_give_exit_code_2_and_are_named(kb_dir: Path) -> None:
    (kb_dir / "bad.md").write_bytes(b"\x00\x00\x00")
    res = runner.invoke(cli.app, ["ingest", str(kb_dir)])
    assert res.exit_code == 2
    assert "bad.md" in res.stdout and "1 file(s) failed" in res.stdout


def test_dry_run_lists_changes(kb_dir: Path) -> None:
    res = runner.invoke(cli.app, ["ingest", str(kb_dir), "--dry-run"])
    assert res.exit_code == 0
    assert "Dry run" in res.stdout and "would be added: manual.md" in res.stdout


def test_verify_reports_ok(kb_dir: Path) -> None:
    runner.invoke(cli.app, ["ingest", str(kb_dir)])
    res = runner.invoke(cli.app, ["ingest", "--verify"])
    assert res.exit_code == 0 and "Index OK" in res.stdout


def test_search_on_empty_index_explains_what_to_do() -> None:
    res = runner.invoke(cli.app, ["search", "anything"])
    assert res.exit_code == 1
    assert "supportbot ingest" in res.output
    assert "Traceback" not in res.output


def test_model_mismatch_is_a_clean_error(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.invoke(cli.app, ["ingest", str(kb_dir)])
    monkeypatch.setenv("SUPPORTBOT_EMBEDDING__HASH_DIMENSION", "32")
    res = runner.invoke(cli.app, ["ingest", str(kb_dir)])
    assert res.exit_code == 1 and "--rebuild" in res.output
    res = runner.invoke(cli.app, ["ingest", str(kb_dir), "--rebuild"])
    assert res.exit_code == 0, res.output


def test_invalid_setting_is_a_clean_error(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_INGEST__CHUNK_SIZE", "-5")
    res = runner.invoke(cli.app, ["ingest", str(kb_dir)])
    assert res.exit_code == 1 and "ingest.chunk_size" in res.output


def test_installed_scripts_run(kb_dir: Path) -> None:
    """`python -m ingest` and the `supportbot` console script, as a user runs them."""
    env = dict(os.environ)
    res = subprocess.run(
        [sys.executable, "-m", "ingest", str(kb_dir), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["summary"]["added"] == 3
    exe = Path(sys.executable).with_name("supportbot")
    res = subprocess.run([str(exe), "info"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "files: 3" in res.stdout
