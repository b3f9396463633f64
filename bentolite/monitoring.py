"""``bentoml.monitor``: log features and predictions as JSON lines for later analysis.

    with bentoml.monitor("iris_classifier") as mon:
        mon.log(sepal_len, name="sepal_len", role="feature", data_type="numerical")
        mon.log(label, name="pred", role="prediction", data_type="categorical")

The default monitor writes, under ``monitoring.options.log_path`` (default ``monitoring``,
relative to the working directory), ``<name>/schema/schema.<worker>.log`` (the columns, once
per process) and ``<name>/data/data.<worker>.log`` (one record per row, with ``timestamp``
and ``request_id``), both rotated daily, as BentoML 1.x did. ``monitoring.enabled: false``
makes every monitor a no-op; ``monitoring.type`` may name a class (``package.module.Class``)
taking ``(name, **options)``.
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime
import importlib
import json
import logging
import logging.handlers
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

from .exceptions import BentoMLConfigException

__all__ = ["monitor", "MonitorBase", "DefaultMonitor", "NoOpMonitor"]

logger = logging.getLogger(__name__)

ROLES = ("feature", "prediction", "target")
DATA_TYPES = ("numerical", "categorical", "numerical_sequence")
#: env var naming this process's worker in the file names (set by the API workers)
WORKER_ID_ENV = "BENTOLITE_API_WORKER_ID"

_monitors: dict[str, MonitorBase] = {}
_monitors_lock = threading.Lock()


class MonitorBase:
    """Collects the columns logged inside one ``with`` block and exports them as rows."""

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = options
        # each request (asyncio task or API thread) fills its own record
        self._record: contextvars.ContextVar[dict[str, tuple[str, str, list[Any]]] | None] = (
            contextvars.ContextVar(f"bentolite_monitor_{name}", default=None))

    def start_record(self) -> None:
        self._record.set({})

    def stop_record(self) -> None:
        columns = self._record.get()
        self._record.set(None)
        if not columns:
            return
        lengths = {len(values) for _, _, values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"monitor {self.name!r}: logged columns have different numbers of "
                             f"rows: { {k: len(v[2]) for k, v in columns.items()} }")
        self.export(columns)

    def log(self, data: Any, name: str, role: str, data_type: str) -> None:
        """Log one value as column ``name`` of this record."""
        self._add(name, role, data_type, [data])

    def log_batch(self, data_batch: Iterable[Any], name: str, role: str, data_type: str) -> None:
        """Log one value per row as column ``name`` (every column of a record: same length)."""
        self._add(name, role, data_type, list(data_batch))

    def log_table(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("log_table is not implemented (as in BentoML 1.x)")

    def _add(self, name: str, role: str, data_type: str, values: list[Any]) -> None:
        columns = self._record.get()
        if columns is None:
            raise RuntimeError(f"monitor {self.name!r}: log inside 'with bentoml.monitor(...)'")
        if name in columns:
            raise ValueError(f"monitor {self.name!r}: column {name!r} is logged twice")
        if role not in ROLES:
            logger.warning("monitor %r: role %r of column %r is not one of %s",
                           self.name, role, name, ROLES)
        if data_type not in DATA_TYPES:
            logger.warning("monitor %r: data type %r of column %r is not one of %s",
                           self.name, data_type, name, DATA_TYPES)
        columns[name] = (role, data_type, values)

    def export(self, columns: dict[str, tuple[str, str, list[Any]]]) -> None:
        """Write one record's columns (name -> (role, type, values)) somewhere."""
        raise NotImplementedError

    def close(self) -> None:
        """Release files or connections (at exit)."""


class NoOpMonitor(MonitorBase):
    """What every monitor is with ``monitoring.enabled: false``."""

    def export(self, columns: dict[str, tuple[str, str, list[Any]]]) -> None:
        pass


class DefaultMonitor(MonitorBase):
    """JSON lines: a schema file and a data file per worker, rotated daily."""

    def __init__(self, name: str, log_path: str | os.PathLike[str] = "monitoring",
                 **options: Any) -> None:
        super().__init__(name, **options)
        self.log_path = Path(log_path)
        self._schema_written = False
        self._lock = threading.Lock()
        self._data: logging.Handler | None = None

    def _handler(self, kind: str) -> logging.Handler:
        worker = os.environ.get(WORKER_ID_ENV, "0")
        folder = self.log_path / self.name / kind
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.TimedRotatingFileHandler(
            folder / f"{kind}.{worker}.log", when="midnight", encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(message)s"))
        return handler

    def export(self, columns: dict[str, tuple[str, str, list[Any]]]) -> None:
        from .services.context import current_request_id

        with self._lock:
            if not self._schema_written:
                schema = self._handler("schema")
                _emit(schema, {
                    "meta_data": {"bento_name": os.environ.get("BENTO_NAME", ""),
                                  "bento_version": os.environ.get("BENTO_VERSION", "")},
                    "columns": [{"name": n, "role": r, "type": t}
                                for n, (r, t, _) in columns.items()]})
                schema.close()
                self._schema_written = True
                self._data = self._handler("data")
            assert self._data is not None
            stamp = datetime.datetime.now().isoformat()
            request_id = current_request_id()
            rows = len(next(iter(columns.values()))[2])
            for i in range(rows):
                record = {name: values[i] for name, (_, _, values) in columns.items()}
                record["timestamp"] = stamp
                record["request_id"] = request_id
                _emit(self._data, record)


    def close(self) -> None:
        with self._lock:
            if self._data is not None:
                self._data.close()
                self._data = None
            self._schema_written = False  # a monitor used again writes its schema again


def _close_all() -> None:
    with _monitors_lock:
        for mon in _monitors.values():
            mon.close()


atexit.register(_close_all)


def _emit(handler: logging.Handler, record: dict[str, Any]) -> None:
    handler.emit(logging.makeLogRecord({"msg": json.dumps(record, default=_jsonable)}))
    handler.flush()


def _jsonable(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    return tolist() if callable(tolist) else str(value)


def _make(name: str, monitor_class: Any, monitor_options: dict[str, Any] | None) -> MonitorBase:
    from .config import get_config

    config = get_config().monitoring
    if not config.enabled:
        return NoOpMonitor(name)
    options = {**(config.options or {}), **(monitor_options or {})}
    options = {k: v for k, v in options.items() if v is not None}
    cls = monitor_class or config.type
    if cls == "default":
        options.pop("log_config_file", None)  # python-json-logger's config: not used here
        return DefaultMonitor(name, **options)
    if isinstance(cls, str):
        module_name, _, attr = cls.rpartition(".")
        if not module_name:
            raise BentoMLConfigException(
                f"monitoring.type: {cls!r} is neither 'default' nor a 'module.Class' path")
        cls = getattr(importlib.import_module(module_name), attr)
    return cls(name, **options)


@contextlib.contextmanager
def monitor(name: str, monitor_class: Any = None,
            monitor_options: dict[str, Any] | None = None) -> Iterator[MonitorBase]:
    """The monitor ``name`` (one per process), collecting one record for this block."""
    with _monitors_lock:
        mon = _monitors.get(name)
        if mon is None:
            mon = _monitors[name] = _make(name, monitor_class, monitor_options)
    mon.start_record()
    try:
        yield mon
    finally:
        mon.stop_record()
