"""Runnables and runners the runner tests start in real worker processes.

Imported by the tests and, by ``tests.runner.runner_targets:NAME``, by the worker processes.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

import bentolite
from bentolite.exceptions import BadInput


class RowModel(bentolite.Runnable):
    """Batchable: returns each input row tagged with the batch size it ran in."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []
        self.seen: list[float] = []

    @bentolite.Runnable.method(batchable=True)
    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.batch_sizes.append(len(x))
        self.seen.extend(x[:, 0].tolist())
        return np.column_stack([x[:, 0], np.full(len(x), len(x), dtype=x.dtype)])

    @bentolite.Runnable.method(batchable=True)
    def pair(self, x: list[Any]) -> tuple[list[Any], list[int]]:
        return [v * 2 for v in x], [len(x)] * len(x)

    @bentolite.Runnable.method(batchable=True)
    def broken(self, x: list[Any]) -> list[Any]:
        return x[:-1]

    @bentolite.Runnable.method
    def single(self, x: Any) -> dict[str, Any]:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.batch_sizes.append(-1)
        return {"x": x, "pid": os.getpid(), "thread": threading.current_thread().name}

    @bentolite.Runnable.method
    def fail(self, kind: str) -> Any:
        if kind == "unpicklable":  # a result that cannot travel back
            return threading.Lock()
        if kind == "bad_input":
            raise BadInput("field x must be positive", field="x")
        if kind == "value":
            raise ValueError("x must be positive")
        if kind == "exit":
            os._exit(17)
        raise KeyError(kind)

    @bentolite.Runnable.method
    def nap(self, seconds: float) -> float:
        self.batch_sizes.append(-2)
        time.sleep(seconds)
        return seconds

    @bentolite.Runnable.method
    def history(self) -> dict[str, list[Any]]:
        return {"batch_sizes": list(self.batch_sizes), "seen": list(self.seen)}

    @bentolite.Runnable.method
    def env(self, names: list[str]) -> dict[str, Any]:
        return {n: os.environ.get(n) for n in names}

    @bentolite.Runnable.method
    def words(self, text: str, delay_s: float = 0.0, fail_at: int | None = None) -> Any:
        """A generator: one item per word (streamed with async_stream)."""
        self.streamed = []
        try:
            for i, word in enumerate(text.split()):
                if i == fail_at:
                    raise ValueError(f"no word {i}")
                time.sleep(delay_s)
                self.streamed.append(word)
                yield {"i": i, "word": word, "thread": threading.current_thread().name}
        finally:
            self.stream_closed = True

    @bentolite.Runnable.method
    async def countdown(self, n: int) -> Any:
        """An async generator."""
        for i in range(n, 0, -1):
            yield i

    @bentolite.Runnable.method
    def stream_state(self) -> dict[str, Any]:
        return {"streamed": list(getattr(self, "streamed", [])),
                "closed": getattr(self, "stream_closed", False)}


class Broken(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self) -> None:
        raise RuntimeError("model weights are missing: /nowhere/weights.bin")

    @bentolite.Runnable.method
    def __call__(self, x: Any) -> Any:
        return x


class Echo(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentolite.Runnable.method
    def __call__(self, x: Any) -> Any:
        return x


class Timed(bentolite.Runnable):
    """A batchable model whose first call takes ``first_s`` and every later one ``later_s``;
    ``calls`` counts the batches it ran."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, first_s: float, later_s: float) -> None:
        self.delays = [first_s]
        self.later_s = later_s
        self.calls = 0

    @bentolite.Runnable.method(batchable=True)
    def predict(self, x: list[Any]) -> list[Any]:
        time.sleep(self.delays.pop() if self.delays else self.later_s)
        self.calls += 1
        return x

    @bentolite.Runnable.method
    def calls_so_far(self) -> int:
        return self.calls


row_runner = bentolite.Runner(RowModel, name="rows")
#: batches of at most 5 rows: coalesced calls must be split to fill them
small_runner = bentolite.Runner(RowModel, name="small", max_batch_size=5)
#: issue 13's cold start: 1 s first call, then 20 ms; 500 ms deadline, batches of 8
cold_runner = bentolite.Runner(Timed, name="cold", max_batch_size=8, max_latency_ms=500,
                               runnable_init_params={"first_s": 1.0, "later_s": 0.02})
#: a model truly too slow for its deadline: every call 800 ms, deadline 500 ms
too_slow_runner = bentolite.Runner(Timed, name="tooslow", max_batch_size=8, max_latency_ms=500,
                                   runnable_init_params={"first_s": 0.8, "later_s": 0.8})
slow_runner = bentolite.Runner(
    RowModel, name="slow", runnable_init_params={"delay_s": 0.3},
    method_configs={"predict": {"max_latency_ms": 150}, "single": {"max_latency_ms": 150}})
#: 5 ms a call: too long to hold the worker's event loop while calls queue
napping_runner = bentolite.Runner(RowModel, name="napping", runnable_init_params={"delay_s": 0.005})
broken_runner = bentolite.Runner(Broken, name="broken")
echo_runner = bentolite.Runner(Echo, name="echo")


class FakeService:
    """Stands in for a Service: anything with a ``runners`` list."""

    runners = [row_runner, small_runner, slow_runner, broken_runner, echo_runner, cold_runner,
               too_slow_runner, napping_runner]


svc = FakeService()
