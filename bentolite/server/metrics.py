"""Prometheus metrics of the API server; multiprocess-aware through PROMETHEUS_MULTIPROC_DIR."""
from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["ApiServerMetrics", "exposition", "instrument_runner", "MULTIPROC_ENV"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every metric of this process, or of all workers in multiproc mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class ApiServerMetrics:
    """``<ns>_request_total``, ``_request_duration_seconds`` and ``_request_in_progress``."""

    def __init__(self, namespace: str, buckets: list[float], service_name: str,
                 service_version: str | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self._labels = {"service_name": service_name,
                        "service_version": service_version or "not available"}
        names = ["endpoint", "service_name", "service_version", "http_response_code"]
        self.request_total = _get_or_create(
            Counter, f"{namespace}_request", "Total number of HTTP requests", names
        )
        self.request_duration = _get_or_create(
            Histogram, f"{namespace}_request_duration_seconds",
            "API HTTP request duration in seconds", names, buckets=list(buckets),
        )
        self.in_progress = _get_or_create(
            Gauge, f"{namespace}_request_in_progress", "Total number of HTTP requests in progress",
            names[:3], multiprocess_mode="livesum",
        )
        self._gauges: dict[str, Any] = {}
        self._finished: dict[tuple[str, int], tuple[Any, Any]] = {}

    def start(self, endpoint: str) -> None:
        gauge = self._gauges.get(endpoint)
        if gauge is None:
            gauge = self._gauges[endpoint] = self.in_progress.labels(endpoint=endpoint, **self._labels)
        gauge.inc()

    def finish(self, endpoint: str, status: int, duration_s: float) -> None:
        self._gauges[endpoint].dec()
        children = self._finished.get((endpoint, status))
        if children is None:  # label lookups cost more than the update: cache the children
            labels = {"endpoint": endpoint, "http_response_code": str(status), **self._labels}
            children = self._finished[(endpoint, status)] = (
                self.request_total.labels(**labels), self.request_duration.labels(**labels))
        children[0].inc()
        children[1].observe(duration_s)


_created: dict[str, Any] = {}


def _get_or_create(cls: Any, name: str, doc: str, labels: list[str], **kw: Any) -> Any:
    # One app per process in production, but tests and dev reloads build several apps:
    # prometheus_client refuses a second registration of the same name.
    if name not in _created:
        _created[name] = cls(name, doc, labels, **kw)
    return _created[name]


class _TimedRunnerHandle:
    """Wraps a runner handle to time each call from this API worker (any handle kind)."""

    __slots__ = ("_inner", "_runner_name", "_histogram", "_children")

    def __init__(self, inner: Any, runner_name: str, histogram: Any) -> None:
        self._inner = inner
        self._runner_name = runner_name
        self._histogram = histogram
        self._children: dict[tuple[str, str], Any] = {}

    def _observe(self, method: Any, start: float, status: str) -> None:
        elapsed = time.perf_counter() - start
        child = self._children.get((method.name, status))
        if child is None:
            child = self._children[(method.name, status)] = self._histogram.labels(
                runner_name=self._runner_name, method_name=method.name, status=status)
        child.observe(elapsed)

    def run_method(self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        start, status = time.perf_counter(), "error"
        try:
            result = self._inner.run_method(method, args, kwargs)
            status = "ok"
            return result
        finally:
            self._observe(method, start, status)

    async def async_run_method(self, method: Any, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        start, status = time.perf_counter(), "error"
        try:
            result = await self._inner.async_run_method(method, args, kwargs)
            status = "ok"
            return result
        finally:
            self._observe(method, start, status)

    def __getattr__(self, name: str) -> Any:  # is_ready, close, ...
        return getattr(self._inner, name)


def instrument_runner(runner: Any, namespace: str) -> None:
    """Time every call this process makes to ``runner`` (``<ns>_runner_call_duration_seconds``)."""
    handle = getattr(runner, "_runner_handle", None)
    if handle is None or isinstance(handle, _TimedRunnerHandle):
        return
    histogram = _get_or_create(
        _histogram_cls(), f"{namespace}_runner_call_duration_seconds",
        "Latency of runner calls made by the API server, per runner method and outcome",
        ["runner_name", "method_name", "status"],
    )
    runner._runner_handle = _TimedRunnerHandle(handle, runner.name, histogram)


def _histogram_cls() -> Any:
    from prometheus_client import Histogram

    return Histogram
