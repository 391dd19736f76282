"""The HttpClient path against a real Chroma server started on localhost."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import run_ingest, verify_index
from supportbot.config import Settings
from supportbot.embed import HashEmbedder
from supportbot.factory import build_store
from supportbot.retrieve import DenseRetriever


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("chroma")
    assert exe, "the chroma CLI comes with chromadb; it should be on PATH"
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [
            exe,
            "run",
            "--path",
            str(tmp_path / "server-db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("chroma server did not start in 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ingest_and_search_through_a_chroma_server(
    kb_dir: Path, tmp_path: Path, chroma_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "local", embedding={"backend": "hash"}, store={"url": chroma_url}
    )
    report = run_ingest([kb_dir], settings)
    assert report.ok and report.count("added") == 3
    assert not (tmp_path / "local" / "chroma").exists()  # nothing embedded locally
    store = build_store(settings)
    hit = DenseRetriever(HashEmbedder(64), store).search("restocking fee", k=1)[0]
    assert hit.chunk.source == "faq.yaml"
    assert verify_index(store).ok
    assert run_ingest([kb_dir], settings).chunks_embedded == 0
