"""Where hand-off packets go besides the local queue; each sink has one method, ``deliver``.

* :class:`WebhookSink` - POSTs the packet as JSON to a helpdesk, signed, retried with
  backoff, idempotent; what cannot be delivered is kept as a dead letter and re-sent by
  :meth:`WebhookSink.redeliver_dead_letters`.
* :class:`CallbackSink` - calls a Python function given by the embedding application.
* :class:`BackgroundSink` - runs another sink on a thread, in memory (lost when the
  process ends). The composition root delivers webhooks through the durable outbox
  instead (:class:`supportbot.handoff.outbox.Outbox`), which uses
  :meth:`WebhookSink.post` for each attempt.

:func:`deliver_packet` hands one packet to all of them without ever raising. The
composition root (:mod:`supportbot.factory`) builds them from
:class:`~supportbot.config.HandoffSettings`.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from supportbot.errors import ConfigError

if TYPE_CHECKING:
    pass

from supportbot.handoff.packet import HandoffPacket, _now_iso
from supportbot.handoff.queue import DeadLetter, MemoryDeadLetters, SqliteHandoffQueue

__all__ = ["BackgroundSink", "CallbackSink", "HandoffSink", "WebhookSink", "deliver_packet"]

logger = logging.getLogger("supportbot.handoff.sinks")


@runtime_checkable
class HandoffSink(Protocol):
    """Somewhere hand-off packets go (a queue, a helpdesk, a function)."""

    def deliver(self, packet: HandoffPacket) -> None:
        """Deliver one packet; a failed delivery is recorded, not raised."""
        ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    attempts: int
    error: str
    retryable: bool


class WebhookSink:
    """POSTs packets as JSON to a helpdesk webhook, reliably.

    * Headers: ``Content-Type: application/json``, ``Idempotency-Key`` (the packet's, the
      same on every retry) and, with a ``secret``, ``X-Supportbot-Signature:
      sha256=<hex HMAC-SHA256 of the body>``.
    * Connection errors, timeouts, 429 and 5xx are retried ``retries`` times after
      ``backoff``, ``2*backoff``, ``4*backoff``... seconds, or after the ``Retry-After``
      the server asks for (capped at ``max_retry_after``). Other 4xx are not retried.
    * A packet that still cannot be delivered becomes a dead letter in ``dead_letter``
      (a :class:`SqliteHandoffQueue`; in memory if None) and is re-sent by
      :meth:`redeliver_dead_letters`. :meth:`deliver` never raises for helpdesk failures.

    Delivery blocks while it retries; wrap the sink in :class:`BackgroundSink` to keep
    that off the customer's request.

    Example:
        >>> sink = WebhookSink("https://helpdesk.example/hooks/bot", secret="s3cret",
        ...                    dead_letter=SqliteHandoffQueue(Path("handoffs.db")))
        >>> sink.deliver(packet)
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        dead_letter: SqliteHandoffQueue | None = None,
        *,
        max_retry_after: float = 30.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url or not url.strip():
            raise ConfigError("WebhookSink needs the helpdesk URL (handoff.webhook_url).")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(
                f"The helpdesk URL (handoff.webhook_url) must start with http:// or https://, "
                f"got {url!r}."
            )
        self.url = url
        self.secret = secret
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.extra_headers = dict(headers or {})
        self._sleep = sleep
        self._dead: SqliteHandoffQueue | MemoryDeadLetters
        self._dead = dead_letter if dead_letter is not None else MemoryDeadLetters()
        # Only scheme and host go into logs: webhook URLs often carry a token.
        parts = urlsplit(url)
        self._target = f"{parts.scheme}://{parts.hostname}"
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def dead_letters(self) -> list[DeadLetter]:
        """Packets waiting to be re-sent, oldest first."""
        return self._dead.dead_letters()

    def headers_for(self, packet: HandoffPacket, body: bytes) -> dict[str, str]:
        """The request headers for ``body`` (the packet's JSON)."""
        return self._headers(packet.idempotency_key, body)

    def _headers(self, idempotency_key: str, body: bytes) -> dict[str, str]:
        headers = {
            **self.extra_headers,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "User-Agent": "supportbot-handoff",
        }
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Supportbot-Signature"] = f"sha256={digest}"
        return headers

    def post(
        self, body: bytes, idempotency_key: str, timeout: float | None = None
    ) -> tuple[bool, bool, str, float | None]:
        """One POST of a packet's JSON, no retry (the outbox worker schedules retries).

        Args:
            body: the packet's JSON, the same bytes on every attempt.
            idempotency_key: the packet's key, sent as ``Idempotency-Key``.
            timeout: seconds to wait for the helpdesk (default: the sink's ``timeout``).

        Returns:
            ``(delivered, worth retrying, error, Retry-After seconds or None)``; an error
            that starts with ``timeout`` means the helpdesk did not answer in time.
        """
        return self._attempt(body, self._headers(idempotency_key, body), timeout)

    def _attempt(
        self, body: bytes, headers: dict[str, str], timeout: float | None = None
    ) -> tuple[bool, bool, str, float | None]:
        """One POST: (delivered, worth retrying, error, Retry-After seconds)."""
        try:
            response = self._http().post(
                self.url,
                content=body,
                headers=headers,
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.TimeoutException as exc:
            return False, True, f"timeout ({type(exc).__name__})", None
        except httpx.TransportError as exc:
            return False, True, f"{type(exc).__name__}: {exc}", None
        except Exception as exc:  # noqa: BLE001 - never crash the bot over a helpdesk
            return False, False, f"{type(exc).__name__}: {exc}", None
        if 200 <= response.status_code < 300:
            return True, False, "", None
        retryable = response.status_code == 429 or response.status_code >= 500
        error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        return False, retryable, error, _retry_after(response) if retryable else None

    def _send(self, packet: HandoffPacket, retries: int) -> _Outcome:
        body = packet.to_json().encode()
        headers = self.headers_for(packet, body)
        error, retryable = "", False
        for attempt in range(retries + 1):
            ok, retryable, error, retry_after = self._attempt(body, headers)
            if ok:
                return _Outcome(True, attempt + 1, "", False)
            if not retryable or attempt == retries:
                return _Outcome(False, attempt + 1, error, retryable)
            delay = (
                self.backoff * 2**attempt
                if retry_after is None
                else min(retry_after, self.max_retry_after)
            )
            logger.info(
                "hand-off %s: %s answered %s; retry %d/%d in %.2fs",
                packet.id,
                self._target,
                error.split(":")[0],
                attempt + 1,
                retries,
                delay,
            )
            self._sleep(delay)
        return _Outcome(False, retries + 1, error, retryable)

    def deliver(self, packet: HandoffPacket) -> None:
        """POST the packet, retrying; on final failure keep it as a dead letter.

        Raises:
            ConfigError: the sink has no URL.
        """
        if not self.url:
            raise ConfigError("WebhookSink needs the helpdesk URL (handoff.webhook_url).")
        outcome = self._send(packet, self.retries)
        if outcome.ok:
            logger.info(
                "hand-off %s delivered to %s (priority %s, %d attempt(s))",
                packet.id,
                self._target,
                packet.priority,
                outcome.attempts,
            )
            return
        try:
            self._dead.add_dead_letter(packet, self.url, outcome.error, outcome.attempts)
            kept = "kept as a dead letter"
        except Exception as exc:  # noqa: BLE001 - the bot must go on answering
            kept = f"and could not be kept as a dead letter ({type(exc).__name__})"
        logger.warning(
            "hand-off %s NOT delivered to %s after %d attempt(s) (%s); %s",
            packet.id,
            self._target,
            outcome.attempts,
            outcome.error.split(":")[0],
            kept,
        )

    def redeliver_dead_letters(self) -> int:
        """Re-send dead letters (once each, oldest first) to this sink's URL.

        Delivered ones are deleted; failed ones keep their place with the new error. A
        pass stops at the first connection error, timeout, 429 or 5xx (the helpdesk is
        still down), so it never hammers a struggling server.

        Returns:
            How many were delivered.
        """
        delivered = 0
        for letter in self._dead.dead_letters():
            outcome = self._send(letter.packet, retries=0)
            if outcome.ok:
                self._dead.remove_dead_letter(letter.id)
                delivered += 1
                logger.info("dead letter %s (hand-off %s) delivered", letter.id, letter.packet.id)
                continue
            self._dead.record_dead_letter_failure(letter.id, outcome.error, outcome.attempts)
            if outcome.retryable:
                break
        return delivered


class CallbackSink:
    """Hands packets to a Python function of the embedding application.

    Whatever the function raises is caught, logged (without packet contents) and kept in
    :attr:`dead_letters`; it never reaches the customer's request.

    Example:
        >>> sink = CallbackSink(lambda packet: helpdesk.create_ticket(packet.to_dict()))
        >>> sink.deliver(packet)
        >>> sink.dead_letters   # packets the function failed on
    """

    def __init__(self, fn: Callable[[HandoffPacket], None]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self.dead_letters: list[DeadLetter] = []
        self._lock = threading.Lock()

    def deliver(self, packet: HandoffPacket) -> None:
        """Call the function; record a failure instead of raising it."""
        try:
            self.fn(packet)
        except Exception as exc:  # noqa: BLE001 - an integrator's bug must not crash the bot
            with self._lock:
                self.dead_letters.append(
                    DeadLetter(
                        len(self.dead_letters) + 1,
                        packet,
                        f"callback:{self.name}",
                        f"{type(exc).__name__}: {exc}",
                        1,
                        _now_iso(),
                    )
                )
            logger.warning(
                "hand-off %s: callback %s raised %s; kept in dead_letters",
                packet.id,
                self.name,
                type(exc).__name__,
            )
            return
        logger.info("hand-off %s passed to callback %s", packet.id, self.name)


class BackgroundSink:
    """Delivers through another sink on a worker thread, so the caller never waits.

    Useful for :class:`WebhookSink`, whose retries can take seconds. Packets still
    waiting when the process exits are lost to this sink (the SQLite queue keeps its own
    copy); call :meth:`join` before exiting to let them go.

    Example:
        >>> sink = BackgroundSink(WebhookSink(url, dead_letter=queue))
        >>> sink.deliver(packet)    # returns at once
        >>> sink.join(timeout=30)
    """

    def __init__(self, inner: HandoffSink) -> None:
        self.inner = inner
        self._queue: queue.Queue[HandoffPacket] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="supportbot-handoff", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            packet = self._queue.get()
            try:
                self.inner.deliver(packet)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                logger.error(
                    "hand-off %s: %s raised %s",
                    packet.id,
                    type(self.inner).__name__,
                    type(exc).__name__,
                )
            finally:
                self._queue.task_done()

    def deliver(self, packet: HandoffPacket) -> None:
        """Queue the packet for the worker and return at once."""
        self._queue.put(packet)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued packet was handled; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


def deliver_packet(packet: HandoffPacket, sinks: Sequence[HandoffSink]) -> None:
    """Give ``packet`` to every sink; one sink failing never stops the others or raises."""
    for sink in sinks:
        try:
            sink.deliver(packet)
        except Exception as exc:  # noqa: BLE001 - a hand-off must not break the reply
            logger.error(
                "hand-off %s: %s raised %s", packet.id, type(sink).__name__, type(exc).__name__
            )
