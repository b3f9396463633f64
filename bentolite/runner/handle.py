"""Runner handles: what ``runner.<method>.run`` talks to (nothing yet, in-process, remote)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator

from ..exceptions import StateException
from .container import batch_size_of, is_batch_value

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Runner, RunnerMethod

__all__ = ["RunnerHandle", "NotInitializedHandle", "LocalRunnerHandle", "batch_items",
           "iterate_in", "on_event_loop"]


def on_event_loop() -> bool:
    """Whether this thread runs an event loop (where a blocking call would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def batch_items(method: RunnerMethod, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Items of a batchable call along its input batch_dim; all batch arguments must agree."""
    dim = method.config.batch_dim[0]
    sizes = {
        name: batch_size_of(value, dim)
        for name, value in [*enumerate(args), *kwargs.items()]
        if is_batch_value(value)
    }
    distinct = set(sizes.values())
    if len(distinct) > 1:
        detail = ", ".join(
            f"{'argument ' + str(k) if isinstance(k, int) else k}={v}" for k, v in sizes.items())
        raise ValueError(
            f"batchable method {method.runner.name}.{method.name} got arguments of different "
            f"batch sizes along batch_dim {dim}: {detail}")
    return distinct.pop() if distinct else 1


class RunnerHandle:
    """The interface of a runner handle."""

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def is_ready(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        pass


class NotInitializedHandle(RunnerHandle):
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def _error(self) -> StateException:
        return StateException(
            f"Runner {self._runner.name!r} is not initialized. Include it in your Service "
            f"(bentolite.Service(..., runners=[{self._runner.name}])) so the server starts it, "
            f"or call {self._runner.name}.init_local() in scripts and tests.")

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        raise self._error()

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        raise self._error()

    def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        raise self._error()

    async def is_ready(self, timeout: float) -> bool:
        return False


class LocalRunnerHandle(RunnerHandle):
    """Runs the Runnable in-process, one call at a time in a dedicated thread; no batching."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"runner-{runner.name}")
        # the Runnable is built in the thread that will call it (thread-local framework state)
        self._instance, self._thread_id = self._executor.submit(
            lambda: (runner.runnable_class(**runner.runnable_init_params),
                     threading.get_ident())).result()

    def _call(self, method: RunnerMethod, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return getattr(self._instance, method.name)(*args, **kwargs)

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        if method.config.batchable:
            batch_items(method, args, kwargs)
        if threading.get_ident() == self._thread_id:
            return self._call(method, args, kwargs)  # a runnable calling its own runner
        return self._executor.submit(self._call, method, args, kwargs).result()

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        if method.config.batchable:
            batch_items(method, args, kwargs)
        future = self._executor.submit(self._call, method, args, kwargs)
        return await asyncio.wrap_future(future)

    async def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                                  kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        items = await asyncio.wrap_future(self._executor.submit(self._call, method, args, kwargs))
        async for item in iterate_in(self._executor, items, method):
            yield item

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def iterate_in(executor: concurrent.futures.Executor, items: Any,
                     method: RunnerMethod) -> AsyncIterator[Any]:
    """Yield what a method's generator yields: an async one as is, a sync one stepped in
    ``executor`` (the model's thread), so the event loop never runs model code."""
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
        return
    if not hasattr(items, "__next__"):
        raise TypeError(
            f"{method.runner.name}.{method.name} returned {type(items).__name__}, not a "
            "generator: async_stream needs a method that yields; use async_run for this one")
    done = object()
    try:
        while True:
            item = await asyncio.wrap_future(executor.submit(next, items, done))
            if item is done:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # ends the generator (its finally blocks) in the model thread
            await asyncio.wrap_future(executor.submit(close))
