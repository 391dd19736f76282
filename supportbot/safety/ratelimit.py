"""A per-conversation rate limit: at most N messages in any sliding window of W seconds.

One customer (or a script pretending to be one) pasting messages in a loop would hold the
single, serialised model and delay every other conversation; a human typing stays far
below the default of 10 messages a minute. The limit is checked before any retrieval or
generation, so a refused message costs nothing. Only accepted messages count: a client
that retries too early is told, each time, exactly how long to wait.

The limiter lives in the process (one :class:`~supportbot.bot.SupportBot` shares it among
all its conversations); several processes each keep their own count.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from supportbot.errors import RateLimited


class RateLimiter:
    """Sliding-window limit per key, thread-safe, with an injectable clock for tests.

    Example:
        >>> limiter = RateLimiter(limit=10, window=60.0)
        >>> limiter.acquire("conversation-1")   # 0.0: accepted; > 0: seconds to wait
        0.0
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``limit`` messages per ``window`` seconds; ``limit`` 0 turns the limit off."""
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def acquire(self, key: str) -> float:
        """Record one message for ``key`` if the limit allows it.

        Returns:
            0.0 when the message is accepted (and counted); otherwise the seconds until
            the oldest counted message leaves the window (the message is not counted).
        """
        if self.limit <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._sweep(now)
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(events[0] + self.window - now, 0.001)
            events.append(now)
            return 0.0

    def check(self, key: str) -> None:
        """Count one message for ``key``, or raise :class:`RateLimited`.

        Raises:
            RateLimited: the conversation sent ``limit`` messages within the window; the
                message says how many seconds to wait.
        """
        wait = self.acquire(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"You're sending messages faster than this chat allows ({self.limit} messages "
                f"per {self.window:g} seconds). Please wait {seconds} second"
                f"{'s' if seconds != 1 else ''} and send your message again.",
                retry_after=wait,
            )

    def _sweep(self, now: float) -> None:
        """Forget conversations idle for a whole window, so memory stays bounded."""
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]
        for key in stale:
            del self._events[key]
