"""The batched log handler: nothing lost, order kept, warnings at once, the rest soon."""
from __future__ import annotations

import io
import logging
import subprocess
import sys
import time

import pytest

from bentolite.logs import BatchedStreamHandler


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.logs.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def test_info_lines_are_written_together_after_the_interval() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, interval_s=0.2)
    log = _logger(handler)
    for i in range(3):
        log.info("line %d", i)
    assert stream.getvalue() == ""  # held back: one write for the lot
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"


def test_a_warning_is_written_at_once_after_what_came_before() -> None:
    stream = io.StringIO()
    log = _logger(BatchedStreamHandler(stream, interval_s=60))
    log.info("first")
    log.warning("second")
    assert stream.getvalue() == "first\nsecond\n"
    log.info("third")
    assert stream.getvalue() == "first\nsecond\n"


def test_a_full_buffer_is_written_at_once() -> None:
    stream = io.StringIO()
    log = _logger(BatchedStreamHandler(stream, interval_s=60, max_pending=4))
    for i in range(4):
        log.info("%d", i)
    assert stream.getvalue() == "0\n1\n2\n3\n"


def test_lines_pending_at_exit_are_not_lost() -> None:
    code = (
        "import logging\n"
        "from bentolite.logs import configure_logging\n"
        "configure_logging('%(levelname)s %(message)s')\n"
        "for i in range(500): logging.getLogger('x').info('line %d', i)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stderr.splitlines() == [f"INFO line {i}" for i in range(500)]


def test_timestamps_match_the_standard_formatter() -> None:
    from bentolite.logs import _Formatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert _Formatter("%(asctime)s %(message)s").format(record) == \
        logging.Formatter("%(asctime)s %(message)s").format(record)


def test_info_fast_writes_the_line_logging_would() -> None:
    code = (
        "import logging\n"
        "from bentolite.logs import configure_logging, info_fast\n"
        "configure_logging('%(asctime)s %(levelname)s [api:0] %(name)s: %(message)s')\n"
        "log = logging.getLogger('bentoml.access')\n"
        "info_fast(log, 'fast 50%')\n"
        "log.info('slow %s', '50%')\n"
        "class Drop(logging.Filter):\n"
        "    def filter(self, record): return 'secret' not in record.getMessage()\n"
        "log.addFilter(Drop())\n"
        "info_fast(log, 'a secret line')  # a filter is set: it must see the record\n"
        "log.removeFilter(log.filters[0])\n"
        "logging.getLogger().setLevel(logging.WARNING)\n"
        "info_fast(log, 'below the level')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    fast, slow = (line.split(" ", 2) for line in lines)
    assert fast[2] == "INFO [api:0] bentoml.access: fast 50%"
    assert slow[2] == "INFO [api:0] bentoml.access: slow 50%"
    assert fast[0] == slow[0] and len(fast[1]) == len(slow[1]) == len("12:00:00,000")


def test_server_logger_rate_limits_malformed_requests(caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

    from bentolite.logs import ServerLogger

    now = [0.0]
    log = ServerLogger(logging.getLogger("test.server"), burst=2, period_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.server"):
        for _ in range(5):
            log.exception("Error handling request from %s", "10.1.2.3",
                          exc_info=LineTooLong("header", "8190", "100000"))
        now[0] = 61.0
        log.exception("Error handling request from %s", "10.1.2.4",
                      exc_info=BadHttpMessage("bad request line"))
        try:
            raise RuntimeError("a real bug")
        except RuntimeError:
            log.exception("Error handling request from %s", "10.1.2.5")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["WARNING", "WARNING", "WARNING", "WARNING", "ERROR"]
    assert lines[0][1].startswith("malformed request from 10.1.2.3: Got more than 8190 bytes")
    assert lines[2][1] == "3 more malformed requests were not logged"
    assert "bad request line" in lines[3][1] and caplog.records[4].exc_info is not None
