"""Hand-off delivery and multi-process serving under faults, with real processes.

* **kill -9 during delivery**: a process escalates a few conversations to a slow local
  helpdesk (an ``http.server`` on 127.0.0.1 that records every ``Idempotency-Key``) and
  is killed with SIGKILL while a delivery is in flight; a new process starts on the same
  data folder and resumes the outbox. Counted: hand-offs lost, duplicates (each must
  carry the key of a packet in flight at the kill).
* **ingests under a running chat process**: one process answers questions on a data
  folder while another ingests a new document into it, again and again. Counted:
  retrieval errors in the chat process, and questions about the new document answered
  from it.
* **a slow helpdesk**: it answers after the client's timeout; counted: copies sent, the
  shortest gap between two of them, the keys they carried.

Both children use the hash embedder and the scripted model
(``SUPPORTBOT_EMBEDDING__BACKEND=hash``, ``SUPPORTBOT_LLM__BACKEND=scripted``), so what
is measured is delivery and the store, not a model. The tests (``tests/test_outbox.py``,
``tests/test_multiprocess.py``) run the same trials, fewer of them.

    python bench/outbox.py                    # 20 kill trials, 10 ingests, a slow helpdesk
    python bench/outbox.py --kills 5 --ingests 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Received:
    """One POST the helpdesk got."""

    at: float
    key: str
    body: bytes


@dataclass
class RecordingHelpdesk:
    """A helpdesk webhook on 127.0.0.1 that records what it receives.

    Args:
        delay: seconds it takes to answer each request (the client may time out first).
        script: statuses for the first requests, then ``default``.
    """

    delay: float = 0.0
    script: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    max_in_flight: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.first_request = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                with desk._lock:
                    desk.requests.append(Received(time.time(), key, body))
                    desk._in_flight[key] += 1
                    desk.max_in_flight[key] = max(desk.max_in_flight[key], desk._in_flight[key])
                    status = desk.script.pop(0) if desk.script else desk.default
                desk.first_request.set()
                try:
                    if desk.delay:
                        time.sleep(desk.delay)
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up (timeout) or died (kill -9)
                finally:
                    with desk._lock:
                        desk._in_flight[key] -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The webhook URL (with a token in it, as real ones often have)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/supportbot?token=t0k3n"

    def keys(self) -> Counter[str]:
        """How many requests carried each idempotency key."""
        with self._lock:
            return Counter(r.key for r in self.requests)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def child_env(data_dir: Path, webhook: str | None = None, **settings: str) -> dict[str, str]:
    """Environment for a supportbot child process on ``data_dir`` (hash embedder, scripted
    model, no PII model); ``settings`` are more ``SUPPORTBOT_*`` values by suffix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env.update(
        SUPPORTBOT_DATA_DIR=str(data_dir),
        SUPPORTBOT_EMBEDDING__BACKEND="hash",
        SUPPORTBOT_LLM__BACKEND="scripted",
        SUPPORTBOT_HANDOFF__REDACT_PII="false",
        ANONYMIZED_TELEMETRY="False",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    if webhook:
        env["SUPPORTBOT_HANDOFF__SINKS"] = '["sqlite", "webhook"]'
        env["SUPPORTBOT_HANDOFF__WEBHOOK_URL"] = webhook
    env.update({f"SUPPORTBOT_{k.upper()}": v for k, v in settings.items()})
    return env


ESCALATE = textwrap.dedent(
    """\
    import json, sys, time
    import supportbot
    services = supportbot.build()
    packets = [services.bot.escalate(c, "HUMAN_REQUESTED") for c in sys.argv[1:]]
    print(json.dumps({p.id: p.idempotency_key for p in packets}), flush=True)
    time.sleep(600)  # delivering in the background until killed
    """
)

RESUME = textwrap.dedent(
    """\
    import json, sys
    import supportbot
    services = supportbot.build()  # starting a process resumes the outbox
    done = services.desk.wait_for_deliveries(timeout=float(sys.argv[1]))
    states = {e.handoff_id: e.state for e in services.desk.pending_deliveries()}
    print(json.dumps({"done": done, "undelivered": states}), flush=True)
    """
)


def kill_trial(
    work: Path, *, packets: int = 3, delay: float = 0.3, kill_after: float = 0.0
) -> dict[str, Any]:
    """Escalate ``packets`` conversations, SIGKILL the process ``kill_after`` seconds after
    the helpdesk received the first delivery, restart, and count what arrived."""
    helpdesk = RecordingHelpdesk(delay=delay)
    env = child_env(work, helpdesk.url, HANDOFF__WEBHOOK_BACKOFF="0.1")
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", ESCALATE, *(f"conv-{i}" for i in range(packets))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        sent: dict[str, str] = json.loads(child.stdout.readline())
        if not helpdesk.first_request.wait(60):
            raise RuntimeError("the escalating process delivered nothing in 60 s")
        time.sleep(kill_after)
        at_kill = helpdesk.keys()
        child.send_signal(signal.SIGKILL)
        child.wait()
        resumed = subprocess.run(
            [sys.executable, "-c", RESUME, "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if resumed.returncode != 0:
            raise RuntimeError(f"the restarted process failed: {resumed.stderr[-2000:]}")
        outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
        got = helpdesk.keys()
    finally:
        helpdesk.close()
    keys = set(sent.values())
    return {
        "sent": len(keys),
        "received_before_kill": sum(1 for k in keys if at_kill[k]),
        "lost": sum(1 for k in keys if not got[k]),
        "duplicates": sum(max(0, got[k] - 1) for k in keys),
        "max_copies": max((got[k] for k in keys), default=0),
        "foreign_keys": sorted(set(got) - keys),
        "max_in_flight": max((helpdesk.max_in_flight[k] for k in keys), default=0),
        "undelivered": outcome["undelivered"],
    }


CHAT = textwrap.dedent(
    """\
    import json, os, sys
    import supportbot
    if os.environ.get("BENCH_NO_REFRESH"):  # the behaviour before ChromaStore.refresh
        from supportbot.store import ChromaStore
        ChromaStore.refresh = ChromaStore.reopen = lambda self: False
    services = supportbot.build()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            reply = services.bot.ask(line.strip())
            out = {"mode": reply.mode, "sources": [c.source for c in reply.citations]}
        except Exception as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(json.dumps(out), flush=True)
    """
)

BASE_FAQ = (
    "- question: How long does a full charge take?\n"
    "  answer: A full charge takes 90 minutes with the USB-C charger.\n"
)


def new_faq(i: int) -> tuple[str, str]:
    """A new document (an FAQ about error code ZQ-<i>41) and the question it answers."""
    question = f"What does error ZQ-{i}41 mean?"
    return question, (
        f"- question: {question}\n"
        f"  answer: ZQ-{i}41 means the fan{i} module is blocked. Clean its vent with a brush.\n"
    )


def ingest_trials(work: Path, ingests: int = 10, *, refresh: bool = True) -> dict[str, Any]:
    """A chat process answers while this process ingests ``ingests`` new documents.

    ``refresh=False`` runs the chat process without the store's refresh (as before it).
    """
    from ingest import run_ingest
    from supportbot.config import Settings

    kb = work / "kb"
    kb.mkdir(parents=True, exist_ok=True)
    (kb / "base.yaml").write_text(BASE_FAQ)
    data = work / "data"
    settings = Settings(data_dir=data, embedding={"backend": "hash"})
    assert run_ingest([kb], settings).ok
    env = child_env(data)
    if not refresh:
        env["BENCH_NO_REFRESH"] = "1"
    chat = subprocess.Popen(
        [sys.executable, "-c", CHAT],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert chat.stdin is not None and chat.stdout is not None

    def ask(question: str) -> dict[str, Any]:
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write(question + "\n")
        chat.stdin.flush()
        return dict(json.loads(chat.stdout.readline()))

    answers: list[dict[str, Any]] = []
    try:
        json.loads(chat.stdout.readline())  # ready
        answers.append(ask("How long does a full charge take?"))
        for i in range(ingests):
            question, text = new_faq(i)
            (kb / f"new{i}.yaml").write_text(text)
            assert run_ingest([kb], settings).ok
            for q in (question, "How long does a full charge take?"):
                answer = ask(q)
                answer["question"], answer["new"] = q, f"new{i}.yaml"
                answers.append(answer)
    finally:
        chat.stdin.close()
        chat.wait(timeout=60)
    about_new = [a for a in answers if a.get("question", "").startswith("What does error")]
    return {
        "ingests": ingests,
        "questions": len(answers),
        "errors": [a["error"] for a in answers if "error" in a],
        "answered_from_new": sum(1 for a in about_new if a.get("new") in a.get("sources", [])),
        "about_new": len(about_new),
        "answers": answers,
    }


def slow_helpdesk(delay: float = 0.8, timeout: float = 0.3, backoff: float = 0.1) -> dict[str, Any]:
    """One packet to a helpdesk that answers after ``delay`` (> the client's ``timeout``)."""
    from supportbot.conversation import Turn
    from supportbot.handoff.outbox import Outbox
    from supportbot.handoff.packet import build_packet
    from supportbot.handoff.queue import SqliteHandoffQueue
    from supportbot.handoff.sinks import WebhookSink

    helpdesk = RecordingHelpdesk(delay=delay)
    with tempfile.TemporaryDirectory() as tmp:
        queue = SqliteHandoffQueue(Path(tmp) / "handoffs.db")
        webhook = WebhookSink(helpdesk.url, retries=5, backoff=backoff, timeout=timeout)
        outbox = Outbox(queue, webhook, poll=0.05)
        packet = build_packet("slow", [Turn("user", "a person please")], ["HUMAN_REQUESTED"])
        queue.open_handoff(packet, [(outbox.target, outbox.url)])
        outbox.notify()
        started = time.time()
        outbox.wait(timeout=60)
        took = time.time() - started
        outbox.close()
        [entry] = queue.outbox()
    helpdesk.close()
    times = [r.at for r in helpdesk.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Before the outbox: the sink retried with the same timeout, in memory.
    old = RecordingHelpdesk(delay=delay)
    WebhookSink(old.url, retries=5, backoff=backoff, timeout=timeout).deliver(packet)
    time.sleep(delay)
    old.close()
    return {
        "before_copies": len(old.requests),
        "helpdesk_delay_s": delay,
        "client_timeout_s": timeout,
        "copies": len(times),
        "keys": sorted({r.key for r in helpdesk.requests}),
        "gaps_s": [round(g, 2) for g in gaps],
        "state": entry.state,
        "seconds": round(took, 2),
        "key": packet.idempotency_key,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--ingests", type=int, default=10)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--baseline", type=int, default=3, help="Ingests without the store's refresh."
    )
    args = parser.parse_args()
    from bench._common import machine, save

    rng = random.Random(args.seed)
    print(machine())
    trials = []
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as tmp:
        for i in range(args.kills):
            kill_after = rng.uniform(0.0, 0.9)  # mid-request, between requests, later ones
            t = kill_trial(Path(tmp) / f"kill{i}", kill_after=kill_after)
            t["kill_after_s"] = round(kill_after, 2)
            trials.append(t)
            print(
                f"kill {i + 1:2d}: sent {t['sent']}, received before the kill "
                f"{t['received_before_kill']}, lost {t['lost']}, duplicates {t['duplicates']}"
            )
        lost = sum(t["lost"] for t in trials)
        dupes = sum(t["duplicates"] for t in trials)
        sent = sum(t["sent"] for t in trials)
        print(
            f"kill -9 during delivery: {len(trials)} trials, {sent} hand-offs, {lost} lost, "
            f"{dupes} duplicate(s) (same key), max copies of one packet "
            f"{max(t['max_copies'] for t in trials)}, max in flight at once "
            f"{max(t['max_in_flight'] for t in trials)}"
        )
        started = time.time()
        ingest = ingest_trials(Path(tmp) / "ingest", args.ingests)
        print(
            f"{ingest['ingests']} ingests by another process under a chat process: "
            f"{len(ingest['errors'])} retrieval errors in {ingest['questions']} questions, "
            f"{ingest['answered_from_new']}/{ingest['about_new']} questions about the new "
            f"document answered from it ({time.time() - started:.0f} s)"
        )
        if args.baseline:
            before = ingest_trials(Path(tmp) / "before", args.baseline, refresh=False)
            print(
                f"the same without ChromaStore.refresh ({before['ingests']} ingests): "
                f"{len(before['errors'])} retrieval errors in {before['questions']} questions"
                + (f", e.g. {before['errors'][0]}" if before["errors"] else "")
            )
            before.pop("answers")
            ingest["baseline_without_refresh"] = before
    slow = slow_helpdesk()
    print(
        f"slow helpdesk (answers after {slow['helpdesk_delay_s']} s, client timeout "
        f"{slow['client_timeout_s']} s, doubling): {slow['copies']} copies, gaps "
        f"{slow['gaps_s']} s, {len(slow['keys'])} key, {slow['state']} in {slow['seconds']} s "
        f"(a sink retrying with a fixed timeout, as before the outbox: "
        f"{slow['before_copies']} copies, then a dead letter)"
    )
    ingest.pop("answers")
    print(save("outbox", {"kills": trials, "ingest": ingest, "slow": slow, "machine": machine()}))


if __name__ == "__main__":
    main()
