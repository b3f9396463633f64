"""New-style services (BentoML 1.2+): ``@bentolite.service`` classes and their ``@bentolite.api``
methods, checked when the class is defined.

A :class:`ServiceDefinition` only describes a service. It runs on the runner engine
(``services/engine.py``): a dependency service is a runner with its own worker processes,
the root service runs in the API workers.
"""
from __future__ import annotations

import inspect
import logging
import os
from typing import Any, Callable, Generic, Iterator, TypeVar, overload

from ..exceptions import BentoMLException, InvalidArgument

__all__ = [
    "APIMethod", "ServiceDefinition", "api", "service", "on_startup", "on_shutdown",
    "on_deployment", "is_service", "runner_service",
]

logger = logging.getLogger("bentolite.services")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: settings ``@service(...)`` applies locally
_APPLIED = {"name", "resources", "workers", "traffic", "envs"}
#: settings BentoML accepts that mean nothing for a local server: accepted, logged once
_IGNORED = {
    "image", "labels", "cmd", "threads", "extra_ports", "backlog", "max_runner_connections",
    "runner_connection", "replicate_process", "metrics", "logging", "ssl", "http", "grpc",
    "runner_probe", "tracing", "monitoring", "endpoints", "description",
}
_RESOURCE_KEYS = {"cpu", "gpu", "memory", "gpu_type", "tpu_type"}
_TRAFFIC_KEYS = {"timeout", "max_concurrency", "concurrency", "external_queue"}
_STARTUP = "__bentoml_startup_hook__"
_SHUTDOWN = "__bentoml_shutdown_hook__"
_DEPLOYMENT = "__bentoml_deployment_hook__"


class APIMethod(Generic[F]):
    """A method marked ``@bentolite.api``; on an instance it is the plain bound method."""

    def __init__(self, func: F, *, route: str | None = None, name: str | None = None,
                 input_spec: Any = None, output_spec: Any = None, batchable: bool = False,
                 batch_dim: int | tuple[int, int] = 0, max_batch_size: int = 100,
                 max_latency_ms: int = 60000) -> None:
        if not callable(func):
            raise InvalidArgument(f"@api needs a function, got {func!r}")
        if func.__name__.startswith("__"):
            if func.__name__ != "__call__":  # a v1 runnable's default method
                raise InvalidArgument(f"API method {func.__name__!r}: names starting with "
                                      "'__' are reserved")
        self.func = func
        self.name = name or func.__name__
        self.route = route
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.batchable = bool(batchable)
        self.batch_dim = batch_dim
        self.max_batch_size = int(max_batch_size)
        self.max_latency_ms = int(max_latency_ms)
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        self.is_stream = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
        if self.batchable and self.is_stream:
            raise InvalidArgument(f"API method {self.name!r}: a generator cannot be batchable")
        self.doc = inspect.getdoc(func) or ""
        self.signature = inspect.signature(func)

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        """The plain bound method on an instance (calls it directly), itself on the class."""
        return self if obj is None else self.func.__get__(obj, objtype)

    def __repr__(self) -> str:
        return f"APIMethod({self.name!r}, batchable={self.batchable})"


@overload
def api(func: F, /) -> APIMethod[F]: ...
@overload
def api(*, route: str | None = ..., name: str | None = ..., input_spec: Any = ...,
        output_spec: Any = ..., batchable: bool = ..., batch_dim: int | tuple[int, int] = ...,
        max_batch_size: int = ..., max_latency_ms: int = ...
        ) -> Callable[[F], APIMethod[F]]: ...
def api(func: Any = None, /, **options: Any) -> Any:
    """Mark a service method as an HTTP API (bare or with BentoML's options)."""
    if func is not None:
        return APIMethod(func, **options)
    return lambda f: APIMethod(f, **options)


def on_startup(func: F) -> F:
    """Run this method (sync or async) in each process of the service before it serves."""
    setattr(func, _STARTUP, True)
    return func


def on_shutdown(func: F) -> F:
    """Run this method (sync or async) in each process of the service when it stops."""
    setattr(func, _SHUTDOWN, True)
    return func


def on_deployment(func: Any) -> Any:
    """Run this static method once per deployment, before any worker starts."""
    inner = func.__func__ if isinstance(func, staticmethod) else func
    setattr(inner, _DEPLOYMENT, True)
    return func if isinstance(func, staticmethod) else staticmethod(func)


def _check_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - _APPLIED - _IGNORED)
    if unknown:
        raise InvalidArgument(
            f"@service {name!r}: unknown setting(s) {unknown}; known: "
            f"{sorted(_APPLIED | _IGNORED)}")
    for key, known in (("resources", _RESOURCE_KEYS), ("traffic", _TRAFFIC_KEYS)):
        value = config.get(key) or {}
        if not isinstance(value, dict):
            raise InvalidArgument(f"@service {name!r}: {key} must be a mapping, got {value!r}")
        bad = sorted(set(value) - known)
        if bad:
            raise InvalidArgument(f"@service {name!r}: unknown {key} key(s) {bad}; "
                                  f"known: {sorted(known)}")
    workers = config.get("workers", 1)
    if workers != "cpu_count" and not (isinstance(workers, int) and workers >= 1):
        raise InvalidArgument(
            f"@service {name!r}: workers must be a positive int or 'cpu_count', got {workers!r}")
    ignored = sorted(set(config) & _IGNORED)
    if ignored:
        from ..runner.process import PARENT_PID_ENV

        # once per deployment: the supervisor says it, the workers it starts do not
        level = logging.DEBUG if os.environ.get(PARENT_PID_ENV) else logging.INFO
        logger.log(level, "service %r: %s ignored when serving locally", name,
                   ", ".join(ignored))
    return config


class ServiceDefinition(Generic[T]):
    """What ``@bentolite.service`` returns: the user's class, its settings, APIs and deps.

    Calling it builds an instance in this process (scripts and tests), as in BentoML.
    """

    def __init__(self, inner: type[T], config: dict[str, Any]) -> None:
        self.inner = inner
        self.name: str = config.get("name") or inner.__name__
        self.config = _check_config(self.name, config)
        self.doc = inspect.getdoc(inner) or ""
        self.apis: dict[str, APIMethod[Any]] = {}
        self.dependencies: dict[str, Any] = {}
        self.startup_hooks: list[str] = []
        self.shutdown_hooks: list[str] = []
        self.deployment_hooks: list[Callable[[], Any]] = []
        #: models the class refers to (``model_ref = bentoml.models.get(...)``), for bentos
        self.models: list[Any] = []
        from ..models import Model
        from .dependency import Dependency

        for klass in reversed(inner.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, APIMethod):
                    self.apis[value.name] = value
                elif isinstance(value, Dependency):
                    self.dependencies[attr] = value
                elif isinstance(value, Model):
                    self.models.append(value)
                elif getattr(value, _STARTUP, False):
                    self.startup_hooks.append(attr)
                elif getattr(value, _SHUTDOWN, False):
                    self.shutdown_hooks.append(attr)
                elif getattr(getattr(value, "__func__", None), _DEPLOYMENT, False):
                    self.deployment_hooks.append(value.__func__)
        routes: dict[str, str] = {}
        for method in self.apis.values():
            route = "/" + (method.route or method.name).lstrip("/")
            if route in routes:
                raise InvalidArgument(f"service {self.name!r}: APIs {routes[route]!r} and "
                                      f"{method.name!r} share route {route!r}")
            routes[route] = method.name
        self._service: Any = None  # the engine's compiled v1 Service, see as_service()
        self._runner: Any = None

    # --- settings ---------------------------------------------------------------------
    @property
    def workers(self) -> int:
        """Processes serving this service (``workers``; ``"cpu_count"`` is the CPU count)."""
        workers = self.config.get("workers", 1)
        if workers == "cpu_count":
            from ..runner.strategy import CpuResource

            return max(1, int(CpuResource.from_system()))
        return int(workers)

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.config.get("resources") or {})

    @property
    def traffic(self) -> dict[str, Any]:
        return dict(self.config.get("traffic") or {})

    def apply_envs(self) -> None:
        """Set the ``envs`` that have a value and are not set already (as BentoML does)."""
        for entry in self.config.get("envs") or []:
            if isinstance(entry, dict) and entry.get("value") is not None:
                os.environ.setdefault(str(entry["name"]), str(entry["value"]))

    # --- the graph ----------------------------------------------------------------------
    def all_services(self) -> Iterator[ServiceDefinition[Any]]:
        """This service and every service it depends on, each once, dependencies first."""
        seen: set[int] = set()

        def visit(svc: ServiceDefinition[Any], path: tuple[str, ...]) -> Iterator[Any]:
            if svc.name in path:
                raise BentoMLException(
                    f"services depend on each other in a cycle: {' -> '.join([*path, svc.name])}")
            if id(svc) in seen:
                return
            for dep in svc.dependencies.values():
                if dep.on is not None:
                    yield from visit(dep.on, (*path, svc.name))
            seen.add(id(svc))
            yield svc

        return visit(self, ())

    def as_service(self) -> Any:
        """This service as the runner engine serves it (a v1 ``Service``), built once."""
        if self._service is None:
            from .engine import build_service

            self._service = build_service(self)
        return self._service

    # --- in-process use -----------------------------------------------------------------
    def __call__(self) -> T:
        return self.inner()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("inner",):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"bentolite.service(name={self.name!r}, apis={list(self.apis)})"


def is_service(obj: Any) -> bool:
    return isinstance(obj, ServiceDefinition)


@overload
def service(inner: type[T], /) -> ServiceDefinition[T]: ...
@overload
def service(inner: None = None, /, **config: Any) -> Callable[[type[T]], ServiceDefinition[T]]: ...
def service(inner: Any = None, /, **config: Any) -> Any:
    """Mark a class as a service (bare, or with ``name=``, ``resources=``, ``workers=``,
    ``traffic=``, ``envs=``; cloud-only settings such as ``image=`` are accepted and ignored)."""
    if inner is not None:
        return ServiceDefinition(inner, config)
    return lambda cls: ServiceDefinition(cls, config)


def runner_service(runner: Any, **config: Any) -> ServiceDefinition[Any]:
    """A v1 Runner as a service that new-style services can ``depends()`` on; it keeps its
    own worker processes, scheduling and batching."""
    from ..runner.runner import Runner

    if not isinstance(runner, Runner):
        raise InvalidArgument(f"runner_service() takes a bentolite.Runner, got {runner!r}")
    definition: ServiceDefinition[Any] = ServiceDefinition(
        type(runner.runnable_class.__name__, (), {"__doc__": runner.runnable_class.__doc__}),
        {"name": runner.name, **config})
    declared = runner.runnable_class.methods()
    for method in runner.runner_methods:
        definition.apis[method.name] = APIMethod(
            declared[method.name].func, batchable=method.config.batchable,
            batch_dim=method.config.batch_dim, max_batch_size=method.max_batch_size,
            max_latency_ms=int(method.max_latency_ms))
    definition._runner = runner  # the engine serves the runner itself
    return definition
