"""User metrics (v1 ``bentoml.metrics``): prometheus_client classes, created lazily.

A metric declared at import time of a service module is only built on first use, after the
server has chosen the process's collection mode (``PROMETHEUS_MULTIPROC_DIR`` for several
workers), so it is counted correctly across worker processes.
"""
from __future__ import annotations

import threading
from typing import Any

__all__ = ["Counter", "Gauge", "Histogram", "Summary", "Info", "Enum", "generate_latest",
           "text_string_to_metric_families", "CONTENT_TYPE_LATEST"]

_METRIC_CLASSES = ("Counter", "Gauge", "Histogram", "Summary", "Info", "Enum")
_FUNCTIONS = ("generate_latest", "text_string_to_metric_families")


class _LazyMetric:
    """Holds the constructor arguments; builds the prometheus_client metric on first access."""

    __slots__ = ("_class_name", "_args", "_kwargs", "_metric", "_lock")

    def __init__(self, class_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._class_name = class_name
        self._args = args
        self._kwargs = kwargs
        self._metric: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        with self._lock:
            if self._metric is None:
                import prometheus_client

                self._metric = getattr(prometheus_client, self._class_name)(*self._args, **self._kwargs)
        return self._metric

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metric if self._metric is not None else self._build(), name)

    def __repr__(self) -> str:
        name = self._args[0] if self._args else self._kwargs.get("name", "?")
        return f"bentolite.metrics.{self._class_name}({name!r})"


def _factory(class_name: str) -> Any:
    def make(*args: Any, **kwargs: Any) -> _LazyMetric:
        return _LazyMetric(class_name, args, kwargs)

    make.__name__ = make.__qualname__ = class_name
    make.__doc__ = f"A prometheus_client.{class_name}, built on first use."
    return make


Counter = _factory("Counter")
Gauge = _factory("Gauge")
Histogram = _factory("Histogram")
Summary = _factory("Summary")
Info = _factory("Info")
Enum = _factory("Enum")


def generate_latest(registry: Any = None) -> bytes:
    """Prometheus text of this process's metrics (of all workers in multiprocess mode)."""
    if registry is not None:
        import prometheus_client

        return prometheus_client.generate_latest(registry)
    from .server.metrics import exposition

    return exposition()[0]


def text_string_to_metric_families(text: str) -> Any:
    """Parse Prometheus text into metric families."""
    from prometheus_client.parser import text_string_to_metric_families as parse

    return parse(text)


def __getattr__(name: str) -> Any:
    if name == "CONTENT_TYPE_LATEST":
        from prometheus_client import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST
    raise AttributeError(f"module 'bentolite.metrics' has no attribute {name!r}")
