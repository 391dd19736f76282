"""The durable outbox: hand-offs reach the helpdesk even if the process dies or exits.

A hand-off owed to a helpdesk webhook is a row of the ``outbox`` table, written in the
same SQLite transaction as the packet itself
(:meth:`~supportbot.handoff.queue.SqliteHandoffQueue.open_handoff`), before any attempt
to send it. An :class:`Outbox` worker (one thread per process) sends what is due:

* **one attempt in flight per packet**: a worker takes a row with a compare-and-set
  (state ``sending``, a lease naming its host, process and thread), so of several
  threads or processes sharing the data folder exactly one sends it; the next attempt
  starts only after this one returned or timed out, and after the backoff;
* **retries with exponential backoff** (``backoff``, doubling, capped at
  ``max_backoff``; a ``Retry-After`` of 429/503 answers is honoured, capped), up to
  ``retries`` retries; then the row is **dead** (also at once on a 4xx answer), and
  stays until someone retries it (:meth:`Outbox.retry_dead`: the console's button,
  ``supportbot handoffs retry``);
* **a slow helpdesk is not flooded**: after a timeout the next attempt waits twice as
  long for the answer (up to ``max_timeout``), so copies never come faster than the
  helpdesk answers;
* **resume**: on start, and every ``poll`` seconds, the worker takes what is due,
  including rows a killed process left in flight (its process is gone, or its lease ran
  out).

Delivery is **at least once**: a process killed after the helpdesk accepted a packet
but before the row was marked delivered sends it again on restart. Every copy carries
the same body and the same ``Idempotency-Key`` header (the packet's idempotency key),
which is what a helpdesk dedupes on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from supportbot.handoff.packet import HandoffPacket
from supportbot.handoff.queue import DeadLetter, OutboxEntry, SqliteHandoffQueue
from supportbot.handoff.sinks import WebhookSink

__all__ = ["Outbox"]

logger = logging.getLogger("supportbot.handoff.outbox")

_HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class Outbox:
    """Sends the outbox's rows to one helpdesk webhook, durably, from a worker thread.

    Args:
        queue: the hand-off queue whose database holds the outbox.
        webhook: the helpdesk (URL, secret, headers, timeout); each attempt is one
            :meth:`WebhookSink.post`.
        retries: retries after the first attempt before a row is dead.
        backoff: seconds before the first retry; doubles at each retry.
        max_backoff: longest wait between two attempts.
        max_timeout: longest wait for an answer (default: 8 times the webhook's timeout).
        poll: how often the worker looks for rows other processes queued or left behind.
        start: start the worker thread now (False: call :meth:`start`, or drive it with
            :meth:`run_once`).
        clock: epoch seconds (tests pass a fake).

    Example:
        >>> outbox = Outbox(queue, WebhookSink(url, secret="s3cret"))
        >>> packet, created = queue.open_handoff(packet, [(outbox.target, outbox.url)])
        >>> outbox.notify(); outbox.wait([packet.id], timeout=10)
    """

    target = "webhook"
    """The name outbox rows of this sink carry."""

    def __init__(
        self,
        queue: SqliteHandoffQueue,
        webhook: WebhookSink,
        *,
        retries: int | None = None,
        backoff: float | None = None,
        max_backoff: float = 300.0,
        max_timeout: float | None = None,
        poll: float = 1.0,
        start: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.webhook = webhook
        self.retries = webhook.retries if retries is None else max(0, retries)
        self.backoff = webhook.backoff if backoff is None else max(0.0, backoff)
        self.max_backoff = max_backoff
        self.max_timeout = max_timeout if max_timeout is not None else 8 * webhook.timeout
        self.poll = poll
        self._clock = clock
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        parts = urlsplit(webhook.url)
        self._where = f"{parts.scheme}://{parts.hostname}"  # URLs often carry a token
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()  # one pass at a time in this object
        try:
            moved = queue.outbox_adopt_dead_letters(self.target, webhook.url)
        except Exception as exc:  # noqa: BLE001 - an old table must not stop the bot
            logger.warning("could not adopt old dead letters (%s)", type(exc).__name__)
        else:
            if moved:
                logger.info("%d dead letter(s) of an earlier version moved to the outbox", moved)
        if start:
            self.start()

    @property
    def url(self) -> str:
        """The helpdesk URL (log only :attr:`where`: URLs often carry a token)."""
        return self.webhook.url

    # -- the worker --------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once); it resumes whatever is due at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="supportbot-outbox", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (an attempt in flight finishes or times out first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.webhook.close()

    def notify(self) -> None:
        """Wake the worker: a row was just queued."""
        self._wake.set()

    def deliver(self, packet: HandoffPacket) -> None:
        """Owe the helpdesk ``packet`` (a :class:`HandoffSink`); the worker sends it.

        The dispatcher queues the row together with the packet instead
        (:meth:`SqliteHandoffQueue.open_handoff`); this is for packets recorded elsewhere.
        """
        self.queue.outbox_add(packet, self.target, self.url)
        self.notify()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # noqa: BLE001 - the worker must survive a bad pass
                logger.error("outbox pass failed: %s", type(exc).__name__)
                sent = 0
            if sent:
                continue
            wait = self.poll
            try:
                wake = self.queue.outbox_next_wake(self.target)
            except Exception:  # noqa: BLE001 - e.g. the database is busy: poll again
                wake = None
            if wake is not None:
                wait = min(wait, max(0.0, wake - self._clock()) + 0.01)
            self._wake.wait(wait)
            self._wake.clear()

    def _takeable(self, entry: OutboxEntry, now: float) -> bool:
        """Whether this worker may start an attempt on ``entry`` now."""
        if entry.state == "pending":
            return entry.next_attempt_at <= now
        if entry.state != "sending":
            return False
        if entry.lease_until is not None and entry.lease_until < now:
            return True  # its worker hung or died elsewhere: the lease ran out
        host, _, rest = (entry.lease_owner or "").partition(":")
        pid = rest.partition(":")[0]
        # A worker of a process on this machine that is gone (kill -9, crash, exit).
        return (
            host == _HOST
            and pid.isdigit()
            and int(pid) != os.getpid()
            and not (_pid_alive(int(pid)))
        )

    def run_once(self) -> int:
        """One pass: send every due row once; returns how many attempts were made."""
        with self._busy:
            attempts = 0
            now = self._clock()
            for entry in self.queue.outbox_candidates(self.target, now):
                if self._stop.is_set():
                    break
                if not self._takeable(entry, self._clock()):
                    continue
                if entry.state == "sending":
                    logger.info(
                        "hand-off %s: resuming a delivery left in flight by %s",
                        entry.handoff_id,
                        entry.lease_owner,
                    )
                if self._attempt(entry) is not None:
                    attempts += 1
            return attempts

    def _attempt(self, entry: OutboxEntry, *, from_dead: bool = False) -> tuple[bool, bool] | None:
        """Claim ``entry``, POST it once and record the outcome.

        Returns:
            ``(delivered, worth retrying)``, or None when another worker had taken it.
        """
        timeout = entry.timeout or self.webhook.timeout
        claimed = self.queue.outbox_claim(entry, self.owner, self._clock() + 2 * timeout + 5)
        if claimed is None:
            return None
        ok, retryable, error, retry_after = self.webhook.post(
            claimed.body.encode(), claimed.idempotency_key, timeout
        )
        n = claimed.attempts + 1
        if ok:
            self.queue.outbox_finish(claimed.id, self.owner, "delivered")
            logger.info(
                "hand-off %s delivered to %s (attempt %d)", claimed.handoff_id, self._where, n
            )
            return True, False
        short = error.split(":")[0]
        if from_dead or not retryable or claimed.attempts >= self.retries:
            self.queue.outbox_finish(claimed.id, self.owner, "dead", error)
            logger.warning(
                "hand-off %s NOT delivered to %s after %d attempt(s) (%s); kept as a dead "
                "letter: retry it from the console or with `supportbot handoffs retry`",
                claimed.handoff_id,
                self._where,
                n,
                short,
            )
            return False, retryable
        if retry_after is not None:
            delay = min(retry_after, self.webhook.max_retry_after)
        else:
            delay = min(self.backoff * 2**claimed.attempts, self.max_backoff)
        # A helpdesk slower than our patience gets more of it, not more copies.
        longer = min(timeout * 2, self.max_timeout) if error.startswith("timeout") else None
        self.queue.outbox_finish(
            claimed.id, self.owner, "pending", error, self._clock() + delay, longer
        )
        logger.info(
            "hand-off %s: %s answered %s; retry %d/%d in %.2fs",
            claimed.handoff_id,
            self._where,
            short,
            n,
            self.retries,
            delay,
        )
        return False, True

    # -- what people see and do ----------------------------------------------------------

    def pending(self) -> list[OutboxEntry]:
        """Deliveries not done yet (pending, in flight, dead), oldest first."""
        return self.queue.outbox(("pending", "sending", "dead"), self.target)

    def dead_letters(self) -> list[DeadLetter]:
        """Deliveries that failed for good, oldest first (kept to be re-sent)."""
        return [
            DeadLetter(e.id, e.packet, e.url, e.last_error, e.attempts, e.created_at)
            for e in self.queue.outbox(("dead",), self.target)
        ]

    def retry_dead(self) -> int:
        """Re-send dead letters now, once each, oldest first; returns how many went through.

        A pass stops at the first connection error, timeout, 429 or 5xx (the helpdesk is
        still down), so it never hammers a struggling server; failed ones stay dead.
        """
        delivered = 0
        for entry in self.queue.outbox(("dead",), self.target):
            outcome = self._attempt(entry, from_dead=True)
            if outcome is None:
                continue  # another worker or console took it
            ok, retryable = outcome
            if ok:
                delivered += 1
            elif retryable:
                break
        return delivered

    def flush(self) -> int:
        """Make every pending row due now and wake the worker; returns how many waited."""
        n = self.queue.outbox_due_now(self.target)
        self.notify()
        return n

    def wait(self, handoff_ids: Sequence[str] | None = None, timeout: float = 10.0) -> bool:
        """Wait until the rows of ``handoff_ids`` (default: all) are delivered or dead.

        Returns:
            True when none is pending or in flight any more; False when ``timeout`` ran
            out first (they stay in the outbox for this or the next process).
        """
        deadline = time.monotonic() + timeout
        ids = list(handoff_ids) if handoff_ids is not None else None
        while True:
            waiting = self.queue.outbox(("pending", "sending"), self.target, ids)
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                return False
            self.notify()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
