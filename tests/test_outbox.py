"""The durable hand-off outbox: written with the packet, sent by a worker, never lost.

Against a real HTTP server on 127.0.0.1 that records every ``Idempotency-Key``
(``bench.outbox.RecordingHelpdesk``), with real processes for kill -9 and the CLI.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.outbox import RecordingHelpdesk, child_env, kill_trial
from supportbot.config import Settings
from supportbot.conversation import Turn
from supportbot.handoff.outbox import Outbox
from supportbot.handoff.packet import HandoffPacket, build_packet
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.handoff.sinks import WebhookSink


@pytest.fixture
def helpdesk() -> Iterator[Callable[..., RecordingHelpdesk]]:
    servers: list[RecordingHelpdesk] = []

    def start(**kwargs: Any) -> RecordingHelpdesk:
        servers.append(RecordingHelpdesk(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def queue(tmp_path: Path) -> SqliteHandoffQueue:
    return SqliteHandoffQueue(tmp_path / "handoffs.db")


def _packet(conv: str = "c1", turns: int = 1) -> HandoffPacket:
    transcript = [Turn("user", f"a person please {i}") for i in range(turns)]
    return build_packet(conv, transcript, ["HUMAN_REQUESTED"], redact_pii=False)


def _outbox(queue: SqliteHandoffQueue, url: str, **kwargs: Any) -> Outbox:
    hook = {k: kwargs.pop(k) for k in ("retries", "backoff", "timeout") if k in kwargs}
    return Outbox(queue, WebhookSink(url, **{"backoff": 0.05, **hook}), poll=0.05, **kwargs)


# -- the outbox table and the worker ----------------------------------------------------


def test_packet_and_its_delivery_are_one_transaction(queue: SqliteHandoffQueue) -> None:
    packet = _packet()
    got, created = queue.open_handoff(packet, [("webhook", "http://127.0.0.1:9/x")])
    assert created and got == packet
    [row] = queue.outbox()
    assert (row.handoff_id, row.state, row.attempts, row.target) == (
        packet.id,
        "pending",
        0,
        "webhook",
    )
    assert row.idempotency_key == packet.idempotency_key and row.packet == packet
    # the same conversation again (another thread, tab or process): the open one, nothing new
    again, created = queue.open_handoff(_packet(turns=3), [("webhook", "http://127.0.0.1:9/x")])
    assert not created and again.id == packet.id
    assert len(queue.list()) == 1 and len(queue.outbox()) == 1
    queue.update_status(packet.id, "resolved")  # closed: the next escalation is a new one
    _, created = queue.open_handoff(_packet(turns=5), [])
    assert created and len(queue.list()) == 2

    # a failure inside the transaction leaves neither the packet nor its delivery
    broken = _packet("c2")
    with pytest.raises(sqlite3.Error):  # a URL SQLite cannot store: the insert fails
        queue.open_handoff(broken, [("webhook", object())])  # type: ignore[list-item]
    assert queue.get(broken.id) is None and len(queue.outbox()) == 1


def test_worker_retries_with_backoff_then_delivers(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk(script=[503, 500])
    outbox = _outbox(queue, server.url, retries=5, backoff=0.2)
    packet = _packet()
    queue.open_handoff(packet, [(outbox.target, outbox.url)])
    outbox.notify()
    assert outbox.wait([packet.id], timeout=10)
    outbox.close()
    [row] = queue.outbox()
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, "")
    assert row.delivered_at and row.lease_owner is None
    assert [r.key for r in server.requests] == [packet.idempotency_key] * 3
    assert {r.body for r in server.requests} == {packet.to_json().encode()}
    times = [r.at for r in server.requests]
    assert times[1] - times[0] >= 0.2 - 0.02 and times[2] - times[1] >= 0.4 - 0.02  # doubling


def test_dead_letters_stay_retryable_from_the_desk(
    helpdesk: Callable[..., RecordingHelpdesk], tmp_path: Path
) -> None:
    from supportbot.factory import build

    server = helpdesk(default=503)
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        llm={"backend": "scripted"},
        handoff={
            "sinks": ["sqlite", "webhook"],
            "webhook_url": server.url,
            "webhook_retries": 1,
            "webhook_backoff": 0.05,
            "redact_pii": False,
        },
    )
    services = build(settings)
    packet = services.bot.escalate("c-dead", "HUMAN_REQUESTED")
    desk = services.desk
    assert desk.wait_for_deliveries([packet.id], timeout=10)  # done: dead after 2 tries
    [letter] = desk.failed_deliveries()
    assert (
        letter.packet == packet
        and letter.attempts == 2
        and letter.last_error.startswith("HTTP 503")
    )
    assert letter.url == server.url
    assert desk.retry_failed() == 0  # still down: kept, one more attempt
    assert desk.failed_deliveries()[0].attempts == 3
    server.default = 200
    assert desk.retry_failed() == 1
    assert desk.failed_deliveries() == [] and desk.pending_deliveries() == []
    assert len(server.requests) == 4 and server.keys() == {packet.idempotency_key: 4}
    services.close()


def test_a_client_error_is_dead_at_once(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk(default=400)
    outbox = _outbox(queue, server.url, retries=5)
    outbox.deliver(_packet())
    assert outbox.wait(timeout=10)
    outbox.close()
    [row] = queue.outbox()
    assert (row.state, row.attempts, row.last_error) == ("dead", 1, "HTTP 400 Bad Request")


def test_a_slow_helpdesk_gets_no_copies_faster_than_it_answers(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue
) -> None:
    # It answers after 0.8 s; the client waits 0.3 s, then 0.6, then 1.2: the third answer
    # arrives. Each copy leaves only after the previous one timed out, plus the backoff.
    server = helpdesk(delay=0.8)
    outbox = _outbox(queue, server.url, retries=5, backoff=0.1, timeout=0.3)
    packet = _packet()
    outbox.deliver(packet)
    assert outbox.wait(timeout=20)
    outbox.close()
    [row] = queue.outbox()
    assert row.state == "delivered" and row.attempts == 3
    assert server.keys() == {packet.idempotency_key: 3}
    times = [r.at for r in server.requests]
    assert times[1] - times[0] >= 0.3 + 0.1 - 0.02  # timeout, then backoff
    assert times[2] - times[1] >= 0.6 + 0.2 - 0.02  # a doubled timeout, a doubled backoff


def test_two_workers_never_send_one_packet_at_once(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue, tmp_path: Path
) -> None:
    # Two workers on one database (as two processes would be), a helpdesk that takes its time.
    server = helpdesk(delay=0.3)
    other = SqliteHandoffQueue(tmp_path / "handoffs.db")
    a = _outbox(queue, server.url, start=False)
    b = _outbox(other, server.url, start=False)
    packets = [_packet(f"c{i}") for i in range(6)]
    for p in packets:
        queue.open_handoff(p, [(a.target, a.url)])
    a.start()
    b.start()
    assert a.wait(timeout=20)
    a.close()
    b.close()
    assert server.keys() == {p.idempotency_key: 1 for p in packets}
    assert max(server.max_in_flight.values()) == 1
    assert {r.state for r in queue.outbox()} == {"delivered"}


def test_rows_of_a_dead_process_are_resumed(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk()
    packet = _packet()
    queue.open_handoff(packet, [("webhook", server.url)])
    # a process on this machine took it and died (no such pid), and one whose lease ran out
    [row] = queue.outbox()
    import socket

    assert queue.outbox_claim(row, f"{socket.gethostname()}:999999999:dead", time.time() + 600)
    second = _packet("c2")
    queue.open_handoff(second, [("webhook", server.url)])
    [_, row2] = queue.outbox()
    assert queue.outbox_claim(row2, "elsewhere:1:x", time.time() - 1)
    outbox = _outbox(queue, server.url)
    assert outbox.wait(timeout=10)
    outbox.close()
    assert server.keys() == {packet.idempotency_key: 1, second.idempotency_key: 1}
    # a live worker's lease is respected
    third = _packet("c3")
    queue.open_handoff(third, [("webhook", server.url)])
    [*_, row3] = queue.outbox()
    assert queue.outbox_claim(row3, "elsewhere:1:x", time.time() + 600)
    outbox = _outbox(queue, server.url)
    assert not outbox.wait(timeout=0.5)
    outbox.close()
    assert third.idempotency_key not in server.keys()


def test_old_dead_letters_move_into_the_outbox(
    helpdesk: Callable[..., RecordingHelpdesk], queue: SqliteHandoffQueue
) -> None:
    server = helpdesk()
    packet = _packet()
    queue.add_dead_letter(packet, "https://old.example/hook", "HTTP 503", 6)
    outbox = _outbox(queue, server.url)
    assert queue.dead_letters() == []
    [letter] = outbox.dead_letters()
    assert (letter.packet, letter.attempts, letter.url) == (packet, 6, "https://old.example/hook")
    assert outbox.retry_dead() == 1
    outbox.close()
    assert server.keys() == {packet.idempotency_key: 1}


# -- idempotent escalation ----------------------------------------------------------------


def test_concurrent_escalations_give_one_packet(
    helpdesk: Callable[..., RecordingHelpdesk], tmp_path: Path
) -> None:
    from supportbot.factory import build

    server = helpdesk()
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        llm={"backend": "scripted"},
        conversation={"backend": "sqlite"},
        handoff={"sinks": ["sqlite", "webhook"], "webhook_url": server.url, "redact_pii": False},
    )
    services = build(settings)
    start = threading.Barrier(8)
    got: list[str] = []

    def escalate() -> None:
        start.wait()
        got.append(services.bot.escalate("same-conversation", "HUMAN_REQUESTED").id)

    threads = [threading.Thread(target=escalate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 8
    assert [p.id for p in services.desk.handoffs()] == got[:1]
    said = [t for t in services.bot.history("same-conversation") if t.meta.get("handoff")]
    assert len(said) == 1  # one "handed over" message, one reference
    assert services.desk.wait_for_deliveries(timeout=10)
    assert len(server.requests) == 1
    services.close()


# -- real processes: kill -9, the CLI ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.0, 0.45])
def test_kill_9_during_delivery_then_restart_loses_nothing(
    tmp_path: Path, kill_after: float
) -> None:
    """SIGKILL while a delivery is in flight; a new process on the folder resumes it."""
    trial = kill_trial(tmp_path / "data", packets=3, delay=0.3, kill_after=kill_after)
    assert trial["lost"] == 0 and trial["undelivered"] == {}
    assert trial["foreign_keys"] == []  # every copy carries the key of a packet sent
    assert trial["max_copies"] <= 2  # a duplicate only for the one in flight at the kill
    assert trial["duplicates"] <= 1 and trial["max_in_flight"] == 1


def _supportbot(*args: str, env: dict[str, str], timeout: float = 120) -> Any:
    return subprocess.run(
        [sys.executable, "-c", "from supportbot.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_cli_ask_that_hands_over_delivers_before_exiting(
    helpdesk: Callable[..., RecordingHelpdesk],
    tmp_path: Path,
    kb_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ingest import run_ingest
    from supportbot import cli
    from supportbot.factory import build

    data = tmp_path / "data"
    assert run_ingest([kb_dir], Settings(data_dir=data, embedding={"backend": "hash"})).ok
    server = helpdesk(delay=0.2, script=[503])  # the first try fails, the retry lands
    env = child_env(data, server.url, HANDOFF__WEBHOOK_BACKOFF="0.1")
    done = _supportbot("ask", "I want to talk to a real person", "--json", env=env)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "Delivering hand-off #" in said and "Delivered to the helpdesk" in said
    assert json.loads(done.stdout)["mode"] == "handoff"
    [row] = SqliteHandoffQueue(data / "handoffs.db").outbox()
    assert row.state == "delivered" and row.attempts == 2
    assert server.keys() == {row.idempotency_key: 2}

    # The helpdesk is down: the command waits as long as configured, says so, and the
    # hand-off stays in the outbox until a later command delivers it. (In this process: a
    # second `ask` process would spend its time loading the PII detector again.)
    server.default = 503
    handoff = {"sinks": ["sqlite", "webhook"], "webhook_url": server.url, "redact_pii": False}
    settings = Settings(
        data_dir=data,
        embedding={"backend": "hash"},
        llm={"backend": "scripted"},
        handoff={**handoff, "webhook_backoff": 30, "cli_wait": 0.3},
    )
    services = build(settings)
    packet = services.bot.escalate("c2", "HUMAN_REQUESTED")
    capsys.readouterr()
    cli._await_delivery(services, [packet.id])
    said = " ".join(capsys.readouterr().err.split())
    assert "waiting up to 0.3s" in said and "it stays in the outbox" in said
    pending = _supportbot("handoffs", "pending", "--json", env=env)
    [waiting] = json.loads(pending.stdout)
    assert (waiting["handoff_id"], waiting["state"], waiting["attempts"]) == (
        packet.id,
        "pending",
        1,
    )
    server.default = 200
    retried = _supportbot("handoffs", "retry", "--wait", "20", env=env)
    assert retried.returncode == 0, retried.stderr
    assert "Every hand-off was delivered" in retried.stdout
    services.close()
    assert server.keys() == {row.idempotency_key: 2, packet.idempotency_key: 2}
    assert json.loads(_supportbot("handoffs", "pending", "--json", env=env).stdout) == []
