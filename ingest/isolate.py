"""Parsing where it can be stopped: one worker process, a time limit per file.

A hostile or damaged file (a PDF whose streams loop, a parser bug that never returns,
a C extension that crashes) must cost the run one file, not the run. So loading and
chunking happen in a child process: the parent waits at most ``ingest.file_timeout``
seconds for each file's chunks, kills the worker when time is up (or notices that it
died), reports the file like any rejected one and goes on with a fresh worker.

The worker is a fresh interpreter (``python -c``, not ``fork``: it must not inherit the
model's or the store's threads, nor re-run the caller's script as ``multiprocessing``
would), started once per run and lazily, so a run with nothing to parse starts none.
Only the file's path goes in (over a pipe) and its chunks come out.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ingest.chunk import chunk_document
from ingest.load import load_document
from supportbot.config import IngestSettings
from supportbot.errors import FileRejected, IngestError
from supportbot.types import Chunk

__all__ = ["Parsed", "ParseWorker", "parse_file"]

# Log lines of the parsers that become the file's warnings instead of stderr noise.
_PARSER_LOGGERS = ("pypdf",)
_MAX_LOG_WARNINGS = 5
_READY_TIMEOUT = 120.0  # a cold start on a busy machine can take seconds


@dataclass
class Parsed:
    """A file's chunks and the loader's warnings."""

    chunks: list[Chunk]
    warnings: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if message and message not in self.messages:
            self.messages.append(message)


def parse_file(path: Path, source: str, settings: IngestSettings) -> Parsed:
    """Load and chunk one file (in whichever process calls it).

    Raises:
        FileRejected: the file cannot be ingested; also for an unexpected error in
            loading or chunking, whose reason says it is a bug to report.
    """
    collect = _Collect()
    loggers = [logging.getLogger(name) for name in _PARSER_LOGGERS]
    saved = [(lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(collect)
        lg.propagate = False
        lg.setLevel(logging.WARNING)
    try:
        document = load_document(path, settings)
        chunks = chunk_document(document, source, settings.chunk_size, settings.chunk_overlap)
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the run
        raise FileRejected(
            path,
            f"could not be processed ({type(exc).__name__}: {exc})",
            "This is a supportbot bug: please report it with the file.",
        ) from exc
    finally:
        for lg, (propagate, level) in zip(loggers, saved, strict=True):
            lg.removeHandler(collect)
            lg.propagate, lg.level = propagate, level
    warnings = list(document.warnings)
    logged = collect.messages
    if logged:
        extra = len(logged) - _MAX_LOG_WARNINGS
        more = f" (+{extra} more)" if extra > 0 else ""
        warnings.append("parser: " + "; ".join(logged[:_MAX_LOG_WARNINGS]) + more)
    return Parsed(chunks, warnings)


def _serve(inbox: Connection, outbox: Connection) -> None:
    """The worker's loop: a (path, source, settings) in, a tagged result out."""
    # Ctrl-C reaches the whole process group; the parent decides when the worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    outbox.send(("ready", None))
    while True:
        try:
            job = inbox.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if job is None:
            return
        path, source, settings = job
        try:
            reply: tuple[str, Any] = ("ok", parse_file(path, source, settings))
        except FileRejected as exc:
            reply = ("rejected", (exc.reason, exc.fix))
        except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError: report, keep serving
            reply = ("rejected", (f"could not be processed ({type(exc).__name__})", ""))
        try:
            outbox.send(reply)
        except OSError:
            return  # the parent is gone


def _die_with_parent() -> None:
    """Have the kernel kill this worker when the ingest process dies (Linux).

    Even after a ``kill -9`` of the run, a file that never finishes parsing cannot
    keep a worker alive.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main() -> None:
    """Entry point of the worker process: its two pipe descriptors are in argv."""
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )


class ParseWorker:
    """Parses files in a child process with a per-file time limit.

    Example:
        >>> with ParseWorker(timeout=60) as worker:
        ...     parsed = worker.parse(Path("kb/docs/faq.yaml"), "faq.yaml", IngestSettings())
        >>> len(parsed.chunks) > 0
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._inbox: Connection | None = None  # the worker's replies
        self._outbox: Connection | None = None  # jobs for the worker

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> tuple[Connection, Connection]:
        job_r, job_w = os.pipe()
        reply_r, reply_w = os.pipe()
        # The worker imports what this process imports, from the same places.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ingest.isolate import _worker_main; _worker_main()",
                    str(job_r),
                    str(reply_w),
                ],
                pass_fds=(job_r, reply_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(job_r)
            os.close(reply_w)
        inbox, outbox = Connection(reply_r, writable=False), Connection(job_w, readable=False)
        self._proc, self._inbox, self._outbox = proc, inbox, outbox
        try:
            if inbox.poll(_READY_TIMEOUT):
                inbox.recv()
                return inbox, outbox
        except (OSError, EOFError):
            pass
        self._stop()
        raise IngestError(
            f"The parsing worker ({sys.executable}) did not start. Check that supportbot is "
            "installed for this interpreter, or set SUPPORTBOT_INGEST__FILE_TIMEOUT=0 to parse "
            "in the ingest process."
        )

    def _stop(self) -> int | None:
        """Kill the worker; its exit code (negative: killed by that signal)."""
        code = None
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                self._proc.kill()
                self._proc.wait(10)
        for conn in (self._inbox, self._outbox):
            if conn is not None:
                conn.close()
        self._proc = self._inbox = self._outbox = None
        return code

    def parse(self, path: Path, source: str, settings: IngestSettings) -> Parsed:
        """Load and chunk ``path`` in the worker, waiting at most ``timeout`` seconds.

        Raises:
            FileRejected: the file was rejected, took too long (the worker is then
                replaced), or made the worker die.
            IngestError: the worker cannot be started at all.
        """
        if self._inbox is None or self._outbox is None:
            inbox, outbox = self._start()
        else:
            inbox, outbox = self._inbox, self._outbox
        try:
            outbox.send((path, source, settings))
            ready = inbox.poll(self.timeout)
        except (OSError, EOFError):
            ready = True  # the worker is gone; recv below says so
        if not ready:
            self._stop()
            self.restarts += 1
            raise FileRejected(
                path,
                f"took longer than {self.timeout:g} s to parse and was stopped "
                "(a damaged or hostile file?)",
                "Check or re-export the file, or raise SUPPORTBOT_INGEST__FILE_TIMEOUT.",
            )
        try:
            tag, value = inbox.recv()
        except (OSError, EOFError) as exc:
            if self._proc is not None:
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            code = self._stop()
            self.restarts += 1
            raise FileRejected(
                path,
                f"made the parser crash (exit code {code})",
                "Check or re-export the file; if it opens elsewhere, report it as a bug.",
            ) from exc
        if tag == "rejected":
            reason, fix = value
            raise FileRejected(path, reason, fix)
        assert isinstance(value, Parsed)
        return value

    def close(self) -> None:
        """Stop the worker (if one was started)."""
        if self._outbox is not None and self._proc is not None:
            try:
                self._outbox.send(None)
                self._proc.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop()
