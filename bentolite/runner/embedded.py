"""A runner worker inside the calling process: batching and async methods exactly as in a
worker process, without the hop. New-style services run this way in the API workers (the
root service) and in development mode (every service)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator

from ..exceptions import StateException
from .handle import RunnerHandle, on_event_loop
from .worker import RunnerWorker

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Runner, RunnerMethod

__all__ = ["EmbeddedWorkerHandle"]


class EmbeddedWorkerHandle(RunnerHandle):
    """Builds the Runnable now (in its model thread); its batchers start on the event loop
    of the first async call, which every later async call must share."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._worker = RunnerWorker(runner)
        self._worker.load()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> RunnerWorker:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._worker.make_batchers()
        elif loop is not self._loop:
            raise StateException(f"runner {self._runner.name!r} runs in-process on another "
                                 "event loop; call it from the loop that serves requests")
        return self._worker

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        return await self._bind().call(method.name, args, kwargs)

    def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        return self._bind().stream(method.name, args, kwargs)

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        if on_event_loop():
            raise StateException(
                f"{self._runner.name}.{method.name}: a blocking call on the event loop; "
                "use the async form (async_run / to_async)")
        loop = self._loop
        if loop is not None and loop.is_running():  # a server's loop in another thread
            return asyncio.run_coroutine_threadsafe(
                self.async_run_method(method, args, kwargs), loop).result()
        return self._worker.run_now(method.name, args, kwargs)  # a script: no loop at all

    def close(self) -> None:
        self._worker.shutdown_now()
