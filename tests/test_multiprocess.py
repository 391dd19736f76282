"""Two processes on one data folder, as docs/operations.md serves them.

A chat process keeps answering while another process ingests into the same index, and
answers from what was ingested; two processes escalating one conversation at the same
moment open one hand-off. Real processes, the hash embedder and the scripted model
(``bench.outbox.child_env``), so what is tested is the store and the queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.outbox import child_env, ingest_trials
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.store import ChromaStore, open_chroma_client
from supportbot.types import Chunk, FileRecord


def _add(store: ChromaStore, name: str, vector: list[float]) -> Chunk:
    chunk = Chunk(id=f"{name}-1", text=f"about {name}", source=f"{name}.md", title=name)
    store.upsert([chunk], [vector], {chunk.source: f"hash-{name}"})
    store.put_file(FileRecord(chunk.source, f"hash-{name}", 1, "2026-01-01T00:00:00Z", 9))
    return chunk


def test_a_store_sees_what_another_client_wrote(tmp_path: Path) -> None:
    """In one process, two Chroma systems on one folder behave like two processes."""
    from chromadb.api.shared_system_client import SharedSystemClient

    path = str(tmp_path / "chroma")
    reader = ChromaStore(open_chroma_client(path=path))
    reader.ensure_model("hash-4", 4)
    a = _add(reader, "a", [1.0, 0.0, 0.0, 0.0])
    assert reader.refresh() is False  # its own write: its view is current
    assert reader.query([1.0, 0.0, 0.0, 0.0], k=1)[0].chunk.id == a.id

    SharedSystemClient._identifier_to_system.pop(path)  # the next client: its own system
    writer = ChromaStore(open_chroma_client(path=path))
    b = _add(writer, "b", [0.0, 1.0, 0.0, 0.0])
    # a lookup the stale view cannot serve is retried once on a reopened client
    assert set(reader.vectors([a.id, b.id])) == {a.id, b.id}

    c = _add(writer, "c", [0.0, 0.0, 1.0, 0.0])
    assert reader.refresh() is True  # the manifest changed elsewhere: reopened
    assert reader.query([0.0, 0.0, 1.0, 0.0], k=1)[0].chunk.id == c.id
    assert reader.refresh() is False
    assert set(reader.vectors([a.id, b.id, c.id])) == {a.id, b.id, c.id}

    # a server or an in-memory client always serves the current index: nothing to reopen
    memory = ChromaStore(open_chroma_client())
    assert memory.refresh() is False and memory.reopen() is False


def test_a_chroma_start_another_process_locked_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processes opening a new data folder at once: one in ~20 failed with this error,
    which chromadb's clean-up raises in place of the locked database's."""
    import chromadb

    real = chromadb.PersistentClient
    calls: list[str] = []

    def locked_once(*args: object, **kwargs: object) -> object:
        calls.append("open")
        if len(calls) == 1:
            raise AttributeError("'RustBindingsAPI' object has no attribute 'bindings'")
        return real(*args, **kwargs)

    monkeypatch.setattr(chromadb, "PersistentClient", locked_once)
    store = ChromaStore(open_chroma_client(path=str(tmp_path / "chroma")))
    assert calls == ["open", "open"] and store.count() == 0


@pytest.mark.slow
def test_a_chat_process_answers_from_documents_another_process_ingests(tmp_path: Path) -> None:
    """Before the fix: "chromadb.errors.InternalError: Error finding id" after each ingest."""
    result = ingest_trials(tmp_path, ingests=3)
    assert result["errors"] == []
    assert result["questions"] == 7
    assert result["answered_from_new"] == result["about_new"] == 3
    for answer in result["answers"]:
        if answer.get("question", "").startswith("What does error"):
            assert answer["mode"] == "faq" and answer["sources"] == [answer["new"]]


RACER = textwrap.dedent(
    """\
    import json, sys
    import supportbot
    services = supportbot.build()  # no redaction (child_env), so no PII detector to load
    print("ready", flush=True)
    for line in sys.stdin:
        packet = services.bot.escalate(line.strip(), "HUMAN_REQUESTED")
        print(json.dumps([line.strip(), packet.id]), flush=True)
    """
)


@pytest.mark.slow
def test_two_processes_escalating_one_conversation_open_one_handoff(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = child_env(data, CONVERSATION__BACKEND="sqlite")
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in racers:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        conversations = [f"race-{i}" for i in range(5)]
        got: dict[str, set[str]] = {c: set() for c in conversations}
        for conv in conversations:
            for p in racers:  # both start the same escalation at once
                assert p.stdin is not None
                p.stdin.write(conv + "\n")
                p.stdin.flush()
            for p in racers:
                assert p.stdout is not None
                name, packet_id = json.loads(p.stdout.readline())
                got[name].add(packet_id)
    finally:
        for p in racers:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(timeout=60)
    assert all(len(ids) == 1 for ids in got.values()), got  # one reference for both callers
    queue = SqliteHandoffQueue(data / "handoffs.db")
    packets = queue.list()
    assert sorted(p.conversation_id for p in packets) == sorted(got)
    assert {p.id for p in packets} == {next(iter(ids)) for ids in got.values()}
