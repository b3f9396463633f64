"""Process-wide log set-up: one stderr handler that writes lines in batches.

A serving process logs one access line per request; a write (a system call into the
supervisor's pipe) per line cost about a fifth of an API worker's CPU under load. The handler
here writes what accumulated at most every ``interval_s`` instead; WARNING and above are
written at once (with the lines queued before them, in order), and ``logging.shutdown``
writes the rest at exit.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TextIO

__all__ = ["BatchedStreamHandler", "configure_logging"]


class _Formatter(logging.Formatter):
    """A ``Formatter`` that renders each second's date and time once, not once per record."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` that writes and flushes once per ``interval_s`` at most."""

    def __init__(self, stream: TextIO | None = None, *, interval_s: float = 0.05,
                 max_pending: int = 1024) -> None:
        super().__init__(stream)
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._pending: list[str] = []
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle() holds self.lock here
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._pending) >= self.max_pending:
            self._write_pending()
        elif len(self._pending) == 1:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_periodically,
                                                 name="log-flusher", daemon=True)
                self._flusher.start()
            self._wake.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _write_pending(self) -> None:
        self._wake.clear()
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the reader went away: nothing left to tell
            pass

    def _flush_periodically(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval_s)
            self.flush()


def configure_logging(fmt: str) -> None:
    """Log INFO (DEBUG with ``BENTOLITE_DEBUG`` set) to stderr in ``fmt``, in batches."""
    handler = BatchedStreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("BENTOLITE_DEBUG") else logging.INFO,
        handlers=[handler],
    )
