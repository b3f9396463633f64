"""Prometheus metrics of the API server; multiprocess-aware through PROMETHEUS_MULTIPROC_DIR."""
from __future__ import annotations

import os
from typing import Any

__all__ = ["ApiServerMetrics", "exposition", "observe_runner_call", "MULTIPROC_ENV"]

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
            "API HTTP request duration in seconds", names, buckets=list(buckets) + [float("inf")],
        )
        self.in_progress = _get_or_create(
            Gauge, f"{namespace}_request_in_progress", "Total number of HTTP requests in progress",
            names[:3], multiprocess_mode="livesum",
        )

    def start(self, endpoint: str) -> None:
        self.in_progress.labels(endpoint=endpoint, **self._labels).inc()

    def finish(self, endpoint: str, status: int, duration_s: float) -> None:
        self.in_progress.labels(endpoint=endpoint, **self._labels).dec()
        labels = {"endpoint": endpoint, "http_response_code": str(status), **self._labels}
        self.request_total.labels(**labels).inc()
        self.request_duration.labels(**labels).observe(duration_s)


_created: dict[str, Any] = {}


def _get_or_create(cls: Any, name: str, doc: str, labels: list[str], **kw: Any) -> Any:
    # One app per process in production, but tests and dev reloads build several apps:
    # prometheus_client refuses a second registration of the same name.
    if name not in _created:
        _created[name] = cls(name, doc, labels, **kw)
    return _created[name]


def observe_runner_call(runner_name: str, method_name: str, duration_s: float, ok: bool) -> None:
    """Record one runner call made from this API worker (latency per runner method)."""
    histogram = _get_or_create(
        _histogram_cls(), "bentoml_api_server_runner_call_duration_seconds",
        "Latency of runner calls made by the API server",
        ["runner_name", "method_name", "status"],
    )
    histogram.labels(runner_name=runner_name, method_name=method_name,
                     status="ok" if ok else "error").observe(duration_s)


def _histogram_cls() -> Any:
    from prometheus_client import Histogram

    return Histogram
