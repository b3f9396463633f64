"""New-style services on the runner engine.

Each service becomes a :class:`ServiceRunner` whose Runnable builds the user's class and
exposes its ``@api`` methods as runner methods (batchable ones through the adaptive
batcher). A dependency service gets worker processes from the supervisor like any runner
(``workers`` and ``resources`` through :class:`ServiceStrategy`); the root service runs
embedded in each API worker (an in-process runner worker), or, when it has batchable APIs,
in a worker process of its own like a dependency. The root's APIs become the v1
``Service``'s APIs, typed by their hints.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import re
from typing import TYPE_CHECKING, Any

from ..exceptions import BentoMLException
from ..runner.runnable import Runnable, RunnableMethod, RunnableMethodConfig
from ..runner.runner import Runner
from ..runner.strategy import THREAD_ENV_VARS, NvidiaGpuResource, Strategy
from ..runner.worker import SHUTDOWN_METHOD
from .service import InferenceAPI, Service, _is_ctx_param

if TYPE_CHECKING:  # pragma: no cover
    from .definition import APIMethod, ServiceDefinition

__all__ = ["ServiceRunner", "ServiceStrategy", "build_service", "service_runner", "schema_json"]

logger = logging.getLogger("bentolite.services")


def _run_hook(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(awaitable: Any) -> Any:
    return await awaitable


class ServiceStrategy(Strategy):
    """``workers`` processes; ``resources.gpu`` GPUs each (``CUDA_VISIBLE_DEVICES``, round
    robin over the machine's) and ``resources.cpu`` threads each (thread-count variables)."""

    @classmethod
    def get_worker_count(cls, runnable_class: type, resource_request: Any,
                         workers_per_resource: float) -> int:
        return runnable_class.service.workers  # type: ignore[attr-defined]

    @classmethod
    def get_worker_env(cls, runnable_class: type, resource_request: Any,
                       workers_per_resource: float, worker_index: int) -> dict[str, str]:
        resources = runnable_class.service.resources  # type: ignore[attr-defined]
        env: dict[str, str] = {}
        wanted = resources.get("gpu")
        # as BentoML: no request leaves the GPUs as they are, and so does a
        # CUDA_VISIBLE_DEVICES the user set for the whole server
        if wanted and "CUDA_VISIBLE_DEVICES" not in os.environ:
            gpus = NvidiaGpuResource.from_system()
            per_worker = max(1, math.ceil(float(wanted)))
            if len(gpus) < per_worker:
                if worker_index == 0:
                    logger.warning("service %r asks for %s GPU(s) per worker; this machine has "
                                   "%d: it runs on CPU", runnable_class.service.name,  # type: ignore[attr-defined]
                                   wanted, len(gpus))
                env["CUDA_VISIBLE_DEVICES"] = "-1"
            else:
                start = (worker_index * per_worker) % len(gpus)
                env["CUDA_VISIBLE_DEVICES"] = ",".join(
                    str(gpus[(start + i) % len(gpus)]) for i in range(per_worker))
        if resources.get("cpu"):
            from ..runner.strategy import CpuResource

            threads = str(max(1, math.ceil(CpuResource.from_spec(resources["cpu"]))))
            env.update({name: threads for name in THREAD_ENV_VARS})
        return env


class ServiceRunner(Runner):
    """The runner that serves one new-style service."""

    #: unbatched sync methods go straight to the model thread (see RunnerWorker)
    direct_calls = True

    def __init__(self, definition: ServiceDefinition[Any]) -> None:
        self.definition = definition
        method_configs = {
            api.name: {"max_batch_size": api.max_batch_size, "max_latency_ms": api.max_latency_ms}
            for api in definition.apis.values() if api.batchable}
        super().__init__(_runnable_class(definition), name=_runner_name(definition.name),
                         scheduling_strategy=ServiceStrategy, method_configs=method_configs)

    @property
    def dependencies(self) -> list[Runner]:
        """The runners this service calls (connected in its worker processes)."""
        return [service_runner(dep.on) for dep in self.definition.dependencies.values()
                if dep.on is not None]

    def init_client(self, addresses: list[str] | None = None, **options: Any) -> None:
        """Connect to this service's workers; calls time out after its ``traffic.timeout``."""
        if options.get("timeout_s") is None:
            options["timeout_s"] = self.definition.traffic.get("timeout")
        super().init_client(addresses, **options)

    def init_local(self, quiet: bool = True) -> None:
        """Run the service in this process, batched as in a worker (no warning: normal for
        the root service and in development mode)."""
        from ..runner.embedded import EmbeddedWorkerHandle

        self._check_uninitialised()
        self._runner_handle = EmbeddedWorkerHandle(self)


def _runner_name(service_name: str) -> str:
    """A valid runner (tag) name for a service: lower-case, other characters as '_'."""
    name = re.sub(r"[^a-z0-9_.-]", "_", service_name.lower()).strip("_.-")
    return name[:63] or "service"


def _runnable_class(definition: ServiceDefinition[Any]) -> type[Runnable]:
    def __init__(self: Any) -> None:
        definition.apply_envs()
        self.instance = definition.inner()
        for attr in definition.startup_hooks:
            _run_hook(getattr(self.instance, attr)())

    def shutdown(self: Any) -> None:
        for attr in definition.shutdown_hooks:
            _run_hook(getattr(self.instance, attr)())

    cls = type(f"{definition.inner.__name__}Runnable", (Runnable,), {
        "__init__": __init__, SHUTDOWN_METHOD: shutdown, "service": definition,
        "SUPPORTED_RESOURCES": ("nvidia.com/gpu", "cpu"),
        "SUPPORTS_CPU_MULTI_THREADING": False,
        "__module__": definition.inner.__module__,
    })
    for api in definition.apis.values():
        method = RunnableMethod(_delegate(api), RunnableMethodConfig(
            batchable=api.batchable, batch_dim=api.batch_dim, is_stream=api.is_stream,
            is_async=api.is_async and not api.is_stream))
        setattr(cls, api.name, method)
        method.__set_name__(cls, api.name)
    return cls


def _delegate(api: APIMethod[Any]) -> Any:
    attr = getattr(api, "attr", api.func.__name__)
    if api.is_async and not api.is_stream:
        async def call_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await getattr(self.instance, attr)(*args, **kwargs)

        return call_async

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.instance, attr)(*args, **kwargs)

    return call


def service_runner(definition: ServiceDefinition[Any]) -> ServiceRunner:
    """The one runner of ``definition`` in this process."""
    if definition._runner is None:
        definition._runner = ServiceRunner(definition)
    return definition._runner


def build_service(root: ServiceDefinition[Any]) -> Service:
    """The v1 Service that serves ``root``: its APIs, and every service's runner."""
    definitions = list(root.all_services())
    runners = [service_runner(d) for d in definitions]
    seen: dict[str, str] = {}
    for definition, runner in zip(definitions, runners):
        if runner.name in seen:
            raise BentoMLException(f"services {seen[runner.name]!r} and {definition.name!r} "
                                   "have the same name; give one of them name=")
        seen[runner.name] = definition.name
    root_runner = runners[-1]
    # The root runs in the API workers, unless it batches: then in a worker process of its
    # own, so HTTP and the model do not share one interpreter (measured on 2 cores: a
    # batched model behind one API worker serves ~1.7x more in its own process), unless one
    # of its APIs takes a request Context (it cannot leave the process)
    root_runner.embedded = not any(api.batchable for api in root.apis.values()) or any(
        _is_ctx_param(p) for api in root.apis.values() for p in api.signature.parameters.values())
    models = {m.tag: m for d in definitions for m in d.models}
    service = Service(root_runner.name, runners=runners, models=list(models.values()))
    service.doc = root.doc
    service.definition = root  # type: ignore[attr-defined]
    service.api_workers = root.workers  # type: ignore[attr-defined]
    service.traffic = root.traffic  # type: ignore[attr-defined]
    service.deployment_hooks.extend(h for d in definitions for h in d.deployment_hooks)
    for api in root.apis.values():
        service.apis[api.name] = _root_api(root_runner, api)
    return service


def _root_api(runner: ServiceRunner, api: APIMethod[Any]) -> InferenceAPI:
    from ..io.typed import TypedInput, TypedOutput
    from .service import _is_ctx_param

    input_io = TypedInput(api.func, input_spec=api.input_spec)
    output_io = TypedOutput(api.func, output_spec=api.output_spec)
    method = getattr(runner, api.name)
    params = list(api.signature.parameters.values())[1:]
    # passed positionally while they come in order: the runner worker takes a call of one
    # array by its fast path (batching bench: 1x64 rows)
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
    ctx = [p for p in params if _is_ctx_param(p)]

    def split(kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args = []
        for name in positional:
            if name not in kwargs:
                break
            args.append(kwargs.pop(name))
        return args, kwargs

    if api.is_stream:
        async def call(**kwargs: Any) -> Any:
            args, kwargs = split(kwargs)
            return method.async_stream(*args, **kwargs)
    else:
        async def call(**kwargs: Any) -> Any:
            args, kwargs = split(kwargs)
            return await method.async_run(*args, **kwargs)

    fields = [name for name in input_io.input_type() if name not in {p.name for p in ctx}]
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in fields]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty)
           for p in ctx])
    call.__name__ = api.name
    return InferenceAPI(call, input_io, output_io, name=api.name, route=api.route or api.name,
                        doc=api.doc)


def schema_json(service: Service) -> dict[str, Any] | None:
    """``/schema.json`` of a new-style root (what BentoML 1.4's clients read), else None."""
    definition = getattr(service, "definition", None)
    if definition is None:
        return None
    from ..io.typed import service_schema, service_schema_route

    routes = [service_schema_route(api.name, api.route, api.doc, api.input, api.output,
                                   definition.apis[api.name].batchable)
              for api in service.apis.values()]
    return service_schema(definition.name, definition.doc, routes)
