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
import re
import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["BatchedStreamHandler", "ServerLogger", "configure_logging", "info_fast"]

_DIRECT_FIELDS = {"asctime", "levelname", "name", "message"}


class _Formatter(logging.Formatter):
    """A ``Formatter`` that renders each second's date and time once, not once per record."""

    _second = -1
    _stamp = ""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        #: the format needs nothing but these, so ``format_info`` can fill it without a record
        self.direct = set(re.findall(r"%\((\w+)\)", fmt)) <= _DIRECT_FIELDS

    def format_info(self, name: str, message: str) -> str:
        """The line ``format`` would give an INFO record of logger ``name`` made now."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        asctime = self.default_msec_format % (self._stamp, (now - second) * 1000)
        return self._fmt % {"asctime": asctime, "levelname": "INFO", "name": name,  # type: ignore[operator]
                            "message": message}

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
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
            return
        self._add(line, record.levelno >= logging.WARNING)

    def add_line(self, line: str) -> None:
        """Queue an already formatted INFO line."""
        with self.lock:  # type: ignore[union-attr]
            self._add(line, False)

    def _add(self, line: str, urgent: bool) -> None:
        self._pending.append(line + self.terminator)
        if urgent or len(self._pending) >= self.max_pending:
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


def info_fast(logger: logging.Logger, message: str) -> None:
    """``logger.info(message)``: the same line, at a fraction of the cost where possible.

    When nothing but bentolite's own root handler would see the record (no filters, no other
    handlers, default propagation), the line is formatted and queued without building a
    ``LogRecord`` or looking up the caller's frame: a quarter of a busy API worker's
    per-request logging cost. Any other set-up gets an ordinary ``logger.info``.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _only_batched_handler(logger)
    if handler is None:
        logger.info("%s", message)
        return
    handler.add_line(handler.formatter.format_info(logger.name, message))  # type: ignore[union-attr]


def _only_batched_handler(logger: logging.Logger) -> BatchedStreamHandler | None:
    node: Any = logger
    while node is not None:
        if node.filters or (node.handlers and node.parent is not None) or not node.propagate:
            return None
        if node.parent is None:  # the root
            break
        node = node.parent
    handlers = node.handlers if node is not None else []
    if len(handlers) != 1 or type(handlers[0]) is not BatchedStreamHandler:
        return None
    handler = handlers[0]
    formatter = handler.formatter
    if (handler.filters or handler.level > logging.INFO or type(formatter) is not _Formatter
            or not formatter.direct):
        return None
    return handler


class ServerLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, with requests it cannot parse (a 100 kB header or URL, a
    garbage request line: answered 400 by aiohttp) logged as one WARNING line naming the
    client and the reason, at most ``burst`` lines per ``period_s`` (then a count of those
    left out), instead of an ERROR with a traceback each."""

    def __init__(self, logger: logging.Logger, burst: int = 10, period_s: float = 60.0,
                 clock: Any = time.monotonic) -> None:
        super().__init__(logger, {})
        self._burst, self._period_s, self._clock = burst, period_s, clock
        self._window_start = -period_s
        self._logged = self._suppressed = 0

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if not isinstance(error, HttpProcessingError):
            super().exception(msg, *args, exc_info=exc_info, **kwargs)
            return
        now = self._clock()
        if now - self._window_start >= self._period_s:
            if self._suppressed:
                self.logger.warning("%d more malformed requests were not logged",
                                    self._suppressed)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged >= self._burst:
            self._suppressed += 1
            return
        self._logged += 1
        client = args[0] if args else "unknown client"
        reason = (getattr(error, "message", "") or type(error).__name__).splitlines()[0]
        self.logger.warning("malformed request from %s: %s (%s); answered %s", client,
                            reason[:200], type(error).__name__, getattr(error, "code", 400))
