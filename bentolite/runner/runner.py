"""``Runner``: a Runnable class plus its scheduling and batching settings, and a call handle."""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, AsyncIterator

import attrs

from ..config import get_config
from ..tag import normalize_name
from .batching import BatchLimits
from .handle import LocalRunnerHandle, NotInitializedHandle, RunnerHandle
from .runnable import Runnable, RunnableMethodConfig
from .strategy import DefaultStrategy, Strategy, runner_resources_beside

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RunnerConfig
    from ..models.model import Model

__all__ = ["Runner", "RunnerMethod"]

logger = logging.getLogger(__name__)

_METHOD_SETTINGS = ("max_batch_size", "max_latency_ms", "max_wait_ms", "max_queue_size")


def _first_not_none(*values: Any) -> Any:
    return next(v for v in values if v is not None)


class _DefaultMethodCall:
    """``runner.run`` and ``runner.async_run``; not a data descriptor, so a runner method of
    the same name, set on the instance, takes its place."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, runner: Runner | None, owner: type | None = None) -> Any:
        if runner is None:
            return self
        return getattr(runner._default_method(), self.name)


class RunnerMethod:
    """``runner.<method>``: ``.run(...)``, ``await .async_run(...)`` or ``.async_stream(...)``."""

    __slots__ = ("runner", "name", "config", "limits")

    def __init__(self, runner: Runner, name: str, config: RunnableMethodConfig,
                 limits: BatchLimits) -> None:
        self.runner = runner
        self.name = name
        self.config = config
        self.limits = limits

    @property
    def max_batch_size(self) -> int:
        return self.limits.max_batch_size

    @property
    def max_latency_ms(self) -> float:
        return self.limits.max_latency_ms

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method and wait for its result (from sync code)."""
        return self.runner._runner_handle.run_method(self, args, kwargs)

    async def async_run(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method from async code."""
        return await self.runner._runner_handle.async_run_method(self, args, kwargs)

    def async_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """Iterate, from async code, over what a generator method yields (never batched)."""
        return self.runner._runner_handle.async_stream_method(self, args, kwargs)

    def __repr__(self) -> str:
        return f"RunnerMethod({self.runner.name}.{self.name}, {self.limits})"


class Runner:
    """Runs a Runnable in its own worker processes (or in-process via ``init_local``).

    Args mirror BentoML 1.x: ``runnable_class``, ``runnable_init_params`` (kwargs of its
    constructor), ``name`` (default: the class name, lower-cased), ``scheduling_strategy``,
    ``models``, ``max_batch_size`` / ``max_latency_ms`` (override the config for every method),
    ``method_configs`` (``{"predict": {"max_batch_size": 32, ...}}``) and ``embedded``.
    """

    def __init__(
        self,
        runnable_class: type[Runnable],
        *,
        runnable_init_params: dict[str, Any] | None = None,
        name: str | None = None,
        scheduling_strategy: type[Strategy] = DefaultStrategy,
        models: list[Model] | None = None,
        max_batch_size: int | None = None,
        max_latency_ms: int | None = None,
        method_configs: dict[str, dict[str, Any]] | None = None,
        embedded: bool = False,
    ) -> None:
        if not (isinstance(runnable_class, type) and issubclass(runnable_class, Runnable)):
            raise TypeError(f"Runner needs a Runnable subclass, got {runnable_class!r}")
        if name is None:
            name = runnable_class.__name__.lower()
            # once per deployment: the supervisor's own load of the service has said it, so
            # the workers it started (which carry its PID) do not repeat it
            from .process import PARENT_PID_ENV

            level = logging.DEBUG if os.environ.get(PARENT_PID_ENV) else logging.WARNING
            logger.log(level,
                       "Runner name not given; using %r (from the Runnable class). Pass name= "
                       "to choose a stable name for config keys and metrics.", name)
        try:
            name = normalize_name(name, "runner name")
        except ValueError as e:
            raise ValueError(f"Runner name {name!r} is not valid: {e}") from None
        methods = runnable_class.methods()
        if not methods:
            raise ValueError(f"Runnable class {runnable_class.__name__!r} has no methods!")
        method_configs = dict(method_configs or {})
        unknown = sorted(set(method_configs) - set(methods))
        if unknown:
            raise ValueError(
                f"method_configs names {unknown}, which {runnable_class.__name__} does not have "
                f"(its methods: {sorted(methods)})")
        if models is not None and not isinstance(models, list):
            raise TypeError("models must be a list of Model")

        self.name = name
        self.runnable_class = runnable_class
        self.runnable_init_params = dict(runnable_init_params or {})
        self.models = list(models or [])
        self.scheduling_strategy = scheduling_strategy
        self.embedded = embedded
        config = self.config
        self.resource_config = config.resources
        self.workers_per_resource = config.workers_per_resource

        self.runner_methods: list[RunnerMethod] = []
        for method_name, method in methods.items():
            overrides = dict(method_configs.get(method_name) or {})
            bad = sorted(set(overrides) - set(_METHOD_SETTINGS))
            if bad:
                raise ValueError(
                    f"method_configs[{method_name!r}] has unknown keys {bad}; "
                    f"known: {list(_METHOD_SETTINGS)}")
            batching = config.batching
            # effective copy: disabling batching never mutates the shared Runnable class
            method_config = attrs.evolve(
                method.config, batchable=method.config.batchable and batching.enabled)
            limits = BatchLimits(
                batchable=method_config.batchable,
                max_batch_size=int(_first_not_none(
                    overrides.get("max_batch_size"), max_batch_size, batching.max_batch_size)),
                max_latency_ms=float(_first_not_none(
                    overrides.get("max_latency_ms"), max_latency_ms, batching.max_latency_ms)),
                max_wait_ms=float(_first_not_none(overrides.get("max_wait_ms"),
                                                  batching.max_wait_ms)),
                max_queue_size=int(_first_not_none(overrides.get("max_queue_size"),
                                                   batching.max_queue_size)),
            )
            runner_method = RunnerMethod(self, method_name, method_config, limits)
            self.runner_methods.append(runner_method)
            setattr(self, method_name, runner_method)

        self._runner_handle: RunnerHandle = NotInitializedHandle(self)

    # --- settings -------------------------------------------------------------------

    @property
    def config(self) -> RunnerConfig:
        """This runner's effective configuration (``runners.*`` merged with ``runners.<name>``)."""
        return get_config().runner(self.name)

    @property
    def scheduled_worker_count(self) -> int:
        return len(self.scheduled_workers())

    @property
    def scheduled_worker_env_map(self) -> dict[int, dict[str, str]]:
        return self.scheduled_workers()

    def scheduled_workers(self, reserved_cpus: float = 0) -> dict[int, dict[str, str]]:
        """Worker index -> environment, from the strategy and the ``resources`` config.

        ``reserved_cpus``: cores the API workers on this host use, left out of a
        multi-threaded runnable's unset ``resources`` config (see ``runner_resources_beside``).
        """
        strategy, runnable = self.scheduling_strategy, self.runnable_class
        resources = runner_resources_beside(self.resource_config, reserved_cpus, runnable)
        count = strategy.get_worker_count(runnable, resources, self.workers_per_resource)
        return {index: strategy.get_worker_env(runnable, resources, self.workers_per_resource,
                                               index)
                for index in range(count)}

    # --- default method -------------------------------------------------------------

    def _default_method(self) -> RunnerMethod:
        if len(self.runner_methods) == 1:
            return self.runner_methods[0]
        for method in self.runner_methods:
            if method.name == "__call__":
                return method
        names = [m.name for m in self.runner_methods]
        raise AttributeError(
            f"runner {self.name!r} has several methods {names} and none is __call__, so it has "
            f"no default run(); call runner.<method>.run(...) e.g. runner.{names[0]}.run(...)")

    #: The default method's ``run``/``async_run`` (the only method, or ``__call__``). A method
    #: named ``run`` (bentolite.onnx's) replaces the shortcut: ``runner.run.run(...)``, as in BentoML.
    run = _DefaultMethodCall()
    async_run = _DefaultMethodCall()

    # --- lifecycle ------------------------------------------------------------------

    def _check_uninitialised(self) -> None:
        if not isinstance(self._runner_handle, NotInitializedHandle):
            from ..exceptions import StateException

            raise StateException(f"Runner {self.name!r} is already initialized")

    def init_local(self, quiet: bool = False) -> None:
        """Run the Runnable in this process (scripts, tests and development mode)."""
        self._check_uninitialised()
        if not quiet:
            logger.warning("Runner %r runs in-process: for debugging and testing only", self.name)
        self._runner_handle = LocalRunnerHandle(self)

    def init_client(self, addresses: list[str] | None = None, *,
                    handle_class: type[RunnerHandle] | None = None,
                    timeout_s: float | None = None) -> None:
        """Attach a client handle that calls this runner's worker processes.

        Args:
            addresses: the workers' Unix socket paths (``RunnerWorkerGroup.addresses``), or
                ``tcp://host:port`` of runner servers (HTTP, with ``runners.auth_token``).
            handle_class: a custom handle class taking ``(runner, addresses, timeout_s=...)``.
            timeout_s: per-call timeout (default ``runners.traffic.timeout``).
        """
        self._check_uninitialised()
        if not addresses:
            raise ValueError(f"init_client for runner {self.name!r} needs worker addresses")
        if handle_class is None:
            from .remote import handle_class_for

            handle_class = handle_class_for(list(addresses))
        self._runner_handle = handle_class(  # type: ignore[call-arg]
            self, list(addresses), timeout_s=timeout_s)

    def destroy(self) -> None:
        """Release the handle (threads, connections); the runner can be initialised again."""
        handle, self._runner_handle = self._runner_handle, NotInitializedHandle(self)
        handle.close()

    async def runner_handle_is_ready(self, timeout: float = 1.0) -> bool:
        """Whether calls can be served now (a remote handle pings a worker)."""
        return await self._runner_handle.is_ready(timeout)

    def __repr__(self) -> str:
        return f"Runner(name={self.name!r}, runnable={self.runnable_class.__name__})"
