"""``RayRunnerHandle``: ``runner.<method>.async_run`` through a Ray Serve deployment handle.

The runner's replicas (``RunnerReplica``) answer ``(True, result)`` or ``(False, error
meta)``, so an error crosses the cluster as it crosses the local hop (``error_from_meta``:
type and message kept, bentolite errors with their own HTTP status). Ray's own failures (a
replica that died mid-call, no replica left, back-pressure) become a 503 naming the runner.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator

from ..exceptions import (
    BentoMLException, GatewayTimeout, RemoteException, ServiceUnavailable, StateException,
)
from ..runner.handle import RunnerHandle
from ..runner.protocol import error_from_meta

if TYPE_CHECKING:  # pragma: no cover
    from ray.serve.handle import DeploymentHandle

    from ..runner.runner import Runner, RunnerMethod

__all__ = ["RayRunnerHandle", "connect"]


class RayRunnerHandle(RunnerHandle):
    """Calls runner ``runner`` through ``handle``, its Ray Serve deployment.

    ``Runner.init_client([deployment name], handle_class=RayRunnerHandle.bound_to(handle))``.
    """

    def __init__(self, runner: Runner, handle: DeploymentHandle, *,
                 timeout_s: float | None = None) -> None:
        self._runner = runner
        self._handle = handle
        self._timeout_s = float(timeout_s if timeout_s is not None
                                else runner.config.traffic.timeout)

    @classmethod
    def bound_to(cls, handle: DeploymentHandle) -> Any:
        """A ``handle_class`` for ``Runner.init_client`` that calls ``handle``."""
        def make(runner: Runner, _addresses: list[str], *,
                 timeout_s: float | None = None) -> RayRunnerHandle:
            return cls(runner, handle, timeout_s=timeout_s)

        return make

    def _ray_error(self, exc: BaseException) -> BentoMLException:
        """A failure of Ray itself: the call's replica died, none is left, or back-pressure."""
        from ray.exceptions import RayTaskError

        name = self._runner.name
        if isinstance(exc, RayTaskError):  # raised in the replica outside the call (e.g. pickling)
            cause = exc.cause if exc.cause is not None else exc
            return RemoteException(f"runner {name!r} raised {type(cause).__name__}: {cause}",
                                   remote_type=type(cause).__name__)
        return ServiceUnavailable(
            f"runner {name!r} on Ray: no replica answered ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); retry the request",
            retry_after_s=1)

    def _timeout(self, method: RunnerMethod) -> GatewayTimeout:
        name = self._runner.name
        return GatewayTimeout(
            f"runner {name!r} did not answer {method.name} within {self._timeout_s:g} s; "
            f"raise runners.traffic.timeout (or runners.{name}.traffic.timeout)")

    def _result(self, outcome: tuple[bool, Any]) -> Any:
        ok, value = outcome
        if ok:
            return value
        raise error_from_meta(value, self._runner.name)

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        from ray.exceptions import RayError
        from ray.serve.exceptions import RayServeException

        try:
            outcome = await asyncio.wait_for(
                self._handle.call.remote(method.name, args, kwargs), self._timeout_s)
        except asyncio.TimeoutError:
            raise self._timeout(method) from None
        except (RayError, RayServeException) as exc:
            raise self._ray_error(exc) from None
        return self._result(outcome)

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """From sync code (a sync API function runs in a thread without an event loop)."""
        from ray.exceptions import GetTimeoutError, RayError
        from ray.serve.exceptions import RayServeException

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise StateException(
                f"{self._runner.name}.{method.name}.run() was called inside a running event "
                f"loop, where it would block it; use `await {self._runner.name}."
                f"{method.name}.async_run(...)` instead")
        response = self._handle.call.remote(method.name, args, kwargs)
        try:
            outcome = response.result(timeout_s=self._timeout_s)
        except (TimeoutError, GetTimeoutError):
            response.cancel()
            raise self._timeout(method) from None
        except (RayError, RayServeException) as exc:
            raise self._ray_error(exc) from None
        return self._result(outcome)

    async def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                                  kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        from ray.exceptions import RayError
        from ray.serve.exceptions import RayServeException

        items = self._handle.options(stream=True).stream.remote(method.name, args, kwargs)
        try:
            async for ok, value in items:
                yield self._result((ok, value))
        except (RayError, RayServeException) as exc:
            raise self._ray_error(exc) from None
        finally:
            items.cancel()  # an early stop ends the generator in the replica

    async def is_ready(self, timeout: float) -> bool:
        try:
            return bool(await asyncio.wait_for(self._handle.ping.remote(), timeout))
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False


def connect(runner: Runner, handles: dict[str, DeploymentHandle]) -> None:
    """Give ``runner`` a client that calls its deployment, ``handles[runner.name]``."""
    runner.init_client([f"ray:{runner.name}"],
                       handle_class=RayRunnerHandle.bound_to(handles[runner.name]))
